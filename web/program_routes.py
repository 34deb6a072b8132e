"""Wiring of the program's part of the application: its store, its routes and its page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web

from config.settings import Settings
from rooms.checkins import DutyHours
from rooms.program import Program, ProgramConfig
from rooms.service import Rooms
from rooms.store.program import MemoryProgramStore, ProgramStore
from web import checkins, program

STATIC_DIR = Path(__file__).parent / "static"


def open_program(settings: Settings, rooms: Rooms) -> Program:
    """The program over the configured store: Redis when ``REDIS_URL`` is set (connecting
    lazily), else embedded in this process."""
    store: ProgramStore
    if settings.redis_url is None:
        store = MemoryProgramStore()
    else:
        # Imported here so the embedded default never needs the Redis client loaded.
        from rooms.store.program_redis import RedisProgramStore

        store = RedisProgramStore.from_url(settings.redis_url, prefix=settings.redis_prefix)
    config = ProgramConfig(
        secret=settings.signing_secret,
        tz=settings.tz,
        hours=DutyHours.parse(settings.checkin_hours),
        link_ttl=timedelta(days=settings.program_link_days),
        checkin_minutes=settings.checkin_minutes,
        lead=timedelta(minutes=settings.link_lead_minutes),
        trail=timedelta(minutes=settings.link_trail_minutes),
    )
    return Program(rooms, store, config)


def add_program_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/program", _program_page)
    r.add_get("/api/program", program.program_day)
    r.add_post("/api/program/sessions/{session}/link", program.session_link)
    r.add_post("/api/program/checkins", program.ask)
    r.add_get("/api/program/checkins/{checkin}", program.show)
    r.add_post("/api/program/checkins/{checkin}/cancel", program.cancel)
    r.add_get("/api/patients", checkins.list_patients)
    r.add_post("/api/patients/{patient}/link", checkins.issue_link)
    r.add_delete("/api/patients/{patient}/link", checkins.revoke_link)
    r.add_get("/api/checkins", checkins.queue)
    r.add_get("/api/checkins/report", checkins.get_report)
    r.add_post("/api/checkins/{checkin}/take", checkins.take)


async def _program_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "program.html", headers={"Cache-Control": "no-store"})
