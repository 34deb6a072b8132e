"""Presence and summaries from hand-built ledgers: exact minutes, reconnects, overlaps, modality,
dates of service across midnight and DST, and IOP day/week totals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rooms.attendance.billing import Status
from rooms.attendance.intervals import Interval
from rooms.attendance.presence import track
from rooms.attendance.rules import load_rules_file
from rooms.attendance.summary import (
    AttendanceRow,
    SessionSummary,
    program_totals,
    rows_of,
    summarize,
)
from rooms.ids import AttendeeId, EndpointId, SessionId
from rooms.kinds import GroupPurpose, Role, SessionKind
from rooms.ledger import EventKind, LedgerEvent, Scalar
from rooms.roster import RosterEntry, build_roster
from rooms.session import SessionSpec

TZ = "America/New_York"
NY = ZoneInfo(TZ)
RULES = load_rules_file(Path(__file__).resolve().parents[1] / "config" / "billing.toml")
T0 = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
C = AttendeeId("c-17")
P1 = AttendeeId("p-201")
P2 = AttendeeId("p-202")
G1 = AttendeeId("g-301")


def ms(minutes: int, seconds: int = 0) -> int:
    """Seconds of ``minutes:seconds``."""
    return minutes * 60 + seconds


def make_spec(
    kind: SessionKind = SessionKind.INDIVIDUAL,
    *,
    session: str = "s-1",
    patients: tuple[str, ...] = (P1,),
    guests: tuple[str, ...] = (),
    purpose: GroupPurpose | None = None,
    planned: int = 60,
    identified: str | None = None,
    starts_at: datetime = T0,
) -> SessionSpec:
    entries = [RosterEntry(attendee=C, role=Role.CLINICIAN)]
    entries += [RosterEntry(attendee=p, role=Role.PATIENT) for p in patients]
    entries += [RosterEntry(attendee=g, role=Role.GUEST) for g in guests]
    return SessionSpec(
        id=SessionId(session),
        kind=kind,
        roster=build_roster(kind, entries, purpose=purpose, capacity=12),
        starts_at=starts_at,
        planned_minutes=planned,
        capacity=12,
        purpose=purpose,
        identified_patient=AttendeeId(identified) if identified else None,
        created_by=C,
        created_at=starts_at,
    )


class Ledger:
    """One session's events; ``seq`` follows call order, times are seconds after ``t0``."""

    def __init__(self, session: str = "s-1", t0: datetime = T0) -> None:
        self.session, self.t0 = SessionId(session), t0
        self.events: list[LedgerEvent] = []
        self.add(0, EventKind.SESSION_OPENED)

    def add(
        self,
        seconds: int,
        kind: EventKind,
        who: str | None = None,
        endpoint: str | None = None,
        actor: str | None = None,
        **data: Scalar,
    ) -> Ledger:
        self.events.append(
            LedgerEvent(
                seq=len(self.events) + 1,
                at=self.t0 + timedelta(seconds=seconds),
                session=self.session,
                kind=kind,
                attendee=AttendeeId(who) if who else None,
                endpoint=EndpointId(endpoint) if endpoint else None,
                actor=actor,
                data=data,
            )
        )
        return self

    def admit(self, seconds: int, who: str, endpoint: str = "e-1", actor: str = C) -> Ledger:
        return self.add(seconds, EventKind.ADMITTED, who, endpoint, actor)

    def leave(self, seconds: int, who: str, endpoint: str = "e-1") -> Ledger:
        return self.add(seconds, EventKind.LEFT, who, endpoint, who)

    def attend(self, who: str, start: int, end: int, endpoint: str = "e-1") -> Ledger:
        return self.admit(start, who, endpoint).leave(end, who, endpoint)

    def end(self, seconds: int) -> Ledger:
        return self.add(seconds, EventKind.SESSION_ENDED, actor=C)


