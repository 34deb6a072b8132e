"""What survives what: a real redis-server killed mid-session (AOF, appendfsync always) loses
and duplicates nothing it acknowledged, and tampering with what it keeps is detected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from redis.asyncio import Redis

from rooms.archive import verify_archive
from rooms.audit import (
    HASH_MISMATCH,
    HEAD_MISMATCH,
    SEQUENCE_GAP,
    AdminAuditEntry,
    verify_admin_chain,
    verify_chain,
    verify_session,
)
from rooms.errors import StoreUnavailable
from rooms.ids import SessionId
from rooms.ledger import Ctx, EventKind, LedgerEvent, emit
from rooms.service import Rooms
from rooms.state import SessionState
from rooms.store import SessionStore, open_store
from tests.redis_server import RedisServer
from tests.test_archive import (
    DAY,
    SESSION_STEPS,
    archive_day,
    file_rows,
    local,
    play_session,
    rooms_on,
    run_steps,
    start_session,
    store_rows,
)

#: Stream entries as the client returns them with ``decode_responses=True``.
_Entries = list[tuple[str, dict[str, str]]]


@pytest.fixture
async def crash_store(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[SessionStore]:
    """A store on the restartable server this run started (never a shared REDIS_URL)."""
    assert redis_server.appendfsync == "always"
    store = open_store(redis_server.url, prefix=redis_prefix)
    yield store
    await store.close()


async def test_a_killed_redis_loses_and_duplicates_no_acknowledged_event(
    crash_store: SessionStore, redis_server: RedisServer, tmp_path: Path
) -> None:
    rooms, clock = rooms_on(crash_store)
    starts = local(DAY, 10)
    sid = await start_session(rooms, clock, starts)
    acknowledged = await crash_store.events(sid)
    acknowledged += await run_steps(rooms, clock, sid, starts, SESSION_STEPS[:8])
    audit = await crash_store.append_admin_audit("admin-1", "audit.read", {"session": sid}, starts)

    redis_server.restart(kill=True)

    assert await crash_store.events(sid) == acknowledged
    assert await crash_store.admin_audit() == [audit]
    acknowledged += await run_steps(rooms, clock, sid, starts, SESSION_STEPS[8:])
    ledger = await crash_store.events(sid)
    assert ledger == acknowledged
    assert [e.seq for e in ledger] == list(range(1, len(ledger) + 1))
    report = verify_chain(ledger)
    assert report.ok and report.head == (await crash_store.get(sid)).ledger_head
    # The store keeps working: new sessions, new audit entries on the same chain.
    other = await play_session(rooms, clock, local(DAY, 14))
    assert verify_chain(await crash_store.events(other)).ok
    later = await crash_store.append_admin_audit("admin-1", "audit.verify", {"ok": True}, starts)
    assert later.prev == audit.hash
    # And the day's archive re-summarizes exactly as the store's events do.
    [day] = (await archive_day(crash_store, tmp_path)).days
    assert file_rows(day.path) == await store_rows(crash_store, [sid, other])
    assert all(r.ok for r in verify_archive(day.path))


def _tick(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
    modality = "audio" if state.seq % 2 else "video"
    return [emit(state, ctx, EventKind.MODALITY, modality=modality)]


async def _write_until(
    rooms: Rooms, sid: SessionId, stop: asyncio.Event, acknowledged: list[LedgerEvent]
) -> None:
    """Keep changing the session until ``stop``, adding each acknowledged change's events."""
    while not stop.is_set():
        try:
            acknowledged += (await rooms.apply(sid, _tick))[1]
        except StoreUnavailable:
            # Down for longer than the client's retries: the outcome is unknown (it may have
            # committed before the crash), so it is neither counted nor required.
            await asyncio.sleep(0.02)


