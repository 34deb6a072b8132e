"""The archiver: daily JSONL files that re-summarize, verify, and never lose what they hold."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from rooms import controls, lifecycle, membership
from rooms.archive import (
    ArchiveReport,
    FileStatus,
    admin_log_path,
    archive,
    archive_admin_log,
    archive_path,
    day_start,
    program_days,
    sidecar_path,
    verify_admin_archive,
    verify_archive,
    verify_sidecar,
)
from rooms.attendance.exports import summarize_jsonl
from rooms.attendance.rules import load_rules_file
from rooms.attendance.summary import AttendanceRow, rows_of, summarize
from rooms.audit import HASH_MISMATCH, UNREADABLE
from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.kinds import Role, SessionKind
from rooms.ledger import LedgerEvent
from rooms.roster import RosterEntry
from rooms.service import Change, CreateSession, Rooms
from rooms.store import MemoryStore, SessionStore

TZ = "America/New_York"
NY = ZoneInfo(TZ)
RULES = load_rules_file(Path(__file__).resolve().parents[1] / "config" / "billing.toml")
DAY = date(2026, 11, 2)  # a Monday
C, P1, P2 = AttendeeId("c-17"), AttendeeId("p-201"), AttendeeId("p-202")
E1, E2 = EndpointId("e-1"), EndpointId("e-2")


class Clock:
    """A settable clock for ``Rooms``; like the real one it tells UTC."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


#: A couples session's worth of changes, by minute: waiting room, admission, a partner added on
#: the shared device and attested, mute controls, an audio-only span, the partner stepping
#: away and back, a lock, the end.
SESSION_STEPS: tuple[tuple[int, Change], ...] = (
    (0, partial(membership.join, endpoint=E1, attendee=C)),
    (1, partial(membership.join, endpoint=E2, attendee=P1)),
    (2, partial(membership.admit, actor=C, attendee=P1)),
    (3, partial(membership.attach, endpoint=E2, attendee=P2)),
    (4, partial(membership.mark, actor=C, endpoint=E2, attendee=P2, present=True)),
    (10, partial(controls.mute, actor=C, target=P1)),
    (11, partial(controls.lock_mute, actor=C, target=P1, locked=True)),
    (12, partial(controls.lock_mute, actor=C, target=P1, locked=False)),
    (13, partial(controls.unmute, actor=C, target=P1)),
    (20, partial(membership.report_modality, endpoint=E2, modality="audio")),
    (30, partial(membership.report_modality, endpoint=E2, modality="video")),
    (35, partial(membership.mark, actor=C, endpoint=E2, attendee=P2, present=False)),
    (40, partial(membership.mark, actor=C, endpoint=E2, attendee=P2, present=True)),
    (45, partial(lifecycle.set_locked, actor=C, locked=True)),
    (46, partial(lifecycle.set_locked, actor=C, locked=False)),
    (55, partial(lifecycle.end, actor=C)),
)


async def start_session(rooms: Rooms, clock: Clock, starts_at: datetime) -> SessionId:
    clock.now = starts_at
    roster = [RosterEntry(attendee=a, role=Role.PATIENT) for a in (P1, P2)]
    request = CreateSession(
        kind=SessionKind.COUPLES,
        roster=[RosterEntry(attendee=C, role=Role.CLINICIAN), *roster],
        starts_at=starts_at,
    )
    return (await rooms.create_session(request, created_by=C)).spec.id


async def run_steps(
    rooms: Rooms,
    clock: Clock,
    session: SessionId,
    starts_at: datetime,
    steps: Sequence[tuple[int, Change]] = SESSION_STEPS,
) -> list[LedgerEvent]:
    """Apply ``steps`` at their minutes; returns the events the store acknowledged."""
    acknowledged: list[LedgerEvent] = []
    for minute, change in steps:
        clock.now = starts_at + timedelta(minutes=minute)
        acknowledged += (await rooms.apply(session, change))[1]
    return acknowledged


async def play_session(rooms: Rooms, clock: Clock, starts_at: datetime) -> SessionId:
    session = await start_session(rooms, clock, starts_at)
    await run_steps(rooms, clock, session, starts_at)
    return session