def summary_of(
    ledger: Ledger, spec: SessionSpec, *, as_of: datetime | None = None
) -> SessionSummary:
    (summary,) = summarize(ledger.events, {spec.id: spec}, tz=TZ, rules=RULES, as_of=as_of)
    return summary


def row_of(summary: SessionSummary, who: str) -> AttendanceRow:
    (row,) = [r for r in summary.rows if r.attendee == who]
    return row


def at(seconds: int, t0: datetime = T0) -> datetime:
    return t0 + timedelta(seconds=seconds)


# --- per attendee per session ------------------------------------------------------------


def test_an_individual_session_row_has_exact_times_minutes_and_code() -> None:
    ledger = Ledger().admit(0, C, "e-c", actor="system").attend(P1, ms(1), ms(46)).end(ms(50))
    summary = summary_of(ledger, make_spec())
    row = row_of(summary, P1)
    assert (row.first_join, row.last_leave) == (at(ms(1)), at(ms(46)))
    assert (row.present, row.video, row.audio) == (
        timedelta(minutes=45),
        timedelta(minutes=45),
        timedelta(0),
    )
    assert (row.present_minutes, row.disconnects, row.role) == (45, 0, Role.PATIENT)
    assert (row.suggested_code, row.modifier, row.pos, row.status) == (
        "90834",
        "95",
        "10",
        Status.SUGGESTED,
    )
    assert row.explanation == (
        "individual psychotherapy 38-52 min: 45 min present -> 90834; "
        "video 45 min, audio-only 0 min -> modifier 95; POS 10"
    )
    clinician = row_of(summary, C)
    assert (clinician.role, clinician.suggested_code, clinician.status) == (
        Role.CLINICIAN,
        None,
        Status.NOT_BILLABLE,
    )
    assert clinician.present == timedelta(minutes=50)
    assert (summary.started_at, summary.ended_at) == (at(0), at(ms(50)))


def test_a_reconnect_gap_is_not_present_time_and_counts_one_disconnect() -> None:
    ledger = (
        Ledger()
        .admit(0, P1)
        .add(ms(10), EventKind.DISCONNECTED, P1, "e-1", "system")
        .add(ms(10, 40), EventKind.RESUMED, P1, "e-1", P1)
        .leave(ms(53, 39), P1)
        .end(ms(55))
    )
    row = row_of(summary_of(ledger, make_spec()), P1)
    assert row.present == timedelta(minutes=52, seconds=59)  # 53:39 minus the 40 s gap
    assert row.intervals == (Interval(at(0), at(ms(10))), Interval(at(ms(10, 40)), at(ms(53, 39))))
    assert (row.disconnects, row.suggested_code) == (1, "90834")


def test_a_dropped_shared_device_drops_both_partners_and_its_resume_restores_both() -> None:
    ledger = (
        Ledger()
        .admit(0, P1, "e-home")
        .add(0, EventKind.ADMITTED, P2, "e-home", C, shared_device=True)
        .add(ms(20), EventKind.DISCONNECTED, endpoint="e-home", actor="system")
        .add(ms(21), EventKind.RESUMED, endpoint="e-home", actor="system")
        .add(ms(50), EventKind.LEFT, endpoint="e-home")
        .end(ms(55))
    )
    summary = summary_of(ledger, make_spec(SessionKind.COUPLES, patients=(P1, P2)))
    for who in (P1, P2):
        row = row_of(summary, who)
        assert (row.present, row.disconnects) == (timedelta(minutes=49), 1)


def test_a_person_on_two_devices_at_once_counts_once() -> None:
    ledger = Ledger().attend(P1, 0, ms(30), "e-laptop").attend(P1, ms(20), ms(50), "e-phone")
    (session,) = track(ledger.end(ms(60)).events)
    found = session.attendees[P1]
    assert found.by_endpoint == {
        EndpointId("e-laptop"): (Interval(at(0), at(ms(30))),),
        EndpointId("e-phone"): (Interval(at(ms(20)), at(ms(50))),),
    }
    assert found.intervals == (Interval(at(0), at(ms(50))),)
    assert found.present == timedelta(minutes=50)


