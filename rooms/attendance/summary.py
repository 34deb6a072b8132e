"""Attendance summaries: one row per attendee per session, and IOP totals per patient.

A session's date of service is the date its start instant falls on in the program's time zone,
so a session crossing midnight belongs to its start date and daylight-saving days count real
elapsed time (every duration is a difference of UTC instants).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from rooms.attendance.billing import PosHint, Status, Suggestion, suggest
from rooms.attendance.intervals import ZERO, Interval, union_total, whole_minutes
from rooms.attendance.presence import AttendeePresence, SessionPresence, track
from rooms.attendance.rules import BillingRules, IopRules
from rooms.ids import AttendeeId, SessionId
from rooms.kinds import GroupPurpose, Role, SessionKind
from rooms.ledger import LedgerEvent
from rooms.session import SessionSpec


@dataclass(frozen=True, slots=True)
class AttendanceRow:
    """One attendee in one session: the CSV row, plus the exact durations and intervals."""

    session: SessionId
    kind: SessionKind
    purpose: GroupPurpose | None
    date_of_service: date
    attendee: AttendeeId
    role: Role | None
    first_join: datetime | None
    last_leave: datetime | None
    present: timedelta
    video: timedelta
    audio: timedelta
    disconnects: int
    suggested_code: str | None
    modifier: str | None
    pos: str | None
    status: Status
    explanation: str
    intervals: tuple[Interval, ...]

    @property
    def present_minutes(self) -> int:
        return whole_minutes(self.present)

    @property
    def video_minutes(self) -> int:
        return whole_minutes(self.video)

    @property
    def audio_minutes(self) -> int:
        return whole_minutes(self.audio)


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session: when it ran and its rows (roster order, then anyone not on the roster)."""

    session: SessionId
    kind: SessionKind
    purpose: GroupPurpose | None
    date_of_service: date
    started_at: datetime
    #: ``None`` when the ledger has no ``session_ended`` (still running, or cut off).
    ended_at: datetime | None
    rows: tuple[AttendanceRow, ...]


def date_of_service(instant: datetime, tz: str) -> date:
    """The calendar date of ``instant`` in the IANA time zone ``tz`` (e.g. America/New_York)."""
    return instant.astimezone(ZoneInfo(tz)).date()


def summarize(
    events: Iterable[LedgerEvent],
    specs: Mapping[SessionId, SessionSpec],
    *,
    tz: str,
    rules: BillingRules,
    as_of: datetime | None = None,
    pos: PosHint | None = None,
) -> Iterator[SessionSummary]:
    """Summaries of every session in ``events``, streamed as each session completes.

    ``as_of`` closes presence still open at the end of the ledger (live views); without it
    open presence counts no time. Raises ``ValueError`` for a session with no spec in ``specs``
    (looked up when the session completes, so ``specs`` may fill in while streaming).
    """
    for presence in track(events, as_of=as_of):
        spec = specs.get(presence.session)
        if spec is None:
            raise ValueError(f"no session spec for session {presence.session}")
        yield summarize_session(presence, spec, tz=tz, rules=rules, pos=pos)


def summarize_session(
    presence: SessionPresence,
    spec: SessionSpec,
    *,
    tz: str,
    rules: BillingRules,
    pos: PosHint | None = None,
) -> SessionSummary:
    """Rows for one session's presence under ``rules``."""
    if presence.session != spec.id:
        raise ValueError(f"presence of {presence.session} summarized with spec of {spec.id}")
    day = date_of_service(presence.started_at, tz)
    suggestions = suggest(spec, presence.attendees, rules, pos=pos)
    rows = tuple(
        _row(spec, day, who, presence.attendees.get(who), s) for who, s in suggestions.items()
    )
    return SessionSummary(
        spec.id, spec.kind, spec.purpose, day, presence.started_at, presence.ended_at, rows
    )


def rows_of(summaries: Iterable[SessionSummary]) -> Iterator[AttendanceRow]:
    """Every row of ``summaries``, in order."""
    for summary in summaries:
        yield from summary.rows


def _row(
    spec: SessionSpec,
    day: date,
    who: AttendeeId,
    found: AttendeePresence | None,
    s: Suggestion,
) -> AttendanceRow:
    return AttendanceRow(
        session=spec.id,
        kind=spec.kind,
        purpose=spec.purpose,
        date_of_service=day,
        attendee=who,
        role=spec.role_of(who),
        first_join=found.first_join if found else None,
        last_leave=found.last_leave if found else None,
        present=found.present if found else ZERO,
        video=found.video if found else ZERO,
        audio=found.audio if found else ZERO,
        disconnects=found.disconnects if found else 0,
        suggested_code=s.code,
        modifier=s.modifier,
        pos=s.pos,
        status=s.status,
        explanation=s.explanation,
        intervals=found.intervals if found else (),
    )


@dataclass(frozen=True, slots=True)
class PeriodTotal:
    """A patient's present time in one program day or ISO week, and whether it meets the IOP
    target. ``unattested`` is shared-device time awaiting attestation, not counted in ``present``.
    """

    patient: AttendeeId
    #: ``2024-03-10`` for a day, ``2024-W10`` for an ISO week (both in the program's time zone).
    period: str
    present: timedelta
    unattested: timedelta
    target: timedelta
    sessions: int

    @property
    def present_minutes(self) -> int:
        return whole_minutes(self.present)

    @property
    def met(self) -> bool:
        return self.present >= self.target


@dataclass(frozen=True, slots=True)
class ProgramTotals:
    """IOP totals, sorted by patient then period."""

    days: tuple[PeriodTotal, ...]
    weeks: tuple[PeriodTotal, ...]


def program_totals(rows: Iterable[AttendanceRow], iop: IopRules) -> ProgramTotals:
    """Per patient, present time per program day and per ISO week across all sessions.

    Every row counts on its date of service. Overlapping sessions of one patient count once
    (intervals are merged), so a double booking cannot inflate IOP hours. Guests and clinicians
    are not counted; a couples partner's own minutes are, although billed under the other.
    """
    days: defaultdict[tuple[AttendeeId, str], list[AttendanceRow]] = defaultdict(list)
    weeks: defaultdict[tuple[AttendeeId, str], list[AttendanceRow]] = defaultdict(list)
    for row in rows:
        if row.role is not Role.PATIENT:
            continue
        year, week, _ = row.date_of_service.isocalendar()
        days[(row.attendee, row.date_of_service.isoformat())].append(row)
        weeks[(row.attendee, f"{year}-W{week:02d}")].append(row)
    day_target = timedelta(minutes=iop.day_minutes)
    week_target = timedelta(minutes=iop.week_minutes)
    return ProgramTotals(
        days=tuple(_period(k, v, day_target) for k, v in sorted(days.items())),
        weeks=tuple(_period(k, v, week_target) for k, v in sorted(weeks.items())),
    )


def _period(
    key: tuple[AttendeeId, str], rows: list[AttendanceRow], target: timedelta
) -> PeriodTotal:
    attested = [r for r in rows if r.status is not Status.NEEDS_ATTESTATION]
    pending = [r for r in rows if r.status is Status.NEEDS_ATTESTATION]
    patient, period = key
    return PeriodTotal(
        patient=patient,
        period=period,
        present=union_total(iv for r in attested for iv in r.intervals),
        unattested=union_total(iv for r in pending for iv in r.intervals),
        target=target,
        sessions=sum(1 for r in rows if r.intervals),
    )
