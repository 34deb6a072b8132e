"""The audit trail for admins: staff actions per session, the admin log, chain verification and
the daily archive. Shared by the REST API and the CLI; reads and checks are themselves logged.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from rooms import archive as archiver
from rooms.audit import (
    AdminAction,
    ChainReport,
    session_audit,
    verify_admin_chain,
    verify_session,
)
from rooms.ids import SessionId
from rooms.ranges import Day
from rooms.service import Rooms
from rooms.tokens import StaffRole
from web.auth import require_staff
from web.errors import parse_body, parse_query
from web.keys import ROOMS, SETTINGS

#: Without a range, verification covers every session the store knows.
EVER = (date(2000, 1, 1), date(2100, 1, 1))


class AuditParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session: str | None = Field(default=None, pattern=r"^s-[A-Za-z0-9_-]{4,32}$")


class RangeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first: Day = Field(default=EVER[0], alias="from")
    last: Day = Field(default=EVER[1], alias="to")


async def verify(rooms: Rooms, tz: str, first: date, last: date, *, actor: str) -> dict[str, Any]:
    """Check every session ledger starting in the days ``first``..``last`` and the admin log.

    ``ok`` is false when any chain is broken; ``first_broken`` names the first such chain and
    the sequence number where it breaks.
    """
    zone = ZoneInfo(tz)
    since = datetime.combine(first, time(), zone)
    until = datetime.combine(last + timedelta(days=1), time(), zone)
    reports = [
        await verify_session(rooms.store, s)
        for s in await rooms.store.sessions_starting(since, until)
    ]
    reports.append(verify_admin_chain(await rooms.store.admin_audit()))
    broken = next((r for r in reports if not r.ok), None)
    await rooms.store.append_admin_audit(
        actor,
        AdminAction.AUDIT_VERIFY,
        {"chains": len(reports), "ok": broken is None},
        rooms.clock(),
    )
    return {
        "ok": broken is None,
        "chains": len(reports),
        "first_broken": _broken(broken),
        "reports": [r.model_dump(mode="json") for r in reports],
    }


async def run_archive(
    rooms: Rooms, directory: Path, tz: str, first: date, last: date, *, actor: str
) -> dict[str, Any]:
    """Write the daily ledger files of ``first``..``last`` and the admin log under ``directory``."""
    zone = ZoneInfo(tz)
    since = datetime.combine(first, time(), zone)
    until = datetime.combine(last + timedelta(days=1), time(), zone)
    done = await archiver.archive(rooms.store, directory, tz=tz, since=since, until=until)
    log = await archiver.archive_admin_log(rooms.store, directory)
    await rooms.store.append_admin_audit(
        actor, AdminAction.ARCHIVE, {"days": len(done.days), "ok": done.ok}, rooms.clock()
    )
    return {
        "ok": done.ok,
        "days": [
            {"day": d.day.isoformat(), "path": str(d.path), "status": str(d.status),
             "sessions": d.sessions, "events": d.events, "sha256": d.sha256, "reason": d.reason}
            for d in done.days
        ],
        "missing": list(done.missing),
        "admin_log": str(log.path),
    }  # fmt: skip


def _broken(report: ChainReport | None) -> dict[str, Any] | None:
    if report is None or report.first_broken is None:
        return None
    return {"chain": report.chain, **report.first_broken.model_dump(mode="json")}


# --- HTTP --------------------------------------------------------------------------------


async def get_audit(request: web.Request) -> web.Response:
    """``GET /api/audit[?session=ID]``: a session's staff actions, or the admin log."""
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    staff = require_staff(request, settings.signing_secret, rooms.clock(), StaffRole.ADMIN)
    params = parse_query(request, AuditParams)
    if params.session:
        session = SessionId(params.session)
        await rooms.store.spec(session)  # 404 for an unknown session
        entries = [e.model_dump(mode="json") for e in await session_audit(rooms.store, session)]
        chain = await verify_session(rooms.store, session)
    else:
        admin = await rooms.store.admin_audit()
        entries = [e.model_dump(mode="json") for e in admin]
        chain = verify_admin_chain(admin)
    detail = {"session": params.session, "entries": len(entries)}
    await rooms.store.append_admin_audit(
        staff.subject, AdminAction.AUDIT_READ, detail, rooms.clock()
    )
    return web.json_response({"entries": entries, "chain": chain.model_dump(mode="json")})


async def get_verify(request: web.Request) -> web.Response:
    """``GET /api/audit/verify[?from=DATE&to=DATE]``: check the hash chains."""
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    staff = require_staff(request, settings.signing_secret, rooms.clock(), StaffRole.ADMIN)
    params = parse_query(request, RangeParams)
    body = await verify(rooms, settings.timezone, params.first, params.last, actor=staff.subject)
    return web.json_response(body)


async def post_archive(request: web.Request) -> web.Response:
    """``POST /api/archive {"from": DATE, "to": DATE}``: daily files under the var directory."""
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    staff = require_staff(request, settings.signing_secret, rooms.clock(), StaffRole.ADMIN)
    params = await parse_body(request, RangeParams)
    directory = settings.var_dir / "archive"
    body = await run_archive(
        rooms, directory, settings.timezone, params.first, params.last, actor=staff.subject
    )
    return web.json_response(body)