def test_a_start_while_present_and_an_end_while_absent_change_nothing() -> None:
    ledger = (
        Ledger()
        .leave(ms(1), P1)  # not present yet: no effect
        .admit(ms(2), P1)
        .add(ms(5), EventKind.MARKED_PRESENT, P1, "e-1", C)  # already present
        .leave(ms(40), P1)
        .leave(ms(41), P1)
        .end(ms(45))
    )
    row = row_of(summary_of(ledger, make_spec()), P1)
    assert row.intervals == (Interval(at(ms(2)), at(ms(40))),)


def test_session_ended_closes_open_presence_and_later_events_are_ignored() -> None:
    ledger = Ledger().admit(0, P1).end(ms(30)).admit(ms(31), P1).leave(ms(59), P1)
    row = row_of(summary_of(ledger, make_spec()), P1)
    assert (row.present, row.last_leave) == (timedelta(minutes=30), at(ms(30)))


def test_without_session_ended_open_presence_counts_no_time_unless_as_of_is_given() -> None:
    ledger = Ledger().attend(P1, 0, ms(10)).admit(ms(20), P1)
    row = row_of(summary_of(ledger, make_spec()), P1)
    assert (row.present, row.status, row.last_leave) == (timedelta(minutes=10), Status.OPEN, None)
    live = row_of(summary_of(ledger, make_spec(), as_of=at(ms(45))), P1)
    assert (live.present, live.status, live.last_leave) == (
        timedelta(minutes=35),
        Status.OPEN,
        None,
    )
    assert live.suggested_code is None


def test_endpoint_audio_only_time_is_counted_as_audio() -> None:
    ledger = (
        Ledger()
        .admit(0, P1)
        .add(ms(10), EventKind.MODALITY, endpoint="e-1", modality="audio")
        .add(ms(40), EventKind.MODALITY, endpoint="e-1", modality="video")
        .leave(ms(60), P1)
        .end(ms(60))
    )
    row = row_of(summary_of(ledger, make_spec()), P1)
    assert (row.video, row.audio) == (timedelta(minutes=30), timedelta(minutes=30))


def test_attendee_audio_only_applies_on_every_device_but_video_anywhere_wins() -> None:
    ledger = (
        Ledger()
        .admit(0, P1, "e-1")
        .add(ms(5), EventKind.MODALITY, P1, modality="audio")
        .admit(ms(10), P1, "e-2")
        .add(ms(20), EventKind.MODALITY, P1, modality="video")
        .add(ms(30), EventKind.MODALITY, endpoint="e-2", modality="audio")
        .leave(ms(40), P1, "e-1")
        .end(ms(50))
    )
    row = row_of(summary_of(ledger, make_spec()), P1)
    # audio 5-20 (both devices audio), video 0-5 and 20-40 (e-1 on video), audio 40-50 (e-2)
    assert (row.video, row.audio) == (timedelta(minutes=25), timedelta(minutes=25))


def test_a_malformed_modality_event_is_refused() -> None:
    ledger = Ledger().admit(0, P1).add(ms(1), EventKind.MODALITY, P1, modality="smoke")
    with pytest.raises(ValueError, match="modality must be"):
        list(track(ledger.events))


def test_out_of_order_events_are_refused_and_exact_duplicates_skipped() -> None:
    ledger = Ledger().attend(P1, 0, ms(20)).end(ms(30))
    events = ledger.events
    (session,) = track([*events[:2], events[1], *events[2:]])
    assert session.attendees[P1].present == timedelta(minutes=20)
    with pytest.raises(ValueError, match="out of order"):
        list(track([events[0], events[2], events[1]]))


def test_a_session_without_spec_is_an_error() -> None:
    with pytest.raises(ValueError, match="no session spec for session s-1"):
        list(summarize(Ledger().end(1).events, {}, tz=TZ, rules=RULES))


