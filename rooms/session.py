"""A session's fixed facts (kind, roster, schedule) and its lifecycle states."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rooms.ids import AttendeeId, SessionId
from rooms.kinds import GroupPurpose, Role, SessionKind
from rooms.roster import RosterEntry


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"  # someone is connected: the waiting room exists
    LIVE = "live"  # a clinician and at least one other attendee are in the call
    ENDED = "ended"


#: The lifecycle, as allowed moves. Everything else raises InvalidTransition.
TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.SCHEDULED: frozenset({SessionStatus.OPEN, SessionStatus.ENDED}),
    SessionStatus.OPEN: frozenset({SessionStatus.LIVE, SessionStatus.ENDED}),
    SessionStatus.LIVE: frozenset({SessionStatus.ENDED}),
    SessionStatus.ENDED: frozenset(),
}


class SessionSpec(BaseModel):
    """What a session is. Fixed at creation; the store never rewrites it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: SessionId
    kind: SessionKind
    roster: tuple[RosterEntry, ...]
    starts_at: AwareDatetime
    planned_minutes: int = Field(ge=5, le=24 * 60)
    capacity: int = Field(ge=1)
    purpose: GroupPurpose | None = None
    #: The claim's subject in a couples session (the first patient unless set).
    identified_patient: AttendeeId | None = None
    created_by: str
    created_at: AwareDatetime
    #: A deployment check (``homeroom probe``), not care: attendance reports over a range of
    #: days leave it out, and nobody's attendance in it is ever billable.
    check: bool = False
    #: The on-demand check-in request this session was opened for (rooms.checkins), if any:
    #: billed as its kind, but recorded as a check-in so payers' rules can tell it apart.
    checkin: str | None = None

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.planned_minutes)

    def role_of(self, attendee: AttendeeId) -> Role | None:
        for entry in self.roster:
            if entry.attendee == attendee:
                return entry.role
        return None

    def entry(self, attendee: AttendeeId) -> RosterEntry | None:
        for entry in self.roster:
            if entry.attendee == attendee:
                return entry
        return None