async def archive_day(store: SessionStore, directory: Path, day: date = DAY) -> ArchiveReport:
    """Archive ``day`` (any instant of it selects all of it)."""
    return await archive(store, directory, tz=TZ, since=local(day, 9), until=local(day, 9, 1))


def rooms_on(store: SessionStore) -> tuple[Rooms, Clock]:
    clock = Clock(local(DAY, 0))
    return Rooms(store, node=NodeId("n-1"), clock=clock), clock


async def store_rows(store: SessionStore, sessions: Sequence[SessionId]) -> list[AttendanceRow]:
    events = [e for s in sessions for e in await store.events(s)]
    specs = {s: await store.spec(s) for s in sessions}
    return list(rows_of(summarize(events, specs, tz=TZ, rules=RULES)))


def listing(directory: Path) -> list[str]:
    """Everything under ``directory``, as sorted relative paths."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


def file_rows(path: Path) -> list[AttendanceRow]:
    with path.open(encoding="utf-8") as lines:
        return list(rows_of(summarize_jsonl(lines, tz=TZ, rules=RULES)))


async def test_a_day_file_holds_the_days_sessions_and_re_summarizes(
    store: SessionStore, tmp_path: Path
) -> None:
    rooms, clock = rooms_on(store)
    before = await play_session(rooms, clock, local(DAY - timedelta(days=1), 23, 30))
    morning = await play_session(rooms, clock, local(DAY, 10))
    evening = await play_session(rooms, clock, local(DAY, 23, 30))  # ends after midnight
    after = await play_session(rooms, clock, local(DAY + timedelta(days=1), 0, 30))
    # Any instant of the day selects the whole day.
    report = await archive(store, tmp_path, tz=TZ, since=local(DAY, 12), until=local(DAY, 12, 1))
    path = tmp_path / "2026" / "11" / "homeroom-ledger-2026-11-02.jsonl"
    assert report.ok
    assert [(d.day, d.path, d.status, d.sessions) for d in report.days] == [
        (DAY, path, FileStatus.WRITTEN, 2)
    ]
    assert listing(tmp_path) == [
        "2026", "2026/11", f"2026/11/{path.name}", f"2026/11/{path.name}.sha256"
    ]  # fmt: skip
    assert file_rows(path) == await store_rows(store, [morning, evening])
    lines = path.read_text(encoding="utf-8").splitlines()
    spec = (await store.spec(morning)).model_dump_json()
    assert lines[0] == f'{{"type":"session","spec":{spec}}}'
    assert len(lines) == report.days[0].events + 2
    reports = verify_archive(path)
    assert [(r.chain, r.ok) for r in reports] == [(morning, True), (evening, True)]
    assert [r.count for r in reports] == [len(await store.events(s)) for s in (morning, evening)]
    assert {before, after}.isdisjoint(r.chain for r in reports)


async def test_the_sidecar_is_sha256sum_compatible(tmp_path: Path) -> None:
    store = MemoryStore()
    rooms, clock = rooms_on(store)
    await play_session(rooms, clock, local(DAY, 10))
    [day] = (await archive_day(store, tmp_path)).days
    digest = hashlib.sha256(day.path.read_bytes()).hexdigest()
    assert sidecar_path(day.path).read_text() == f"{digest}  {day.path.name}\n"
    assert day.sha256 == digest and verify_sidecar(day.path)
    assert mode_of(day.path) == mode_of(sidecar_path(day.path)) == 0o600  # Part 2 records


async def test_archiving_again_writes_the_same_bytes(tmp_path: Path) -> None:
    store = MemoryStore()
    rooms, clock = rooms_on(store)
    await play_session(rooms, clock, local(DAY, 10))
    [first] = (await archive_day(store, tmp_path)).days
    content = first.path.read_bytes()
    [again] = (await archive_day(store, tmp_path)).days
    assert again.status is FileStatus.UNCHANGED and again.sha256 == first.sha256
    sidecar_path(first.path).unlink()
    [rewritten] = (await archive_day(store, tmp_path)).days
    assert rewritten.status is FileStatus.WRITTEN
    assert first.path.read_bytes() == content and verify_sidecar(first.path)
    assert not [name for name in listing(tmp_path) if name.endswith(".tmp")]


async def test_a_running_session_is_archived_as_far_as_it_got_then_completed(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    rooms, clock = rooms_on(store)
    starts = local(DAY, 10)
    sid = await start_session(rooms, clock, starts)
    await run_steps(rooms, clock, sid, starts, SESSION_STEPS[:6])
    [partial_day] = (await archive_day(store, tmp_path)).days
    partial_lines = partial_day.path.read_text().splitlines()
    await run_steps(rooms, clock, sid, starts, SESSION_STEPS[6:])
    [full_day] = (await archive_day(store, tmp_path)).days
    assert full_day.status is FileStatus.WRITTEN and full_day.events > partial_day.events
    assert full_day.path.read_text().splitlines()[: len(partial_lines)] == partial_lines
    assert file_rows(full_day.path) == await store_rows(store, [sid])


async def test_a_file_is_never_replaced_by_one_missing_its_events(tmp_path: Path) -> None:
    """When the store has lost data (Redis without AOF), the archive is the record: keep it."""
    first = MemoryStore()
    rooms, clock = rooms_on(first)
    await play_session(rooms, clock, local(DAY, 10))
    [kept] = (await archive_day(first, tmp_path)).days
    content = kept.path.read_bytes()
    emptied = MemoryStore()
    rooms, clock = rooms_on(emptied)
    await play_session(rooms, clock, local(DAY, 14))
    report = await archive_day(emptied, tmp_path)
    [refused] = report.days
    assert not report.ok
    assert refused.status is FileStatus.REFUSED
    assert "the store does not" in refused.reason
    assert refused.sha256 == kept.sha256
    assert kept.path.read_bytes() == content and verify_sidecar(kept.path)


async def test_an_unreadable_file_is_kept(tmp_path: Path) -> None:
    store = MemoryStore()
    rooms, clock = rooms_on(store)
    await play_session(rooms, clock, local(DAY, 10))
    path = archive_path(tmp_path, DAY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not json\n")
    [day] = (await archive_day(store, tmp_path)).days
    assert day.status is FileStatus.REFUSED and "cannot be read" in day.reason
    assert path.read_bytes() == b"not json\n"


async def test_days_without_sessions_get_no_file(tmp_path: Path) -> None:
    store = MemoryStore()
    report = await archive(store, tmp_path, tz=TZ, since=local(DAY, 0), until=local(DAY, 23))
    assert report.days == () and report.ok
    assert listing(tmp_path) == []
    assert (await archive(store, tmp_path, tz=TZ, since=local(DAY, 1), until=local(DAY, 1))).ok


def test_program_days_and_their_first_instants_follow_daylight_saving() -> None:
    spring = date(2026, 3, 8)  # clocks go forward at 02:00 in New York
    assert day_start(spring, TZ) == datetime(2026, 3, 8, 5, tzinfo=UTC)
    assert day_start(spring + timedelta(days=1), TZ) == datetime(2026, 3, 9, 4, tzinfo=UTC)
    since, until = datetime(2026, 3, 8, 4, 59, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC)
    assert program_days(since, until, TZ) == [date(2026, 3, 7), spring]
    assert program_days(until, until + timedelta(microseconds=1), TZ) == [date(2026, 3, 9)]
    assert program_days(until, until, TZ) == []


async def test_a_session_late_on_a_short_day_is_filed_under_its_local_date(
    tmp_path: Path,
) -> None:
    spring = date(2026, 3, 8)
    store = MemoryStore()
    rooms, clock = rooms_on(store)
    late = await play_session(rooms, clock, local(spring, 23, 30))  # 03:30 UTC on 9 March
    report = await archive_day(store, tmp_path, spring)
    assert [(d.path, d.sessions) for d in report.days] == [(archive_path(tmp_path, spring), 1)]
    assert [r.chain for r in verify_archive(report.days[0].path)] == [late]


def edit_line(path: Path, number: int, old: str, new: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert old in lines[number]
    lines[number] = lines[number].replace(old, new, 1)
    path.write_text("".join(lines), encoding="utf-8")


async def archived_day(tmp_path: Path) -> tuple[Path, SessionId]:
    store = MemoryStore()
    rooms, clock = rooms_on(store)
    sid = await play_session(rooms, clock, local(DAY, 10))
    [day] = (await archive_day(store, tmp_path)).days
    return day.path, sid


async def test_one_changed_byte_is_reported_at_its_events_seq(tmp_path: Path) -> None:
    path, sid = await archived_day(tmp_path)
    # Line 6 is the event of seq 6 (line 0 is the spec): move its instant by ten minutes.
    edit_line(path, 6, '"seq":6,"at":"2026-11-02T15:0', '"seq":6,"at":"2026-11-02T15:1')
    [report] = verify_archive(path)
    assert report.chain == sid and report.count == 5
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (6, HASH_MISMATCH)
    assert not verify_sidecar(path)


async def test_an_unreadable_event_line_breaks_the_chain_there(tmp_path: Path) -> None:
    path, _ = await archived_day(tmp_path)
    edit_line(path, 9, '"seq":9,', '"seq":9;')
    [report] = verify_archive(path)
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (9, UNREADABLE)
    assert report.first_broken.detail == "line 10"


async def test_sessions_whose_spec_is_gone_are_reported(
    redis_store: SessionStore, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    rooms, clock = rooms_on(redis_store)
    kept = await play_session(rooms, clock, local(DAY, 10))
    gone = await play_session(rooms, clock, local(DAY, 11))
    client = Redis.from_url(redis_url)
    try:
        await client.delete(f"{redis_prefix}:s:{gone}:spec", f"{redis_prefix}:s:{gone}")
    finally:
        await client.aclose()
    report = await archive_day(redis_store, tmp_path)
    assert report.missing == (gone,) and not report.ok
    assert [r.chain for r in verify_archive(report.days[0].path)] == [kept]


async def test_the_admin_audit_log_is_archived_whole(tmp_path: Path) -> None:
    store = MemoryStore()
    for n in range(3):
        await store.append_admin_audit("admin-1", "attendance.export", {"n": n}, local(DAY, 9))
    copied = await archive_admin_log(store, tmp_path)
    assert (copied.path, copied.status, copied.entries) == (
        admin_log_path(tmp_path),
        FileStatus.WRITTEN,
        3,
    )
    assert verify_sidecar(copied.path) and mode_of(copied.path) == 0o600
    report = verify_admin_archive(copied.path)
    assert report.ok and report.count == 3
    assert (await archive_admin_log(store, tmp_path)).status is FileStatus.UNCHANGED
    await store.append_admin_audit("admin-1", "audit.read", {}, local(DAY, 10))
    grown = await archive_admin_log(store, tmp_path)
    assert (grown.status, grown.entries) == (FileStatus.WRITTEN, 4)


async def test_an_archived_admin_log_is_never_replaced_by_a_shorter_one(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.append_admin_audit("admin-1", "audit.read", {}, local(DAY, 9))
    kept = await archive_admin_log(store, tmp_path)
    other = MemoryStore()
    await other.append_admin_audit("admin-2", "audit.read", {}, local(DAY, 9))
    refused = await archive_admin_log(other, tmp_path)
    assert refused.status is FileStatus.REFUSED and refused.sha256 == kept.sha256


async def test_a_changed_archived_admin_entry_is_reported(tmp_path: Path) -> None:
    store = MemoryStore()
    for n in range(3):
        await store.append_admin_audit("admin-1", "attendance.export", {"n": n}, local(DAY, 9))
    path = (await archive_admin_log(store, tmp_path)).path
    edit_line(path, 1, '"n":1', '"n":7')
    report = verify_admin_archive(path)
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (2, HASH_MISMATCH)
    edit_line(path, 1, '"seq":2', '"seq":"two"')
    report = verify_admin_archive(path)
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (2, UNREADABLE)
