"""The embedded store: one process, no Redis. The zero-set-up default for a single node."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from rooms.audit import AdminAuditEntry, next_admin_entry
from rooms.errors import SessionExists, SessionNotFound
from rooms.ids import NodeId, SessionId
from rooms.ledger import LedgerEvent, Scalar
from rooms.session import SessionSpec, SessionStatus
from rooms.state import SessionState
from rooms.store.base import (
    FORWARDER_PIN_SECONDS,
    Mutation,
    SessionStore,
    check_spare,
    utc,
)


@dataclass(slots=True)
class _Ledger:
    """One session's events as JSON, with their seqs kept alongside for bisecting."""

    seqs: list[int] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)


#: Counters kept before ended windows are dropped.
_MAX_HIT_KEYS = 10_000


class MemoryStore(SessionStore):
    """Sessions in dicts, kept as JSON exactly as Redis keeps them.

    Storing JSON rather than objects means no caller can alias stored state, and a mutation that
    raises leaves nothing changed, just as in Redis. ``change`` is synchronous and there is no
    ``await`` between the read and the write, so each transaction is atomic on the event loop.
    A state its caller gave back (``release``) stands in for parsing the document it was
    committed as, as in the Redis store.
    """

    def __init__(
        self,
        *,
        ended_ttl_seconds: int = 7 * 86400,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ended_ttl_seconds
        self._clock = clock
        self._docs: dict[SessionId, str] = {}
        #: Per session: the state its last transaction returned, until given back; then the
        #: given-back state, the document already parsed.
        self._out: dict[SessionId, SessionState] = {}
        self._spares: dict[SessionId, SessionState] = {}
        #: Like the Redis hash's EXPIRE: ended sessions' state is forgotten after the TTL.
        self._expires: dict[SessionId, float] = {}
        #: The ledger is never expired: it is the attendance record.
        self._ledgers: dict[SessionId, _Ledger] = {}
        #: Specs are kept with the ledger, never expired, so it stays summarizable.
        self._specs: dict[SessionId, str] = {}
        #: The admin audit log (frozen entries); entry ``n`` has seq ``n + 1``.
        self._admin: list[AdminAuditEntry] = []
        self._starts: dict[SessionId, float] = {}
        self._heartbeats: dict[NodeId, datetime] = {}
        self._tracked: dict[NodeId, set[SessionId]] = {}
        #: Rate-limit counters by (key, window, window number).
        self._hits: dict[tuple[str, int, int], int] = {}
        #: Revoked staff tokens by id, with the expiry they were revoked until.
        self._revoked: dict[str, datetime] = {}
        #: Forwarder pins by session, with the clock reading they are forgotten at.
        self._pins: dict[SessionId, tuple[str, float]] = {}

    async def create(self, state: SessionState, events: list[LedgerEvent]) -> None:
        sid = state.spec.id
        if self._doc(sid) is not None:
            raise SessionExists(f"session {sid} exists")
        self._write(state, events)
        self._specs[sid] = state.spec.model_dump_json()
        self._starts[sid] = state.spec.starts_at.timestamp()

    async def get(self, session: SessionId) -> SessionState:
        return SessionState.model_validate_json(self._require(session))

    async def transact(
        self, session: SessionId, change: Mutation
    ) -> tuple[SessionState, list[LedgerEvent]]:
        doc = self._require(session)
        state = self._spares.pop(session, None)  # a change that raises may leave it half done
        if state is None:
            state = SessionState.model_validate_json(doc)
        else:
            check_spare(state, doc)
        events = change(state)
        state.version += 1
        self._write(state, events)
        self._out[session] = state
        return state, events

    def release(self, state: SessionState) -> None:
        sid = state.spec.id
        if self._out.get(sid) is state:
            del self._out[sid]
            self._spares[sid] = state

    async def events(self, session: SessionId, after_seq: int = 0) -> list[LedgerEvent]:
        ledger = self._ledgers.get(session)
        if ledger is None:
            return []
        start = bisect.bisect_right(ledger.seqs, after_seq)
        return [LedgerEvent.model_validate_json(d) for d in ledger.docs[start:]]

    async def sessions_starting(self, since: datetime, until: datetime) -> list[SessionId]:
        lo, hi = since.timestamp(), until.timestamp()
        # Ties broken by id, as Redis orders equal scores in a sorted set.
        found = sorted((t, sid) for sid, t in self._starts.items() if lo <= t < hi)
        return [sid for _, sid in found]

    async def spec(self, session: SessionId) -> SessionSpec:
        doc = self._specs.get(session)
        if doc is None:
            raise SessionNotFound(f"session {session} not found")
        return SessionSpec.model_validate_json(doc)

    async def append_admin_audit(
        self, actor: str, action: str, detail: dict[str, Scalar], at: datetime
    ) -> AdminAuditEntry:
        last = self._admin[-1] if self._admin else None
        entry = next_admin_entry(
            last.seq if last else 0,
            last.hash if last else "",
            actor=actor,
            action=action,
            detail=detail,
            at=at,
        )
        self._admin.append(entry)
        return entry

    async def admin_audit(
        self, after_seq: int = 0, limit: int | None = None
    ) -> list[AdminAuditEntry]:
        start = max(after_seq, 0)
        stop = None if limit is None else start + max(limit, 0)
        return self._admin[start:stop]

    async def node_heartbeat(self, node: NodeId, at: datetime) -> None:
        self._heartbeats[node] = utc(at)

    async def track(self, node: NodeId, session: SessionId) -> None:
        self._tracked.setdefault(node, set()).add(session)

    async def untrack(self, node: NodeId, session: SessionId) -> None:
        tracked = self._tracked.get(node)
        if tracked is not None:
            tracked.discard(session)
            if not tracked:  # as Redis deletes an empty set
                del self._tracked[node]

    async def node_sessions(self, node: NodeId) -> list[SessionId]:
        return sorted(self._tracked.get(node, ()))

    async def stale_nodes(self, older_than: datetime) -> list[tuple[NodeId, datetime]]:
        limit = utc(older_than)
        found = sorted((at, node) for node, at in self._heartbeats.items() if at < limit)
        return [(node, at) for at, node in found]

    async def forget_node(self, node: NodeId, *, last_seen: datetime | None = None) -> bool:
        if last_seen is not None:
            beat = self._heartbeats.get(node)
            if (beat is not None and beat > last_seen) or self._tracked.get(node):
                return False
        self._heartbeats.pop(node, None)
        self._tracked.pop(node, None)
        return True

    async def hit(self, key: str, window: int, now: datetime, amount: int = 1) -> tuple[int, float]:
        moment = utc(now).timestamp()
        bucket = int(moment // window)
        if len(self._hits) > _MAX_HIT_KEYS:  # drop windows that have ended
            self._hits = {k: n for k, n in self._hits.items() if k[2] >= bucket}
        slot = (key, window, bucket)
        count = self._hits[slot] = self._hits.get(slot, 0) + amount
        return count, (bucket + 1) * window - moment

    async def revoke_token(self, jti: str, until: datetime, now: datetime) -> None:
        self._revoked[jti] = max(utc(until), self._revoked.get(jti, utc(until)))

    async def token_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    async def forwarder_pin(self, session: SessionId) -> str | None:
        pin = self._pins.get(session)
        if pin is not None and self._clock() >= pin[1]:
            del self._pins[session]
            return None
        return pin[0] if pin is not None else None

    async def pin_forwarder(
        self, session: SessionId, instance: str | None, *, replacing: str | None
    ) -> str | None:
        held = await self.forwarder_pin(session)
        if held != replacing:
            return held
        if instance is None:
            self._pins.pop(session, None)
        else:
            self._pins[session] = (instance, self._clock() + FORWARDER_PIN_SECONDS)
        return instance

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _doc(self, sid: SessionId) -> str | None:
        expires = self._expires.get(sid)
        if expires is not None and self._clock() >= expires:
            del self._docs[sid], self._expires[sid]
            self._out.pop(sid, None)
            self._spares.pop(sid, None)
        return self._docs.get(sid)

    def _require(self, sid: SessionId) -> str:
        doc = self._doc(sid)
        if doc is None:
            raise SessionNotFound(f"session {sid} not found")
        return doc

    def _write(self, state: SessionState, events: list[LedgerEvent]) -> None:
        sid = state.spec.id
        self._docs[sid] = state.model_dump_json()
        self._out.pop(sid, None)  # any state handed out before no longer matches
        self._spares.pop(sid, None)
        if state.status is SessionStatus.ENDED:
            self._expires[sid] = self._clock() + self._ttl
        for endpoint in state.endpoints.values():
            self._tracked.setdefault(endpoint.node, set()).add(sid)
        ledger = self._ledgers.setdefault(sid, _Ledger())
        for event in events:
            ledger.seqs.append(event.seq)
            ledger.docs.append(event.model_dump_json())