def test_sessions_stream_out_as_they_end() -> None:
    first = Ledger("s-a").attend(P1, 0, ms(20)).end(ms(30)).events
    second = Ledger("s-b").attend(P1, ms(40), ms(50)).end(ms(60)).events
    consumed: list[int] = []

    def feed() -> Iterator[LedgerEvent]:
        for ev in [second[0], *first, *second[1:]]:
            consumed.append(ev.seq)
            yield ev

    stream = track(feed())
    assert next(stream).session == "s-a"
    assert len(consumed) == 1 + len(first)  # s-b not read further before s-a came out
    assert next(stream).session == "s-b"


# --- date of service: midnight, DST ---------------------------------------------------------


def local(y: int, mo: int, d: int, h: int, mi: int, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, fold=fold, tzinfo=NY).astimezone(UTC)


def session_at(start: datetime, who: str, minutes: int, session: str) -> SessionSummary:
    ledger = Ledger(session, start).attend(who, 0, ms(minutes)).end(ms(minutes))
    return summary_of(ledger, make_spec(session=session, starts_at=start))


def test_a_session_crossing_midnight_belongs_to_its_start_date() -> None:
    summary = session_at(local(2024, 6, 3, 23, 30), P1, 60, "s-late")
    assert summary.date_of_service == date(2024, 6, 3)
    assert row_of(summary, P1).date_of_service == date(2024, 6, 3)


def test_fall_back_day_counts_real_elapsed_minutes() -> None:
    # 01:30 EDT to 01:30 EST is 0 minutes on the wall clock and 60 real minutes.
    start, end = local(2024, 11, 3, 1, 30), local(2024, 11, 3, 1, 30, fold=1)
    assert end - start == timedelta(minutes=60)
    ledger = Ledger("s-fb", start).attend(P1, 0, ms(60)).end(ms(60))
    summary = summary_of(ledger, make_spec(session="s-fb", starts_at=start))
    assert summary.date_of_service == date(2024, 11, 3)
    assert row_of(summary, P1).present == timedelta(minutes=60)
    # 01:30-02:30 local after the change (the second 01:30) is also a real hour.
    assert local(2024, 11, 3, 2, 30) - local(2024, 11, 3, 1, 30, fold=1) == timedelta(hours=1)


def test_dst_days_have_exact_daily_totals() -> None:
    # Spring forward: 01:30 EST -> 03:30 EDT is 60 minutes; 23:30 the night before is Mar 9.
    summaries = [
        session_at(local(2024, 3, 9, 23, 30), P1, 60, "s-sat"),
        session_at(local(2024, 3, 10, 1, 30), P1, 60, "s-sf1"),
        session_at(local(2024, 3, 10, 10, 0), P1, 60, "s-sf2"),
        session_at(local(2024, 3, 10, 23, 30), P1, 60, "s-sf3"),
    ]
    assert summaries[1].rows[1].last_leave == local(2024, 3, 10, 3, 30)
    days = {d.period: d for d in program_totals(rows_of(summaries), RULES.iop).days}
    assert days["2024-03-09"].present == timedelta(minutes=60)
    assert days["2024-03-10"].present == timedelta(minutes=180)
    assert days["2024-03-10"].met and not days["2024-03-09"].met
    assert days["2024-03-10"].sessions == 3


# --- IOP day and ISO week totals ------------------------------------------------------------


def test_day_target_compares_exact_seconds() -> None:
    short = Ledger("s-a").attend(P1, 0, ms(179, 59)).end(ms(180))
    full = Ledger("s-b", T0 + timedelta(days=1)).attend(P1, 0, ms(180)).end(ms(180))
    summaries = [
        summary_of(short, make_spec(session="s-a", planned=180)),
        summary_of(full, make_spec(session="s-b", planned=180, starts_at=T0 + timedelta(days=1))),
    ]
    days = program_totals(rows_of(summaries), RULES.iop).days
    assert [(d.period, d.present_minutes, d.met) for d in days] == [
        ("2024-06-03", 179, False),
        ("2024-06-04", 180, True),
    ]


