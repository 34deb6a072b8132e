"""A store that reports to :class:`web.metrics.Metrics`: each call's latency and failure, and
each committed change's ledger events.

A proxy rather than a subclass of SessionStore: a method added to the store interface later
passes through (unmeasured) instead of leaving this class abstract.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from time import perf_counter
from typing import Any, TypeVar, cast

from rooms.audit import AdminAuditEntry
from rooms.errors import StoreConflict, StoreUnavailable
from rooms.ids import NodeId, SessionId
from rooms.ledger import LedgerEvent, Scalar
from rooms.session import SessionSpec
from rooms.state import SessionState
from rooms.store.base import Mutation, SessionStore
from web.metrics import Metrics

_T = TypeVar("_T")


def metered(inner: SessionStore, metrics: Metrics) -> SessionStore:
    """``inner``, reporting to ``metrics``."""
    return cast(SessionStore, MeteredStore(inner, metrics))


class MeteredStore:
    """SessionStore's methods, timed, around ``inner``; anything else is ``inner``'s."""

    def __init__(self, inner: SessionStore, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _timed(self, op: str, call: Awaitable[_T]) -> _T:
        started = perf_counter()
        failure: str | None = None
        try:
            return await call
        except (StoreUnavailable, StoreConflict) as exc:
            failure = exc.code
            raise
        finally:
            self._metrics.store_call(op, perf_counter() - started, failure)

    async def create(self, state: SessionState, events: list[LedgerEvent]) -> None:
        await self._timed("create", self.inner.create(state, events))
        self._metrics.appended(state, events)

    async def get(self, session: SessionId) -> SessionState:
        return await self._timed("get", self.inner.get(session))

    async def transact(
        self, session: SessionId, change: Mutation
    ) -> tuple[SessionState, list[LedgerEvent]]:
        state, events = await self._timed("transact", self.inner.transact(session, change))
        self._metrics.appended(state, events)
        return state, events

    def release(self, state: SessionState) -> None:
        self.inner.release(state)

    async def events(self, session: SessionId, after_seq: int = 0) -> list[LedgerEvent]:
        return await self._timed("events", self.inner.events(session, after_seq))

    async def sessions_starting(self, since: datetime, until: datetime) -> list[SessionId]:
        return await self._timed("sessions", self.inner.sessions_starting(since, until))

    async def spec(self, session: SessionId) -> SessionSpec:
        return await self._timed("spec", self.inner.spec(session))

    async def append_admin_audit(
        self, actor: str, action: str, detail: dict[str, Scalar], at: datetime
    ) -> AdminAuditEntry:
        call = self.inner.append_admin_audit(actor, action, detail, at)
        return await self._timed("admin_audit", call)

    async def admin_audit(
        self, after_seq: int = 0, limit: int | None = None
    ) -> list[AdminAuditEntry]:
        return await self._timed("admin_audit_read", self.inner.admin_audit(after_seq, limit))

    async def node_heartbeat(self, node: NodeId, at: datetime) -> None:
        await self._timed("presence", self.inner.node_heartbeat(node, at))

    async def track(self, node: NodeId, session: SessionId) -> None:
        await self._timed("presence", self.inner.track(node, session))

    async def untrack(self, node: NodeId, session: SessionId) -> None:
        await self._timed("presence", self.inner.untrack(node, session))

    async def node_sessions(self, node: NodeId) -> list[SessionId]:
        return await self._timed("presence", self.inner.node_sessions(node))

    async def stale_nodes(self, older_than: datetime) -> list[tuple[NodeId, datetime]]:
        return await self._timed("presence", self.inner.stale_nodes(older_than))

    async def forget_node(self, node: NodeId, *, last_seen: datetime | None = None) -> bool:
        return await self._timed("presence", self.inner.forget_node(node, last_seen=last_seen))

    async def ping(self) -> None:
        await self._timed("ping", self.inner.ping())

    async def close(self) -> None:
        await self.inner.close()
