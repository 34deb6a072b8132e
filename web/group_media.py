"""How this process forwards group media: a configured Janus, the embedded one, or none.

``HOMEROOM_JANUS_URLS`` names the Janus instances Homeroom drives (with
``HOMEROOM_JANUS_API_SECRET``), a pool with failover (media/janus/pool.py); without it
``homeroom serve`` starts a local Janus child (``HOMEROOM_JANUS_EMBEDDED``, on by default).
With neither, or without the ``janus`` binary, group sessions use the peer-to-peer mesh and
nothing else changes. ``/healthz`` and the start-up log say which it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import structlog
from aiohttp import web

from config.settings import Settings
from media.errors import MediaError
from media.janus.embedded import EmbeddedJanus
from media.janus.forwarder import JanusForwarder
from media.janus.pool import JanusPool, Pins
from media.janus.process import find_binary
from rooms.errors import HomeroomError
from rooms.kinds import RULES
from rooms.service import Rooms
from rooms.session import SessionStatus
from web.keys import ROOMS, SIGNALING

log = structlog.get_logger("homeroom.media")
#: /healthz waits this long for the forwarder's answer.
HEALTH_SECONDS = 2.0


def _forwarder_key(settings: Settings) -> bytes:
    """Rooms' secrets and ids derive from this: the signing secret, never used raw."""
    secret = settings.signing_secret.encode()
    return hmac.new(secret, b"homeroom-janus-rooms", hashlib.sha256).digest()


class GroupMediaSetup:
    """The forwarder of this process (None: the mesh) and what to say about it; configured
    instances form a pool whose pins are kept in ``pins`` (the session store)."""

    def __init__(self, settings: Settings, pins: Pins) -> None:
        self.forwarder: JanusForwarder | JanusPool | None = None
        self.embedded: EmbeddedJanus | None = None
        self.mode = "mesh"
        self.reason = ""
        key = _forwarder_key(settings)
        if settings.janus_urls:
            assert settings.janus_api_secret is not None  # settings require both
            secret = settings.janus_api_secret.get_secret_value()
            instances = [JanusForwarder(url, secret, key) for url in settings.janus_urls]
            self.forwarder = JanusPool(instances, pins)
            self.mode = "configured"
        elif not settings.janus_embedded:
            self.reason = "HOMEROOM_JANUS_EMBEDDED is off and no HOMEROOM_JANUS_URLS"
        elif (binary := find_binary()) is None:
            self.reason = "the janus binary is not installed"
        else:
            self.embedded = EmbeddedJanus(settings.var_dir / "janus", binary)
            self.forwarder = JanusForwarder(self.embedded.url, self.embedded.api_secret, key)
            self.mode = "embedded"

    async def start(self, rooms: Rooms) -> None:
        """Start the embedded child (if any) and collect rooms of sessions no longer live.
        An embedded Janus that cannot start leaves groups on the mesh; the server serves."""
        if self.forwarder is None:
            log.info("group_media", forwarded=False, reason=self.reason)
            return
        try:
            if self.embedded is not None:
                await self.embedded.start()
            await self.forwarder.start(await _live_group_sessions(rooms))
        except (MediaError, RuntimeError, TimeoutError, OSError) as error:
            log.error("group_media_unavailable", mode=self.mode, error=type(error).__name__)
            if self.embedded is None:
                # A configured Janus that is down stays the forwarder: groups get
                # forwarder_unavailable (and /healthz says unhealthy) until it is back.
                return
            await self.embedded.stop()
            self.forwarder, self.embedded = None, None
            self.reason = "the embedded janus did not start"
            self.mode = "mesh"
            return
        log.info("group_media", forwarded=True, by="janus", mode=self.mode)

    async def stop(self) -> None:
        if self.forwarder is not None:
            await self.forwarder.close()
        if self.embedded is not None:
            await self.embedded.stop()

    async def health(self) -> dict[str, Any]:
        """What /healthz says about group sessions."""
        if self.forwarder is None:
            return {"forwarded": False, "by": "mesh", "reason": self.reason}
        try:
            async with asyncio.timeout(HEALTH_SECONDS):
                healthy = (await self.forwarder.health()).healthy
        except TimeoutError:
            healthy = False
        body: dict[str, Any] = {
            "forwarded": True,
            "by": "janus",
            "mode": self.mode,
            "healthy": healthy,
        }
        if isinstance(self.forwarder, JanusPool):  # as of the last check of each
            instances = self.forwarder.instances
            body["instances"] = {"up": sum(i.healthy for i in instances), "of": len(instances)}
        return body


GROUP_MEDIA = web.AppKey("group_media", GroupMediaSetup)


async def group_media_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start group media with the app (after the store), stop it before the store closes."""
    setup = app[GROUP_MEDIA]
    await setup.start(app[ROOMS])
    app[SIGNALING].group.forwarder = setup.forwarder  # None if it did not start: the mesh
    yield
    await setup.stop()


async def _live_group_sessions(rooms: Rooms) -> set[str]:
    """Group sessions that may still have a room: scheduled around now and not ended."""
    now = rooms.clock()
    live: set[str] = set()
    around = (now - timedelta(days=2), now + timedelta(days=2))
    for session in await rooms.store.sessions_starting(*around):
        try:
            state = await rooms.get_session(session)
        except HomeroomError:
            continue
        if RULES[state.spec.kind].server_forwarded and state.status is not SessionStatus.ENDED:
            live.add(str(session))
    return live
