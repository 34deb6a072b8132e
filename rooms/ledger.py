"""Attendance ledger events: append-only, written atomically with the state change they record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
    """Build the next event of ``state``'s session, advancing its sequence."""
    state.seq += 1
    return LedgerEvent(
        seq=state.seq,
        at=ctx.now,
        session=state.spec.id,
        kind=kind,
        attendee=attendee,
        endpoint=endpoint,
        node=ctx.node,
        actor=actor,
        data=data,
    )
