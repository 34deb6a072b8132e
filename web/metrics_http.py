"""``/metrics`` for Prometheus: on ``HOMEROOM_METRICS_PORT`` when set (a listener of its own,
for the monitoring network only), otherwise on the main port to an admin bearer token only.
Never public by default."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from config.settings import Settings
from rooms.errors import HomeroomError
from rooms.service import Rooms
from rooms.tokens import StaffRole
from signaling.server import SignalingServer
from web.auth import require_staff
from web.keys import ROOMS, SETTINGS
from web.metrics import Metrics
from web.shutdown import DRAINING

METRICS = web.AppKey("metrics", Metrics)
#: A scrape answers in time even when the store hangs (the recount is then skipped).
REFRESH_TIMEOUT_SECONDS = 2.0


def serve_metrics(app: web.Application, settings: Settings, signaling: SignalingServer) -> None:
    """Connect ``app[METRICS]`` to signaling and serve it where the settings say."""
    metrics = app[METRICS]
    signaling.observer = metrics
    metrics.watch_endpoints(lambda: len(signaling.local))
    metrics.watch_draining(lambda: app[DRAINING].started)
    if settings.metrics_port is None:
        app.router.add_get("/metrics", metrics_for_admins)
    else:
        app.cleanup_ctx.append(_metrics_listener)


async def metrics_for_admins(request: web.Request) -> web.Response:
    """The main port's ``/metrics``: admins only."""
    app = request.app
    require_staff(request, app[SETTINGS].signing_secret, app[ROOMS].clock(), StaffRole.ADMIN)
    return await exposition(app[METRICS], app[ROOMS])


async def exposition(metrics: Metrics, rooms: Rooms) -> web.Response:
    """The text format, after recounting what is read from the store."""
    with contextlib.suppress(HomeroomError, TimeoutError):
        async with asyncio.timeout(REFRESH_TIMEOUT_SECONDS):
            await metrics.refresh(rooms)
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _metrics_listener(app: web.Application) -> AsyncIterator[None]:
    """A second listener, serving ``/metrics`` without authentication: bind it where only
    Prometheus reaches it."""
    settings, metrics, rooms = app[SETTINGS], app[METRICS], app[ROOMS]

    async def scrape(request: web.Request) -> web.Response:
        return await exposition(metrics, rooms)

    metrics_app = web.Application()
    metrics_app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(metrics_app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    assert settings.metrics_port is not None
    await web.TCPSite(runner, settings.host, settings.metrics_port).start()
    try:
        yield
    finally:
        await runner.cleanup()