@pytest.mark.parametrize(
    ("start", "week"),
    [
        (local(2024, 3, 10, 23, 30), "2024-W10"),  # Sunday night into Monday: Sunday's week
        (local(2024, 3, 11, 0, 30), "2024-W11"),  # Monday
        (local(2020, 12, 31, 10, 0), "2020-W53"),
        (local(2021, 1, 3, 10, 0), "2020-W53"),  # Sunday Jan 3 is still in 2020's week 53
        (local(2021, 1, 4, 10, 0), "2021-W01"),
        (local(2024, 12, 30, 10, 0), "2025-W01"),  # Monday Dec 30 opens 2025's week 1
        # 03:00 UTC on Jan 1 is Tuesday Dec 31 in New York, already in 2025's week 1
        (datetime(2025, 1, 1, 3, 0, tzinfo=UTC), "2025-W01"),
    ],
)
def test_iso_week_of_a_session_is_taken_in_the_program_time_zone(
    start: datetime, week: str
) -> None:
    summary = session_at(start, P1, 60, "s-w")
    (total,) = program_totals(summary.rows, RULES.iop).weeks
    assert (total.patient, total.period, total.present) == (P1, week, timedelta(minutes=60))


def test_utc_new_year_is_still_the_old_year_in_new_york() -> None:
    summary = session_at(datetime(2021, 1, 1, 3, 0, tzinfo=UTC), P1, 60, "s-ny")
    assert summary.date_of_service == date(2020, 12, 31)
    (total,) = program_totals(summary.rows, RULES.iop).weeks
    assert total.period == "2020-W53"


def test_week_target_sums_days_and_overlapping_sessions_count_once() -> None:
    monday = local(2024, 6, 3, 9, 0)
    summaries = [session_at(monday + timedelta(days=d), P1, 180, f"s-{d}") for d in (0, 2)] + [
        session_at(monday + timedelta(days=4), P1, 179, "s-4")
    ]
    double_booked = session_at(monday + timedelta(minutes=60), P1, 60, "s-dup")
    (week,) = program_totals(rows_of([*summaries, double_booked]), RULES.iop).weeks
    assert (week.present, week.met) == (timedelta(minutes=539), False)


def test_partner_minutes_count_for_the_partner_and_unattested_time_is_kept_apart() -> None:
    ledger = (
        Ledger()
        .admit(0, P1, "e-home")
        .add(0, EventKind.ADMITTED, P2, "e-home", P1, shared_device=True)
        .leave(ms(50), P1, "e-home")
        .leave(ms(50), P2, "e-home")
        .end(ms(50))
    )
    summary = summary_of(ledger, make_spec(SessionKind.COUPLES, patients=(P1, P2)))
    days = {d.patient: d for d in program_totals(summary.rows, RULES.iop).days}
    assert days[P1].present == timedelta(minutes=50)
    assert (days[P2].present, days[P2].unattested) == (timedelta(0), timedelta(minutes=50))
    attested = Ledger().attend(P1, 0, ms(50)).attend(P2, 0, ms(50), "e-2").end(ms(50))
    summary = summary_of(attested, make_spec(SessionKind.COUPLES, patients=(P1, P2)))
    days = {d.patient: d for d in program_totals(summary.rows, RULES.iop).days}
    assert days[P2].present == timedelta(minutes=50)
    assert row_of(summary, P2).suggested_code is None


def test_guests_and_clinicians_have_no_iop_totals() -> None:
    ledger = Ledger().attend(C, 0, ms(60), "e-c").attend(G1, 0, ms(60), "e-g").attend(P1, 0, ms(60))
    spec = make_spec(SessionKind.GROUP, guests=(G1,), purpose=GroupPurpose.FAMILY_EDUCATION)
    summary = summary_of(ledger.end(ms(60)), spec)
    assert [d.patient for d in program_totals(summary.rows, RULES.iop).days] == [P1]
