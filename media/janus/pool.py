"""Group media on a pool of Janus instances, each live session pinned to one of them.

The pin lives in the store (:meth:`~rooms.store.base.SessionStore.pin_forwarder`), so every
Homeroom node sends a session's endpoints to the same Janus. A session without a pin, or
pinned to an instance that is down, is pinned to the healthy instance with the fewest
publishers (then rooms) in Homeroom's rooms, as Janus counts them; the compare-and-set in the
store makes racing nodes agree on one.

Every instance is checked each :data:`CHECK_SECONDS` (Janus's ``info``). When one dies, its
WebSocket closes and every endpoint in it is told "forwarder_lost" (signaling sends
``media_reset``); they publish again, the instance is found down on that first use, and the
session moves to another instance, where its room is made and the store's moderation applied
again. An instance that stops answering without closing is dropped by the check, with the
same effect. Each check also compares the pins of the sessions this node holds endpoints in
with where they are, so endpoints follow a move another node made.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import structlog

from media.forwarder import EndpointCallbacks, ForwarderHealth, IceCandidateInit, PeerRole
from media.janus.errors import JanusError, JanusUnavailable
from media.janus.forwarder import JanusForwarder
from rooms.errors import HomeroomError
from rooms.ids import SessionId

log = structlog.get_logger("homeroom.media")

#: Seconds between health checks of every instance, and how long a check may take.
CHECK_SECONDS = 1.0
CHECK_TIMEOUT = 2.0

_T = TypeVar("_T")
Key = tuple[str, str]


class Pins(Protocol):
    """Where pins are kept (the session store: every node sees the same)."""

    async def forwarder_pin(self, session: SessionId) -> str | None: ...

    async def pin_forwarder(
        self, session: SessionId, instance: str | None, *, replacing: str | None
    ) -> str | None: ...


def instance_name(url: str) -> str:
    """The name a Janus is pinned by: the same on every node, and no address in the store."""
    return "janus-" + hashlib.sha256(url.encode()).hexdigest()[:12]


class Instance:
    """One Janus of the pool and whether its last check passed."""

    def __init__(self, forwarder: JanusForwarder) -> None:
        self.forwarder = forwarder
        self.name = instance_name(forwarder.url)
        self.healthy = True


class JanusPool:
    """A :class:`~media.forwarder.Forwarder` over several :class:`JanusForwarder`."""

    def __init__(self, forwarders: Sequence[JanusForwarder], pins: Pins) -> None:
        if not forwarders:
            raise ValueError("a pool needs at least one Janus")
        self._instances = {i.name: i for i in map(Instance, forwarders)}
        self._pins = pins
        #: Where each local endpoint's media is, with its callbacks.
        self._joined: dict[Key, tuple[Instance, EndpointCallbacks]] = {}
        #: Each session's room size as last opened: a session that moves gets the same.
        self._capacity: dict[str, int] = {}
        self._choosing = asyncio.Lock()
        self._checks: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return "janus"

    @property
    def instances(self) -> list[Instance]:
        return list(self._instances.values())

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, live_sessions: set[str]) -> None:
        """Start every instance (collecting rooms of sessions no longer live) and the checks.
        Instances that are down now are checked again; only none at all is an error."""
        for instance in self.instances:
            try:
                await instance.forwarder.start(live_sessions)
            except JanusError as error:
                self._down(instance, error.code)
        self._checks = asyncio.create_task(self._check_forever(), name="janus-pool-checks")
        if not any(i.healthy for i in self.instances):
            raise JanusUnavailable("no Janus of the pool answers")

    async def close(self) -> None:
        if self._checks is not None:
            self._checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checks
        for instance in self.instances:
            await instance.forwarder.close()

    async def health(self) -> ForwarderHealth:
        up = sum(i.healthy for i in self.instances)
        return ForwarderHealth(self.name, up > 0, f"{up}/{len(self._instances)} up")

    # --- rooms -------------------------------------------------------------------------

    async def open_room(self, session: str, publishers: int) -> None:
        self._capacity[session] = publishers
        await self._on_pinned(session, lambda f: f.open_room(session, publishers))

    async def close_room(self, session: str) -> None:
        """Destroy the room on every instance that answers (one that was taken for dead may
        still have it) and unpin the session."""
        held = await self._pins.forwarder_pin(SessionId(session))
        for instance in self.instances:
            if instance.healthy:
                with contextlib.suppress(JanusUnavailable):
                    await instance.forwarder.close_room(session)
        self._joined = {k: v for k, v in self._joined.items() if k[0] != session}
        self._capacity.pop(session, None)
        if held is not None:
            await self._pins.pin_forwarder(SessionId(session), None, replacing=held)

    # --- endpoints ---------------------------------------------------------------------

    async def join(self, session: str, endpoint: str, callbacks: EndpointCallbacks) -> None:
        async def enter(instance: Instance) -> None:
            for other in self.instances:
                if other is not instance:  # what a lost instance left of it
                    await other.forwarder.leave(session, endpoint)
            if session in self._capacity:  # the session may have moved since open_room
                await instance.forwarder.open_room(session, self._capacity[session])
            await instance.forwarder.join(session, endpoint, callbacks)
            self._joined[(session, endpoint)] = (instance, callbacks)

        await self._on_pinned_instance(session, enter)

    async def publish(self, session: str, endpoint: str, offer_sdp: str) -> str:
        return await self._local(session, endpoint).publish(session, endpoint, offer_sdp)

    async def answer(self, session: str, endpoint: str, answer_sdp: str) -> None:
        await self._local(session, endpoint).answer(session, endpoint, answer_sdp)

    async def resubscribe(self, session: str, endpoint: str) -> None:
        await self._local(session, endpoint).resubscribe(session, endpoint)

    async def trickle(
        self, session: str, endpoint: str, role: PeerRole, candidate: IceCandidateInit
    ) -> None:
        await self._local(session, endpoint).trickle(session, endpoint, role, candidate)

    async def configure_substream(
        self, session: str, endpoint: str, source: str, substream: int
    ) -> None:
        forwarder = self._local(session, endpoint)
        await forwarder.configure_substream(session, endpoint, source, substream)

    async def moderate(self, session: str, endpoint: str, muted: bool) -> None:
        joined = self._joined.get((session, endpoint))
        if joined is not None:
            await joined[0].forwarder.moderate(session, endpoint, muted)
            return
        await self._on_pinned(session, lambda f: f.moderate(session, endpoint, muted))

    async def kick(self, session: str, endpoint: str) -> None:
        joined = self._joined.pop((session, endpoint), None)
        if joined is not None:
            await joined[0].forwarder.leave(session, endpoint)
        await self._on_pinned(session, lambda f: f.kick(session, endpoint))

    async def leave(self, session: str, endpoint: str) -> None:
        joined = self._joined.pop((session, endpoint), None)
        if joined is not None:
            await joined[0].forwarder.leave(session, endpoint)

    # --- pinning -----------------------------------------------------------------------

    def _local(self, session: str, endpoint: str) -> JanusForwarder:
        joined = self._joined.get((session, endpoint))
        if joined is None:
            raise JanusUnavailable("this endpoint has no media in the room (join first)")
        return joined[0].forwarder

    async def _on_pinned(self, session: str, work: Callable[[JanusForwarder], Awaitable[_T]]) -> _T:
        return await self._on_pinned_instance(session, lambda i: work(i.forwarder))

    async def _on_pinned_instance(
        self, session: str, work: Callable[[Instance], Awaitable[_T]]
    ) -> _T:
        """Run ``work`` on the session's instance; one found down on the way is marked so and
        the session moves to another (as many times as there are instances)."""
        for _ in self._instances:
            instance = await self._pinned(session)
            try:
                return await work(instance)
            except JanusUnavailable as error:
                self._down(instance, error.code)
        raise JanusUnavailable("no Janus of the pool answers")

    async def _pinned(self, session: str) -> Instance:
        """The session's instance, pinning it (again) when it has none or a dead one."""
        sid = SessionId(session)
        held = await self._store(self._pins.forwarder_pin(sid))
        for _ in self._instances:
            found = self._instances.get(held or "")
            if found is not None and found.healthy:
                return found
            choice = await self._least_loaded()
            held = await self._store(self._pins.pin_forwarder(sid, choice.name, replacing=held))
            if held == choice.name:
                log.info("janus_pinned", session=session, instance=choice.name)
                return choice
        raise JanusUnavailable("the pool could not agree on a Janus")

    async def _least_loaded(self) -> Instance:
        async with self._choosing:
            loads: list[tuple[tuple[int, int], str, Instance]] = []
            for instance in self.instances:
                if not instance.healthy:
                    continue
                try:
                    async with asyncio.timeout(CHECK_TIMEOUT):
                        load = await instance.forwarder.load()
                except (JanusError, TimeoutError):
                    self._down(instance, "load")
                    continue
                loads.append((load, instance.name, instance))
            if not loads:
                raise JanusUnavailable("no Janus of the pool answers")
            return min(loads, key=lambda entry: entry[:2])[2]

    @staticmethod
    async def _store(call: Awaitable[_T]) -> _T:
        try:
            return await call
        except HomeroomError as error:  # the store is unreachable: so is the media, for now
            raise JanusUnavailable(error.code) from None

    # --- checks ------------------------------------------------------------------------

    def _down(self, instance: Instance, why: str) -> None:
        if instance.healthy:
            log.warning("janus_down", instance=instance.name, reason=why)
        instance.healthy = False

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            await asyncio.gather(*(self._check(i) for i in self.instances))
            await self._follow_pins()

    async def _check(self, instance: Instance) -> None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                healthy = (await instance.forwarder.health()).healthy
        except TimeoutError:
            healthy = False
        if healthy and not instance.healthy:
            log.info("janus_up", instance=instance.name)
        elif not healthy and instance.healthy:
            self._down(instance, "check")
            # Hung rather than gone: let go of it, so its endpoints move on.
            await instance.forwarder.disconnect()
        instance.healthy = healthy

    async def _follow_pins(self) -> None:
        """Endpoints of sessions another node moved are sent to publish again."""
        for session in {key[0] for key in self._joined}:
            try:
                held = await self._pins.forwarder_pin(SessionId(session))
            except HomeroomError:
                return  # the store is away: nothing moves without it
            if held is None:
                continue  # its room was closed: its endpoints are on their way out
            for key, (instance, callbacks) in list(self._joined.items()):
                if key[0] == session and instance.name != held:
                    del self._joined[key]
                    await instance.forwarder.leave(*key)
                    await callbacks.closed("forwarder_lost")
