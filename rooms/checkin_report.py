"""The check-in report: per program day, how many asked, how long they waited, who was left."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from rooms.checkins import CheckinId, CheckinRequest, CheckinStatus
from rooms.ids import AttendeeId


class CheckinDay(BaseModel):
    """One program day. Waits are of the requests picked up; ``unanswered`` counts those
    cancelled or still waiting (nobody picked them up)."""

    day: date
    requests: int
    taken: int
    cancelled: int
    waiting: int
    unanswered: int
    wait_p50_seconds: float | None
    wait_p95_seconds: float | None


class Unanswered(BaseModel):
    """A request nobody picked up, pseudonymous: for the admin to follow up."""

    request: CheckinId
    patient: AttendeeId
    requested_at: datetime
    status: CheckinStatus
    waited_seconds: float


class CheckinReport(BaseModel):
    days: list[CheckinDay]
    unanswered: list[Unanswered]


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in (0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def report(
    requests: Iterable[CheckinRequest], first: date, last: date, tz: ZoneInfo, now: datetime
) -> CheckinReport:
    """Days ``first``..``last`` (program time zone), every day listed even without requests."""
    by_day: dict[date, list[CheckinRequest]] = {}
    for req in requests:
        by_day.setdefault(req.requested_at.astimezone(tz).date(), []).append(req)
    days, left = [], []
    day = first
    while day <= last:
        found = by_day.get(day, [])
        waits = [r.waited(now).total_seconds() for r in found if r.status is CheckinStatus.TAKEN]
        count = {s: sum(1 for r in found if r.status is s) for s in CheckinStatus}
        days.append(
            CheckinDay(
                day=day,
                requests=len(found),
                taken=count[CheckinStatus.TAKEN],
                cancelled=count[CheckinStatus.CANCELLED],
                waiting=count[CheckinStatus.WAITING],
                unanswered=len(found) - count[CheckinStatus.TAKEN],
                wait_p50_seconds=percentile(waits, 0.5),
                wait_p95_seconds=percentile(waits, 0.95),
            )
        )
        left += [_unanswered(r, now) for r in found if r.status is not CheckinStatus.TAKEN]
        day += timedelta(days=1)
    return CheckinReport(days=days, unanswered=left)


def _unanswered(req: CheckinRequest, now: datetime) -> Unanswered:
    return Unanswered(
        request=req.id,
        patient=req.patient,
        requested_at=req.requested_at,
        status=req.status,
        waited_seconds=round(req.waited(now).total_seconds(), 1),
    )
