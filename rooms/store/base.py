"""The store interface. Both implementations pass one contract suite (test_store_contract.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime

from rooms.audit import AdminAuditEntry
from rooms.ids import NodeId, SessionId
from rooms.ledger import LedgerEvent, Scalar
from rooms.session import SessionSpec
from rooms.state import SessionState

#: A domain change: mutates the given copy of the state in place and returns the events it
#: records. Raising aborts it: nothing is written (a HomeroomError is the domain refusing it).
Mutation = Callable[[SessionState], list[LedgerEvent]]


#: A forwarder pin is forgotten this long after it was set.
FORWARDER_PIN_SECONDS = 2 * 86400

#: The test suite turns this on: every state given back (``SessionStore.release``) is then
#: checked against the document it stands in for, before it is used.
CHECK_SPARES = False


def check_spare(spare: SessionState, doc: str) -> None:
    """With :data:`CHECK_SPARES` on, refuse a given-back state that is not exactly what
    parsing ``doc`` gives: its caller changed it, or the document's round trip loses
    something."""
    if CHECK_SPARES and (
        spare.model_dump_json() != doc or SessionState.model_validate_json(doc) != spare
    ):
        raise AssertionError("a state given back to the store differs from its document")


def utc(at: datetime) -> datetime:
    """``at`` in UTC; a naive datetime is refused rather than read as local time."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times given to the store must be timezone-aware")
    return at.astimezone(UTC)


class SessionStore(ABC):
    """Session state plus its ledger, changed together atomically."""

    @abstractmethod
    async def create(self, state: SessionState, events: list[LedgerEvent]) -> None:
        """Store a new session with its first events. Raises SessionExists."""

    @abstractmethod
    async def get(self, session: SessionId) -> SessionState:
        """The session's current state. Raises SessionNotFound."""

    @abstractmethod
    async def transact(
        self, session: SessionId, change: Mutation
    ) -> tuple[SessionState, list[LedgerEvent]]:
        """Apply ``change`` to the current state and append its events, atomically.

        ``change`` may run more than once when writers race (optimistic concurrency); it must be
        a pure function of the state it is given. Returns the committed state and events.
        Raises SessionNotFound, the change's own HomeroomError, or StoreConflict.
        """

    @abstractmethod
    def release(self, state: SessionState) -> None:
        """Give back a state :meth:`transact` returned, once done with it: the session's next
        change here may then start from it instead of parsing the stored document again.
        Only the last state a session's transaction returned is taken back, and only while
        the store's document is still the one it was committed as. After this the caller
        must not read or change it. Not calling it is always correct, only slower."""

    @abstractmethod
    async def events(self, session: SessionId, after_seq: int = 0) -> list[LedgerEvent]:
        """The session's ledger events with ``seq > after_seq``, in order."""

    @abstractmethod
    async def sessions_starting(self, since: datetime, until: datetime) -> list[SessionId]:
        """Ids of sessions whose scheduled start is in ``[since, until)``, by start time."""

    @abstractmethod
    async def spec(self, session: SessionId) -> SessionSpec:
        """The session's spec, kept as long as its ledger: it outlives the state's TTL, so a
        ledger stays summarizable forever. Raises SessionNotFound."""

    # The admin audit log: staff actions outside any session (exports, audit reads), one
    # global hash chain (rooms.audit). Appends are serialized: no two entries share a prev.

    @abstractmethod
    async def append_admin_audit(
        self, actor: str, action: str, detail: dict[str, Scalar], at: datetime
    ) -> AdminAuditEntry:
        """Append an entry chained to the current last one and return it.

        Raises ``pydantic.ValidationError`` for a malformed entry (see
        ``rooms.audit.AdminAuditEntry``), StoreConflict when appenders keep racing.
        """

    @abstractmethod
    async def admin_audit(
        self, after_seq: int = 0, limit: int | None = None
    ) -> list[AdminAuditEntry]:
        """Admin audit entries with ``seq > after_seq``, in order, at most ``limit`` of them."""

    # Presence: which nodes are alive and which sessions each serves endpoints in. A node that
    # stops beating is reaped by the others (rooms.reaper).

    @abstractmethod
    async def node_heartbeat(self, node: NodeId, at: datetime) -> None:
        """Record ``at`` as ``node``'s last heartbeat."""

    @abstractmethod
    async def track(self, node: NodeId, session: SessionId) -> None:
        """Note that ``node`` serves endpoints in ``session``. Idempotent.

        Every committed change also tracks its session for each node that has an endpoint in
        the new state, in the same atomic write, so an endpoint is never untracked even when its
        node dies right after the commit; explicit calls are for callers that want it earlier.
        """

    @abstractmethod
    async def untrack(self, node: NodeId, session: SessionId) -> None:
        """Forget that ``node`` serves endpoints in ``session``. Idempotent."""

    @abstractmethod
    async def node_sessions(self, node: NodeId) -> list[SessionId]:
        """The sessions ``node`` is tracked in, sorted by id."""

    @abstractmethod
    async def stale_nodes(self, older_than: datetime) -> list[tuple[NodeId, datetime]]:
        """Nodes whose last heartbeat is before ``older_than``, with it, oldest first."""

    @abstractmethod
    async def forget_node(self, node: NodeId, *, last_seen: datetime | None = None) -> bool:
        """Drop ``node``'s heartbeat and session set, once its sessions have been reaped.

        With ``last_seen`` (the heartbeat the reaper found stale), only a node still as the
        reaper found it is forgotten: one that has beaten since, or is tracked in a session
        again, is kept. Atomic. Returns whether the node was forgotten.
        """

    # Limits every node shares: request counters (rooms.ratelimit) and revoked staff tokens.

    @abstractmethod
    async def hit(self, key: str, window: int, now: datetime, amount: int = 1) -> tuple[int, float]:
        """Add ``amount`` hits to ``key`` in the fixed window of ``window`` seconds holding
        ``now``; return the window's hits so far and the seconds until it ends. Atomic."""

    @abstractmethod
    async def revoke_token(self, jti: str, until: datetime, now: datetime) -> None:
        """Remember that the token ``jti`` is revoked, from ``now`` at least until ``until``
        (its expiry; both by the caller's clock)."""

    @abstractmethod
    async def token_revoked(self, jti: str) -> bool:
        """Whether the token ``jti`` was revoked (and has not expired since)."""

    # Which instance of a pool of forwarding units carries a live session's media: a name
    # the media layer chooses and the store keeps without reading it, so every node uses the
    # same instance for the session.

    @abstractmethod
    async def forwarder_pin(self, session: SessionId) -> str | None:
        """The forwarder instance ``session`` is pinned to, or None."""

    @abstractmethod
    async def pin_forwarder(
        self, session: SessionId, instance: str | None, *, replacing: str | None
    ) -> str | None:
        """Pin ``session`` to ``instance`` (None: unpin) if its pin is still ``replacing``
        (None: not pinned); return the pin it holds afterwards, this one or the one another
        node set first. Atomic. A pin is forgotten :data:`FORWARDER_PIN_SECONDS` after it was
        set (sessions are much shorter)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""
