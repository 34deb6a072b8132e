"""The reaper: no ghost participants when a node dies, no endpoint kept past its grace window.

Every node runs one. Each pass it records its own heartbeat, then closes the endpoints of
nodes whose heartbeat is older than ``dead_after``, as of that last heartbeat
(:func:`rooms.presence.reap_node`), and forgets endpoints of its own sessions that stayed
disconnected past the grace window (:func:`rooms.presence.expire_stale`).

Time the store was unreachable is not node death: every node's beats fail alike meanwhile.
A reaper reaps other nodes only once its own beats have gone through for ``dead_after`` since
it last failed to reach the store (or since it started), so after an outage every node gets
as long to beat again as a live node ever gets, before anything of it is reaped.

Any number of reapers may sweep at once: each change is re-checked on the current state inside
the store's transaction, and one that finds nothing left to do is abandoned unwritten, so each
endpoint is closed exactly once. A dead node is forgotten only when none of its endpoints is
left in any session, so its disconnected endpoints are still expired after the grace window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial

import structlog

from rooms import presence
from rooms.errors import SessionNotFound, StoreConflict, StoreUnavailable
from rooms.ids import EndpointId, NodeId, SessionId
from rooms.ledger import Ctx, EventKind, LedgerEvent
from rooms.service import Change, Rooms
from rooms.state import SessionState

log = structlog.get_logger("rooms.reaper")

OnChange = Callable[[SessionState, list[LedgerEvent]], Awaitable[None]]


class _Unchanged(Exception):
    """A change found nothing to do (another reaper got there first): write nothing."""


class Reaper:
    """Heartbeat and sweep loop of one node (``rooms.node``), on ``rooms``' store and clock.

    ``interval``: seconds between passes. ``dead_after``: seconds without a heartbeat after
    which a node counts as dead; keep it a few intervals. ``grace``: the reconnect grace window.
    """

    def __init__(
        self,
        rooms: Rooms,
        *,
        interval: float,
        dead_after: float,
        grace: timedelta,
        on_change: OnChange | None = None,
    ) -> None:
        if interval < 0:
            raise ValueError("interval must not be negative")
        if dead_after <= interval:
            raise ValueError("dead_after must be longer than the heartbeat interval")
        self.rooms = rooms
        self.interval = interval
        self.dead_after = timedelta(seconds=dead_after)
        self.grace = grace
        #: Told of every change a sweep commits (signaling pushes the new room views).
        self.on_change = on_change
        #: Passes of :meth:`run` completed, and how many of those failed (for health checks).
        self.passes = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        #: When this node's beats started going through again (None: not since it last
        #: failed to reach the store, or before its first beat).
        self._store_back_at: datetime | None = None

    @property
    def node(self) -> NodeId:
        return self.rooms.node

    async def beat(self) -> None:
        """Record this node's heartbeat, now."""
        now = self.rooms.clock()
        try:
            await self.rooms.store.node_heartbeat(self.node, now)
        except StoreUnavailable:
            self._store_back_at = None
            raise
        if self._store_back_at is None:
            self._store_back_at = now

    async def sweep(self) -> int:
        """One pass over dead nodes and this node's sessions. Returns endpoints closed."""
        store = self.rooms.store
        now = self.rooms.clock()
        closed = 0
        for node, last_seen in await store.stale_nodes(now - self.dead_after):
            if node == self.node:
                continue
            if not self._may_reap(now):
                log.info("reap_postponed", node=node, last_seen=last_seen.isoformat())
                continue
            closed += await self._reap(node, last_seen)
        expire = partial(presence.expire_stale, grace=self.grace)
        for session in await store.node_sessions(self.node):
            try:
                await self._settle(self.node, session, expire)
            except StoreConflict:
                log.warning("expiry_deferred", node=self.node, session=session)
        return closed

    def _may_reap(self, now: datetime) -> bool:
        """Whether silence of ``dead_after`` means death: only when this node has reached the
        store all along for that long (the others' beats failed too while it could not)."""
        back = self._store_back_at
        return back is not None and now - back >= self.dead_after

    async def run(self) -> None:
        """Beat and sweep every ``interval`` seconds until cancelled. Never dies of a failure."""
        while True:
            try:
                await self.beat()
                await self.sweep()
            except StoreUnavailable:
                self._store_back_at = None
                self.failures += 1
                log.warning("reaper_store_unavailable", node=self.node)
            except Exception:
                self.failures += 1
                log.exception("reaper_pass_failed", node=self.node)
            self.passes += 1
            await asyncio.sleep(self.interval)

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` as a task of the running loop."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("the reaper is already running")
        self._task = asyncio.create_task(self.run(), name=f"reaper:{self.node}")
        return self._task

    async def stop(self) -> None:
        """Cancel the task started by :meth:`start` and wait for it to finish."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves

    async def _reap(self, node: NodeId, last_seen: datetime) -> int:
        store = self.rooms.store
        reap = partial(presence.reap_node, node=node, last_seen=last_seen, grace=self.grace)
        closed = 0
        for session in await store.node_sessions(node):
            try:
                closed += await self._settle(node, session, reap)
            except StoreConflict:
                log.warning("reap_deferred", node=node, session=session)
        if closed:
            log.warning("node_reaped", node=node, last_seen=last_seen.isoformat(), closed=closed)
        # Atomically refused if the node came back or still has endpoints somewhere.
        if await store.forget_node(node, last_seen=last_seen):
            log.info("node_forgotten", node=node, last_seen=last_seen.isoformat())
        return closed

    async def _settle(self, node: NodeId, session: SessionId, change: Change) -> int:
        """Apply ``change`` to ``session`` if it has work there; untrack ``node`` when it has no
        endpoint left in it. Returns the endpoints the change disconnected."""
        try:
            state = await self.rooms.get_session(session)
            closed = 0
            if _has_work(state, self.rooms.ctx(), change):
                expired: list[EndpointId] = []
                try:
                    state, events = await self.rooms.apply(session, _guarded(change, expired))
                except _Unchanged:  # another reaper got there first
                    log.debug("presence_settled_elsewhere", node=node, session=session)
                    state = await self.rooms.get_session(session)
                else:
                    closed = self._log_change(node, state, events, expired)
                    if self.on_change is not None:
                        await self.on_change(state, events)
        except SessionNotFound:
            await self.rooms.store.untrack(node, session)
            return 0
        if not state.endpoint_of_node(node):
            await self._untrack(node, session)
        return closed

    async def _untrack(self, node: NodeId, session: SessionId) -> None:
        """Untrack, then look again: an endpoint committed meanwhile re-tracked the session
        before our untrack removed it, so it must be tracked once more."""
        store = self.rooms.store
        await store.untrack(node, session)
        try:
            state = await self.rooms.get_session(session)
        except SessionNotFound:
            return
        if state.endpoint_of_node(node):
            await store.track(node, session)

    def _log_change(
        self,
        node: NodeId,
        state: SessionState,
        events: list[LedgerEvent],
        expired: list[EndpointId],
    ) -> int:
        closed = sorted(
            {e.endpoint for e in events if e.kind is EventKind.DISCONNECTED and e.endpoint}
        )
        log.info(
            "presence_settled",
            node=node,
            session=state.spec.id,
            closed=closed,
            expired=expired,
            by=self.node,
        )
        return len(closed)


def _has_work(state: SessionState, ctx: Ctx, change: Change) -> bool:
    """Whether ``change`` would alter ``state``, tried on a copy."""
    probe = state.model_copy(deep=True)
    change(probe, ctx)
    return probe != state


def _guarded(change: Change, expired: list[EndpointId]) -> Change:
    """``change``, abandoned unwritten when the current state gives it nothing to do.

    ``expired`` receives the endpoints the committed run removed (the store may run a change
    more than once; the last run is the one committed).
    """

    def guarded(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
        before = state.model_copy(deep=True)
        events = change(state, ctx)
        if not events and state == before:
            raise _Unchanged
        expired[:] = sorted(set(before.endpoints) - set(state.endpoints))
        return events

    return guarded
