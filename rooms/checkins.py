"""On-demand check-ins: a patient asks to talk now; the first care-team clinician picks it up.

A request moves once, from ``waiting`` to ``taken`` or ``cancelled``; the store makes that
move atomic (two clinicians picking at the same instant: exactly one wins). Each move is
recorded as a :class:`CheckinRecord` in an append-only log, with pseudonymous ids only. The
patient chooses a reason from a fixed list: free text could carry health information into
the records.
"""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import NewType
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict

from rooms.errors import CheckinCancelled, CheckinTaken, NotAuthorized, NotOnDuty
from rooms.ids import AttendeeId, SessionId
from rooms.kinds import SessionKind

CheckinId = NewType("CheckinId", str)


def new_checkin_id() -> CheckinId:
    return CheckinId("ci-" + secrets.token_urlsafe(9))


class Reason(StrEnum):
    """Why the patient asks, from a fixed list (no free text)."""

    CHECK_IN = "check_in"
    HARD_MOMENT = "hard_moment"
    CRAVINGS = "cravings"
    MEDICATION = "medication"
    SCHEDULE = "schedule"


#: What the patient page shows for each reason.
REASON_WORDS: dict[Reason, str] = {
    Reason.CHECK_IN: "I'd like to check in",
    Reason.HARD_MOMENT: "I'm having a hard moment",
    Reason.CRAVINGS: "Cravings or urges",
    Reason.MEDICATION: "A question about my medication",
    Reason.SCHEDULE: "A question about my schedule",
}


class CheckinStatus(StrEnum):
    WAITING = "waiting"
    TAKEN = "taken"
    CANCELLED = "cancelled"


class CheckinRequest(BaseModel):
    """One request. ``team`` is fixed when it is made: the clinicians who may pick it up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: CheckinId
    patient: AttendeeId
    #: Set when partners ask together: the check-in becomes a couples session.
    partner: AttendeeId | None = None
    kind: SessionKind
    reason: Reason | None = None
    team: tuple[AttendeeId, ...]
    status: CheckinStatus = CheckinStatus.WAITING
    requested_at: AwareDatetime
    taken_by: AttendeeId | None = None
    taken_at: AwareDatetime | None = None
    session: SessionId | None = None
    cancelled_at: AwareDatetime | None = None
    cancelled_by: str | None = None

    def people(self) -> tuple[AttendeeId, ...]:
        return (self.patient, self.partner) if self.partner else (self.patient,)

    def waited(self, now: datetime) -> timedelta:
        """How long it waited: until picked up or cancelled, else until ``now``."""
        end = self.taken_at or self.cancelled_at or now
        return max(end - self.requested_at, timedelta(0))


class CheckinAction(StrEnum):
    REQUESTED = "requested"
    TAKEN = "taken"
    CANCELLED = "cancelled"


class CheckinRecord(BaseModel):
    """One line of the check-in log: pseudonymous ids, instants and the wait, nothing else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = 0  # set by the store
    at: AwareDatetime
    request: CheckinId
    action: CheckinAction
    patient: AttendeeId
    kind: SessionKind
    actor: str
    reason: Reason | None = None
    session: SessionId | None = None
    wait_ms: int | None = None


def requested(req: CheckinRequest) -> CheckinRecord:
    return CheckinRecord(
        at=req.requested_at,
        request=req.id,
        action=CheckinAction.REQUESTED,
        patient=req.patient,
        kind=req.kind,
        actor=req.patient,
        reason=req.reason,
    )


def take(
    req: CheckinRequest, clinician: AttendeeId, session: SessionId, now: datetime
) -> tuple[CheckinRequest, CheckinRecord]:
    """``clinician`` picks ``req`` up into ``session``. Refused unless it still waits and the
    clinician is on its care team."""
    _require_waiting(req)
    if clinician not in req.team:
        raise NotAuthorized("only a clinician of this patient's care team can take it")
    done = req.model_copy(
        update={
            "status": CheckinStatus.TAKEN,
            "taken_by": clinician,
            "taken_at": now,
            "session": session,
        }
    )
    return done, _record(done, CheckinAction.TAKEN, clinician, now)


def cancel(req: CheckinRequest, by: str, now: datetime) -> tuple[CheckinRequest, CheckinRecord]:
    """The patient (or their partner) withdraws a waiting request."""
    _require_waiting(req)
    if by not in req.people():
        raise NotAuthorized("only the patient who asked can cancel this request")
    done = req.model_copy(
        update={"status": CheckinStatus.CANCELLED, "cancelled_at": now, "cancelled_by": by}
    )
    return done, _record(done, CheckinAction.CANCELLED, by, now)


def _record(req: CheckinRequest, action: CheckinAction, actor: str, now: datetime) -> CheckinRecord:
    return CheckinRecord(
        at=now,
        request=req.id,
        action=action,
        patient=req.patient,
        kind=req.kind,
        actor=actor,
        reason=req.reason,
        session=req.session,
        wait_ms=int(req.waited(now) / timedelta(milliseconds=1)),
    )


def _require_waiting(req: CheckinRequest) -> None:
    if req.status is CheckinStatus.TAKEN:
        raise CheckinTaken("this request was already picked up")
    if req.status is CheckinStatus.CANCELLED:
        raise CheckinCancelled("this request was cancelled by the patient")


class DutyHours(BaseModel):
    """When clinicians take check-ins, in the program's time zone: ``start``-``end`` on the
    listed ISO weekdays (1 = Monday). An ``end`` of 24:00 (or 00:00) means midnight, and
    an ``end`` before ``start`` runs past midnight."""

    model_config = ConfigDict(frozen=True)

    start: time
    end: time
    days: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> DutyHours:
        """``"08:00-20:00"`` (every day) or ``"mon-fri 08:00-20:00"``; ValueError otherwise."""
        words = text.strip().lower().split()
        if len(words) not in (1, 2):
            raise ValueError("write check-in hours like 08:00-20:00 or mon-fri 08:00-20:00")
        days = _days(words[0]) if len(words) == 2 else frozenset(range(1, 8))
        start, _, end = words[-1].partition("-")
        end = "00:00" if end == "24:00" else end
        try:
            return cls(start=time.fromisoformat(start), end=time.fromisoformat(end), days=days)
        except ValueError:
            raise ValueError("write check-in hours like 08:00-20:00 (24-hour clock)") from None

    def on_duty(self, now: datetime, tz: ZoneInfo) -> bool:
        local = now.astimezone(tz)
        if local.isoweekday() not in self.days:
            return False
        clock = local.time().replace(tzinfo=None)
        if self.end == time(0) or self.end <= self.start:  # until midnight, or overnight
            return clock >= self.start or clock < self.end
        return self.start <= clock < self.end


def require_on_duty(hours: DutyHours, now: datetime, tz: ZoneInfo) -> None:
    if not hours.on_duty(now, tz):
        raise NotOnDuty("nobody is on duty for check-ins right now")


_DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in _DAY_NAMES or (last and last not in _DAY_NAMES):
            raise ValueError(f"unknown day in check-in hours: {part!r} (use mon..sun)")
        lo = _DAY_NAMES.index(first) + 1
        hi = _DAY_NAMES.index(last) + 1 if last else lo
        days.update(range(lo, hi + 1) if lo <= hi else [*range(lo, 8), *range(1, hi + 1)])
    return frozenset(days)