async def test_writers_racing_a_crash_keep_every_acknowledged_event_once(
    crash_store: SessionStore, redis_server: RedisServer, redis_prefix: str
) -> None:
    """Changes in flight when Redis dies either committed or failed; a commit whose reply was
    lost is recognized on retry, never applied twice."""
    second = open_store(redis_server.url, prefix=redis_prefix)
    try:
        (first_rooms, clock), (second_rooms, _) = rooms_on(crash_store), rooms_on(second)
        sid = await start_session(first_rooms, clock, local(DAY, 10))
        stop, acknowledged = asyncio.Event(), list[LedgerEvent]()
        clients = [first_rooms, second_rooms] * 2
        writers = [asyncio.create_task(_write_until(r, sid, stop, acknowledged)) for r in clients]
        await asyncio.sleep(0.2)
        before = len(acknowledged)
        await asyncio.to_thread(redis_server.restart, kill=True)
        during = len(acknowledged)
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*writers)
        # Writes were flowing into the kill and kept flowing after it.
        assert before > 0 and during < len(acknowledged)
        ledger = await crash_store.events(sid)
        assert [e.seq for e in ledger] == list(range(1, len(ledger) + 1))
        assert len({e.seq for e in acknowledged}) == len(acknowledged)
        stored = {e.seq: e for e in ledger}
        assert all(stored[e.seq] == e for e in acknowledged)
        assert verify_chain(ledger).ok
    finally:
        await second.close()


# Tampering with what Redis keeps.


async def test_a_ledger_entry_deleted_in_redis_is_a_gap_at_its_seq(
    redis_store: SessionStore, redis_url: str, redis_prefix: str
) -> None:
    rooms, clock = rooms_on(redis_store)
    sid = await play_session(rooms, clock, local(DAY, 10))
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        stream = f"{redis_prefix}:s:{sid}:ev"
        entries = cast(_Entries, await client.xrange(stream))
        await client.xdel(stream, entries[6][0])  # seq 7
    finally:
        await client.aclose()
    report = verify_chain(await redis_store.events(sid))
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (7, SEQUENCE_GAP)
    assert report.count == 6


async def test_a_deleted_tail_is_found_against_the_recorded_head(
    redis_store: SessionStore, redis_url: str, redis_prefix: str
) -> None:
    """Deleting the last events leaves a chain that verifies on its own; the head the
    session's state records shows what is missing."""
    rooms, clock = rooms_on(redis_store)
    sid = await play_session(rooms, clock, local(DAY, 10))
    seq = (await redis_store.get(sid)).seq
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        stream = f"{redis_prefix}:s:{sid}:ev"
        entries = cast(_Entries, await client.xrevrange(stream, count=2))
        await client.xdel(stream, *(entry_id for entry_id, _ in entries))
    finally:
        await client.aclose()
    assert verify_chain(await redis_store.events(sid)).ok
    report = await verify_session(redis_store, sid)
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (seq - 1, HEAD_MISMATCH)


async def test_a_rewritten_admin_log_is_detected(
    redis_store: SessionStore, redis_url: str, redis_prefix: str
) -> None:
    """Streams cannot be edited in place: a forger rewrites the whole log with one entry
    changed. The chain shows where."""
    at = local(DAY, 9)
    for n in range(4):
        await redis_store.append_admin_audit("admin-1", "attendance.export", {"n": n}, at)
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        stream = f"{redis_prefix}:audit"
        entries = cast(_Entries, await client.xrange(stream))
        forged = AdminAuditEntry.model_validate_json(entries[1][1]["e"])
        forged = forged.model_copy(update={"detail": {"n": 99}})
        await client.delete(stream)
        for entry_id, fields in entries:
            doc = forged.model_dump_json() if entry_id == entries[1][0] else fields["e"]
            await client.xadd(stream, {"e": doc}, id=entry_id)
    finally:
        await client.aclose()
    report = verify_admin_chain(await redis_store.admin_audit())
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (2, HASH_MISMATCH)


async def test_an_admin_entry_deleted_in_redis_is_a_gap(
    redis_store: SessionStore, redis_url: str, redis_prefix: str
) -> None:
    at = local(DAY, 9)
    for n in range(3):
        await redis_store.append_admin_audit("admin-1", "audit.read", {"n": n}, at)
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        await client.xdel(f"{redis_prefix}:audit", "2-0")
    finally:
        await client.aclose()
    report = verify_admin_chain(await redis_store.admin_audit())
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (2, SEQUENCE_GAP)
