"""Attendance ledger events: append-only, written atomically with the state change they record."""

from __future__ import annotations

import hashlib
from _json import encode_basestring_ascii, make_encoder
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict

from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId

if TYPE_CHECKING:
    from rooms.state import SessionState


class EventKind(StrEnum):
    SESSION_CREATED = "session_created"
    SESSION_OPENED = "session_opened"
    SESSION_LIVE = "session_live"
    SESSION_ENDED = "session_ended"
    SESSION_LOCKED = "session_locked"
    SESSION_UNLOCKED = "session_unlocked"
    AUTO_READMIT = "auto_readmit"  # data: {"enabled": bool}
    WAITING = "waiting"  # an attendee arrived in the waiting room
    ADMITTED = "admitted"  # presence starts
    DENIED = "denied"
    LEFT = "left"  # presence ends: the attendee left
    REMOVED = "removed"  # presence ends (if admitted): a clinician removed them
    DISCONNECTED = "disconnected"  # presence ends: connection lost (or node died)
    RESUMED = "resumed"  # presence continues after a reconnect within the grace window
    ATTACHED = "attached"  # a second attendee added on a shared device
    DETACHED = "detached"
    MARKED_ABSENT = "marked_absent"  # presence ends for one attendee of a shared device
    MARKED_PRESENT = "marked_present"  # presence starts again
    MUTED = "muted"
    UNMUTED = "unmuted"
    MUTE_LOCKED = "mute_locked"
    MUTE_UNLOCKED = "mute_unlocked"
    UNMUTE_REQUESTED = "unmute_requested"
    MODALITY = "modality"  # data: {"modality": "video" | "audio"}


#: Events that start presence of (attendee, endpoint). A start while present changes nothing.
PRESENCE_STARTS = frozenset({EventKind.ADMITTED, EventKind.MARKED_PRESENT, EventKind.RESUMED})
#: Events that end presence of (attendee, endpoint). SESSION_ENDED ends every open presence.
PRESENCE_ENDS = frozenset(
    {
        EventKind.LEFT,
        EventKind.REMOVED,
        EventKind.DISCONNECTED,
        EventKind.MARKED_ABSENT,
        EventKind.DETACHED,
    }
)

Scalar = str | int | bool | None


class LedgerEvent(BaseModel):
    """One attendance or control event. Carries pseudonymous ids only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    at: AwareDatetime
    session: SessionId
    kind: EventKind
    attendee: AttendeeId | None = None
    endpoint: EndpointId | None = None
    node: NodeId | None = None
    #: Who caused it: an attendee id, a staff subject, or "system".
    actor: str | None = None
    data: dict[str, Scalar] = {}
    #: Hash of the session's previous event ("" for its first): the chain link (rooms.audit).
    prev: str | None = None
    #: Hex SHA-256 of ``prev`` + :func:`canonical_json` of this event's other fields.
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class Ctx:
    """Where and when a change happens: passed to every domain operation."""

    now: datetime
    node: NodeId


def emit(
    state: SessionState,
    ctx: Ctx,
    kind: EventKind,
    *,
    attendee: AttendeeId | None = None,
    endpoint: EndpointId | None = None,
    actor: str | None = None,
    **data: Scalar,
) -> LedgerEvent:
    """Build the next event of ``state``'s session, advancing its sequence and hash chain.

    The event is chained to the previous one through ``state.ledger_head``; the store writes
    the state and its events atomically, so the chain can neither fork nor skip.
    """
    state.seq += 1
    prev = state.ledger_head
    if endpoint is not None:
        found = state.endpoints.get(endpoint)
        if found is not None:
            found.last_event_at = ctx.now
    if attendee is not None and kind in PRESENCE_ENDS:
        state.attendee(attendee).left_at = ctx.now
    fields: dict[str, object] = {
        "seq": state.seq,
        "at": ctx.now,
        "session": state.spec.id,
        "kind": kind,
        "attendee": attendee,
        "endpoint": endpoint,
        "node": ctx.node,
        "actor": actor,
        "data": data,
    }
    # Hashed from the typed arguments, which validation keeps as they are (the audit's
    # verification, rooms.audit, recomputes every hash from the stored event).
    digest = chain_hash(prev, {**fields, "at": utc_stamp(ctx.now)})
    state.ledger_head = digest
    return LedgerEvent(**fields, prev=prev, hash=digest)


#: The fields an event's hash covers: all but ``prev`` and ``hash`` themselves.
HASHED_FIELDS = ("seq", "at", "session", "kind", "attendee", "endpoint", "node", "actor", "data")


def event_hash(event: LedgerEvent, prev: str) -> str:
    """The hash ``event`` must carry when it follows an event whose hash is ``prev``."""
    fields = {name: getattr(event, name) for name in HASHED_FIELDS}
    fields["at"] = utc_stamp(event.at)  # as canonical_json would, minus its fallback call
    return chain_hash(prev, fields)


def chain_hash(prev: str, fields: Mapping[str, object]) -> str:
    """Hex SHA-256 of ``prev`` (a hex digest, or "" at the start of a chain) followed by the
    canonical JSON of ``fields``. Shared by the session ledgers and the admin audit log."""
    return hashlib.sha256((prev + canonical_json(fields)).encode("ascii")).hexdigest()


def canonical_json(fields: Mapping[str, object]) -> str:
    """Deterministic JSON: keys sorted, no whitespace, ASCII only (``\\u`` escapes), ``None`` as
    null, enums as their values, and datetimes in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
    (always six fraction digits), so the text depends on the values alone, not on how pydantic
    or ``isoformat`` render them."""
    return "".join(_CANONICAL(fields, 0))


def utc_stamp(instant: datetime) -> str:
    """``instant`` as canonical JSON writes it: UTC, microseconds, ``Z`` suffix."""
    u = instant if instant.tzinfo is UTC else instant.astimezone(UTC)
    # %-formatting: one C call, where an f-string formats each field through __format__.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        u.year,
        u.month,
        u.day,
        u.hour,
        u.minute,
        u.second,
        u.microsecond,
    )


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return utc_stamp(value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


#: One encoder for every hash: what ``json.JSONEncoder(sort_keys=True, separators=(",", ":"),
#: ensure_ascii=True, default=_json_default).encode`` runs (its C encoder, which it builds
#: anew for every call), without the check for circular containers (hashed fields are flat
#: but for ``data``, whose values are scalars).
_CANONICAL = make_encoder(
    None, _json_default, encode_basestring_ascii, None, ":", ",", True, False, True
)
