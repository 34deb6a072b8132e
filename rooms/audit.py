"""The audit trail: hash-chain checks, who-did-what views, and the admin audit log's entries.

Every session's ledger is a hash chain (``rooms.ledger.emit`` links each event to the one
before it); so is the store's global admin audit log of actions taken outside any session
(exports, audit reads). Changing, removing, reordering or inserting an entry breaks the
chain at that entry, which :func:`verify_chain` and :func:`verify_admin_chain` report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Generic, Protocol, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from rooms.errors import SessionNotFound
from rooms.ids import AttendeeId, EndpointId, PseudonymStr, SessionId
from rooms.kinds import HOST_ROLES
from rooms.ledger import EventKind, LedgerEvent, Scalar, chain_hash, event_hash
from rooms.session import SessionSpec

if TYPE_CHECKING:  # the store depends on this module, not the other way round
    from rooms.store.base import SessionStore

MISSING_HASH = "missing hash"
HASH_MISMATCH = "hash mismatch"
PREV_MISMATCH = "prev does not match previous hash"
SEQUENCE_GAP = "sequence gap"
UNREADABLE = "unreadable entry"
HEAD_MISMATCH = "ledger does not end at the session's recorded head"


class BrokenLink(BaseModel):
    """Where a chain first fails: ``seq`` is the first position that could not be verified."""

    model_config = ConfigDict(frozen=True)

    seq: int
    #: One of the module's reason constants (``"hash mismatch"``, ``"sequence gap"``, ...).
    reason: str
    detail: str = ""


class ChainReport(BaseModel):
    """The outcome of checking one chain (a session's ledger, or the admin log)."""

    model_config = ConfigDict(frozen=True)

    #: The session id, or ``"admin"`` for the admin audit log.
    chain: str
    ok: bool
    #: Entries verified intact (all of them when ``ok``; those before the break otherwise).
    count: int
    #: Hash of the last intact entry ("" for none): compare it with the store's head.
    head: str
    first_broken: BrokenLink | None = None


class _Linked(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def prev(self) -> str | None: ...
    @property
    def hash(self) -> str | None: ...


_T = TypeVar("_T", bound=_Linked)


class ChainVerifier(Generic[_T]):
    """Checks one chain entry by entry, fed in order from its first entry (seq 1, prev "").

    ``digest(entry, prev)`` recomputes the hash an entry must carry. After the first broken
    link further entries are ignored: everything after a break is unverifiable.
    """

    def __init__(self, chain: str, digest: Callable[[_T, str], str]) -> None:
        self._chain = chain
        self._digest = digest
        self._count = 0
        self._head = ""
        self._broken: BrokenLink | None = None

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def feed(self, entry: _T) -> None:
        """Check the next entry against the chain so far."""
        if self._broken is not None:
            return
        expected = self._count + 1
        if entry.seq != expected:
            self.break_here(SEQUENCE_GAP, f"expected seq {expected}, found {entry.seq}")
        elif entry.hash is None:
            self.break_here(MISSING_HASH)
        elif entry.prev != self._head:
            self.break_here(PREV_MISMATCH)
        elif self._digest(entry, self._head) != entry.hash:
            self.break_here(HASH_MISMATCH)
        else:
            self._count, self._head = expected, entry.hash

    def break_here(self, reason: str, detail: str = "") -> None:
        """Record a break at the next position (e.g. for an entry that cannot be read)."""
        if self._broken is None:
            self._broken = BrokenLink(seq=self._count + 1, reason=reason, detail=detail)

    def report(self) -> ChainReport:
        return ChainReport(
            chain=self._chain,
            ok=self._broken is None,
            count=self._count,
            head=self._head,
            first_broken=self._broken,
        )


def session_verifier(session: SessionId) -> ChainVerifier[LedgerEvent]:
    """A verifier of ``session``'s ledger that also refuses events of other sessions."""
    verifier: ChainVerifier[LedgerEvent] = ChainVerifier(session, _session_digest(session))
    return verifier


def _session_digest(session: SessionId) -> Callable[[LedgerEvent, str], str]:
    def digest(event: LedgerEvent, prev: str) -> str:
        # A foreign event never matches: an empty digest is never a valid hash.
        return event_hash(event, prev) if event.session == session else ""

    return digest


def verify_chain(events: Iterable[LedgerEvent]) -> ChainReport:
    """Check one session's complete ledger, from its first event, in sequence order.

    Returns the first broken link: a missing, extra or reordered event (``sequence gap``), an
    event without a hash (``missing hash``; ledgers written before chaining have none), a
    link to the wrong predecessor (``prev does not match previous hash``), or changed content
    (``hash mismatch``, which includes an event of another session).
    """
    verifier: ChainVerifier[LedgerEvent] | None = None
    for event in events:
        if verifier is None:
            verifier = session_verifier(event.session)
        verifier.feed(event)
    if verifier is None:
        return ChainReport(chain="", ok=True, count=0, head="")
    return verifier.report()


async def verify_session(store: SessionStore, session: SessionId) -> ChainReport:
    """:func:`verify_chain` of a stored ledger, also held against the head the session's state
    records while it lives (``ledger_head``), so a deleted tail is found too: the chain alone
    cannot tell a truncated ledger from a shorter one."""
    try:
        state = await store.get(session)  # first: the ledger may only grow after this read
    except SessionNotFound:
        state = None
    events = await store.events(session)
    report = verify_chain(events).model_copy(update={"chain": session})
    if state is None or not report.ok or state.seq == 0:
        return report
    if report.count < state.seq:
        at = report.count + 1
    elif events[state.seq - 1].hash != state.ledger_head:
        at = state.seq
    else:
        return report
    detail = f"the state records seq {state.seq} with hash {state.ledger_head[:12]}..."
    broken = BrokenLink(seq=at, reason=HEAD_MISMATCH, detail=detail)
    return report.model_copy(update={"ok": False, "first_broken": broken})


async def session_audit(store: SessionStore, session: SessionId) -> list[AuditEntry]:
    """:func:`audit_entries` of a stored session (``GET /api/audit?session=``).
    Raises SessionNotFound."""
    return audit_entries(await store.events(session), await store.spec(session))


# The staff-action view of a session's ledger.

#: Ledger events that record a clinician's action, and the action's name in the audit view.
STAFF_ACTIONS: Mapping[EventKind, str] = {
    EventKind.SESSION_CREATED: "create",
    EventKind.ADMITTED: "admit",
    EventKind.DENIED: "deny",
    EventKind.MUTED: "mute",
    EventKind.UNMUTED: "unmute",
    EventKind.MUTE_LOCKED: "lock_mute",
    EventKind.MUTE_UNLOCKED: "unlock_mute",
    EventKind.REMOVED: "remove",
    EventKind.SESSION_LOCKED: "lock",
    EventKind.AUTO_READMIT: "auto_readmit",
    EventKind.SESSION_UNLOCKED: "unlock",
    EventKind.SESSION_ENDED: "end",
    EventKind.MARKED_ABSENT: "mark_absent",
    EventKind.MARKED_PRESENT: "mark_present",
    EventKind.DETACHED: "detach",
}
#: A clinician marking an unattested shared-device partner present attests they are there.
ATTEST = "attest"


class AuditEntry(BaseModel):
    """One staff action in a session, as an admin reviews it. Pseudonymous ids only."""

    model_config = ConfigDict(frozen=True)

    session: SessionId
    seq: int
    at: AwareDatetime
    actor: str
    action: str
    target: AttendeeId | None = None
    endpoint: EndpointId | None = None
    #: The ledger event's kind-specific fields (e.g. ``by`` of a mute, ``reason``).
    detail: dict[str, Scalar] = {}
    #: The ledger event's chain hash, to cite it against a verified chain.
    hash: str | None = None


def audit_entries(events: Iterable[LedgerEvent], spec: SessionSpec) -> list[AuditEntry]:
    """Every action a clinician of the session took, plus the session's creation.

    Actions of the system (auto-admitted clinicians, the reaper ending a session) and of
    patients (leaving, self-muting) are not staff actions and are left out.
    """
    hosts = {e.attendee for e in spec.roster if e.role in HOST_ROLES}
    attested: dict[tuple[AttendeeId | None, EndpointId | None], bool] = {}
    found: list[AuditEntry] = []
    for event in events:
        action = STAFF_ACTIONS.get(event.kind)
        seat = (event.attendee, event.endpoint)
        if event.kind is EventKind.ADMITTED:
            attested[seat] = not event.data.get("shared_device")
        if action is None or event.actor is None:
            continue
        if event.kind is not EventKind.SESSION_CREATED and event.actor not in hosts:
            continue
        if event.kind is EventKind.MARKED_PRESENT and not attested.get(seat, True):
            action, attested[seat] = ATTEST, True
        found.append(_entry(event, event.actor, action))
    return found


def _entry(event: LedgerEvent, actor: str, action: str) -> AuditEntry:
    return AuditEntry(
        session=event.session,
        seq=event.seq,
        at=event.at,
        actor=actor,
        action=action,
        target=event.attendee,
        endpoint=event.endpoint,
        detail=event.data,
        hash=event.hash,
    )


# The admin audit log: actions outside any session, one global chain in the store.

ActionStr = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]


class AdminAction(StrEnum):
    """Admin actions the outer layers record (any action matching ``ActionStr`` is accepted)."""

    ATTENDANCE_EXPORT = "attendance.export"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    ARCHIVE = "archive"
    TOKEN_REVOKE = "token.revoke"


class AdminAuditEntry(BaseModel):
    """One entry of the admin audit log, chained like a session's ledger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    at: AwareDatetime
    #: The staff subject (a pseudonym, as in staff tokens).
    actor: PseudonymStr
    action: ActionStr
    #: What was acted on: e.g. an export's date range and format. Pseudonymous ids only.
    detail: dict[str, Scalar] = {}
    prev: str
    hash: str


def admin_entry_hash(entry: AdminAuditEntry, prev: str) -> str:
    """The hash ``entry`` must carry when it follows an entry whose hash is ``prev``."""
    return _admin_hash(prev, entry.seq, entry.at, entry.actor, entry.action, entry.detail)


def next_admin_entry(
    last_seq: int,
    last_hash: str,
    *,
    actor: str,
    action: str,
    detail: Mapping[str, Scalar],
    at: datetime,
) -> AdminAuditEntry:
    """The entry that follows ``(last_seq, last_hash)`` (``(0, "")`` for the first).

    Raises ``pydantic.ValidationError`` for an actor that is not a pseudonym, a malformed
    action, or a naive ``at``.
    """
    unhashed = AdminAuditEntry(
        seq=last_seq + 1,
        at=at,
        actor=actor,
        action=action,
        detail=dict(detail),
        prev=last_hash,
        hash="",
    )
    return unhashed.model_copy(update={"hash": admin_entry_hash(unhashed, last_hash)})


def _admin_hash(
    prev: str, seq: int, at: datetime, actor: str, action: str, detail: Mapping[str, Scalar]
) -> str:
    fields = {"seq": seq, "at": at, "actor": actor, "action": action, "detail": detail}
    return chain_hash(prev, fields)


def verify_admin_chain(entries: Iterable[AdminAuditEntry]) -> ChainReport:
    """Check the admin audit log from its first entry, as :func:`verify_chain` does a ledger."""
    verifier: ChainVerifier[AdminAuditEntry] = ChainVerifier("admin", admin_entry_hash)
    for entry in entries:
        verifier.feed(entry)
    return verifier.report()
