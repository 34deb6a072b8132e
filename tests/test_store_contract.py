"""The store contract, run against the embedded store and a real Redis alike."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import redis
from pydantic import ValidationError
from redis.asyncio import Redis

from rooms.audit import verify_admin_chain, verify_chain
from rooms.errors import (
    HomeroomError,
    SessionExists,
    SessionFull,
    SessionLocked,
    SessionNotFound,
    StoreUnavailable,
)
from rooms.ids import AttendeeId, NodeId, SessionId, new_session_id
from rooms.kinds import CareFunction, GroupPurpose, Role, SessionKind
from rooms.ledger import Ctx, EventKind, LedgerEvent, emit
from rooms.roster import RosterEntry
from rooms.service import CreateSession, Rooms
from rooms.session import SessionSpec, SessionStatus
from rooms.state import SessionState
from rooms.store import MemoryStore, Mutation, SessionStore, open_store
from rooms.store.redis import MAX_CONNECTIONS, RedisStore
from tests.redis_server import RedisServer, free_port

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
CTX = Ctx(now=T0, node=NodeId("n-test"))


def new_state(starts_at: datetime = T0) -> SessionState:
    spec = SessionSpec(
        id=new_session_id(),
        kind=SessionKind.GROUP,
        roster=(
            RosterEntry(attendee="c-1", role=Role.CLINICIAN, function=CareFunction.FACILITATOR),
            RosterEntry(attendee="p-1", role=Role.PATIENT),
        ),
        starts_at=starts_at,
        planned_minutes=60,
        capacity=12,
        purpose=GroupPurpose.THERAPY_GROUP,
        created_by="c-1",
        created_at=T0,
    )
    return SessionState(spec=spec)


async def created(store: SessionStore, starts_at: datetime = T0) -> SessionState:
    state = new_state(starts_at)
    await store.create(state, [emit(state, CTX, EventKind.SESSION_CREATED, actor="c-1")])
    return state


# Small stand-ins for domain operations: each mutates its copy and records what it did.


def arrive(attendee: str) -> Mutation:
    def change(state: SessionState) -> list[LedgerEvent]:
        state.attendee(AttendeeId(attendee))
        return [emit(state, CTX, EventKind.WAITING, attendee=AttendeeId(attendee))]

    return change


def take_seat(attendee: str, capacity: int) -> Mutation:
    def change(state: SessionState) -> list[LedgerEvent]:
        if len(state.attendees) >= capacity:
            raise SessionFull("no seat left")
        return arrive(attendee)(state)

    return change


def lock_then_refuse(state: SessionState) -> list[LedgerEvent]:
    """Changes its copy thoroughly, then refuses: none of it may reach the store."""
    state.locked = True
    arrive("p-9")(state)
    emit(state, CTX, EventKind.SESSION_LOCKED)
    raise SessionLocked("refused after mutating")


def end(state: SessionState) -> list[LedgerEvent]:
    state.status = SessionStatus.ENDED
    state.ended_at = CTX.now
    return [emit(state, CTX, EventKind.SESSION_ENDED)]


def seqs(events: list[LedgerEvent]) -> list[int]:
    return [e.seq for e in events]


async def test_open_store_without_url_is_embedded() -> None:
    assert isinstance(open_store(None), MemoryStore)


async def test_create_then_get_roundtrip(store: SessionStore) -> None:
    state = await created(store)
    assert await store.get(state.spec.id) == state
    assert [e.kind for e in await store.events(state.spec.id)] == [EventKind.SESSION_CREATED]


async def test_rooms_create_session_stores_session(store: SessionStore) -> None:
    rooms = Rooms(store, node=NodeId("n-test"))
    roster = [
        RosterEntry(attendee="c-1", role=Role.CLINICIAN),
        RosterEntry(attendee="p-1", role=Role.PATIENT),
    ]
    request = CreateSession(kind=SessionKind.INDIVIDUAL, roster=roster, starts_at=T0)
    state = await rooms.create_session(request, created_by="c-1")
    assert await rooms.get_session(state.spec.id) == state
    assert seqs(await rooms.events(state.spec.id)) == [1]


async def test_create_twice_raises_session_exists(store: SessionStore) -> None:
    state = await created(store)
    again = state.model_copy(update={"locked": True})
    with pytest.raises(SessionExists):
        await store.create(again, [emit(again, CTX, EventKind.SESSION_CREATED)])
    assert await store.get(state.spec.id) == state
    assert seqs(await store.events(state.spec.id)) == [1]


async def test_unknown_session_is_not_found(store: SessionStore) -> None:
    unknown = SessionId("s-nobody")
    with pytest.raises(SessionNotFound):
        await store.get(unknown)
    with pytest.raises(SessionNotFound):
        await store.transact(unknown, arrive("p-1"))
    assert await store.events(unknown) == []


async def test_transact_commits_state_and_events_and_bumps_version(store: SessionStore) -> None:
    sid = (await created(store)).spec.id
    state, events = await store.transact(sid, arrive("p-1"))
    assert state.version == 1
    assert AttendeeId("p-1") in state.attendees
    assert [(e.seq, e.kind) for e in events] == [(2, EventKind.WAITING)]
    assert await store.get(sid) == state
    assert (await store.events(sid))[1:] == events
    state, _ = await store.transact(sid, arrive("p-2"))
    assert state.version == 2
    assert (await store.get(sid)).version == 2


async def test_refused_change_changes_nothing(store: SessionStore) -> None:
    sid = (await created(store)).spec.id
    await store.transact(sid, arrive("p-1"))
    before, ledger = await store.get(sid), await store.events(sid)
    with pytest.raises(SessionLocked):
        await store.transact(sid, lock_then_refuse)
    assert await store.get(sid) == before
    assert await store.events(sid) == ledger
    state, events = await store.transact(sid, arrive("p-2"))
    assert state.version == before.version + 1
    assert seqs(events) == [before.seq + 1]


async def test_any_exception_aborts_the_change(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    """Not only domain refusals: a caller's own signal (the reaper's "nothing to do") too,
    also when the client raising it held an outdated cached copy."""
    first, second = store_pair
    sid = (await created(first)).spec.id
    await first.transact(sid, arrive("p-1"))
    await second.transact(sid, arrive("p-2"))
    before, ledger = await second.get(sid), await second.events(sid)

    def mutate_then_give_up(state: SessionState) -> list[LedgerEvent]:
        arrive("p-9")(state)
        raise LookupError("nothing to do after all")

    with pytest.raises(LookupError):
        await first.transact(sid, mutate_then_give_up)
    assert await first.get(sid) == before
    assert await first.events(sid) == ledger


def keeping(seen: list[SessionState], change: Mutation) -> Mutation:
    """``change``, noting the state object each run of it was given."""

    def noted(state: SessionState) -> list[LedgerEvent]:
        seen.append(state)
        return change(state)

    return noted


async def test_a_given_back_state_is_where_the_next_change_starts(store: SessionStore) -> None:
    sid = (await created(store)).spec.id
    first, _ = await store.transact(sid, arrive("p-1"))
    store.release(first)
    await store.get(sid)  # reading the same document keeps it
    seen: list[SessionState] = []
    second, events = await store.transact(sid, keeping(seen, arrive("p-2")))
    assert seen == [first] and seen[0] is first and second is first
    assert second.version == 2 and set(second.attendees) == {"p-1", "p-2"}
    assert await store.get(sid) == second
    assert seqs(await store.events(sid)) == [1, 2, 3] and seqs(events) == [3]


async def test_a_state_not_given_back_is_never_changed_by_the_store(store: SessionStore) -> None:
    sid = (await created(store)).spec.id
    first, _ = await store.transact(sid, arrive("p-1"))
    doc = first.model_dump_json()
    seen: list[SessionState] = []
    await store.transact(sid, keeping(seen, arrive("p-2")))
    assert seen[0] is not first
    assert first.model_dump_json() == doc


async def test_only_the_last_state_of_a_session_is_taken_back(store: SessionStore) -> None:
    sid = (await created(store)).spec.id
    first, _ = await store.transact(sid, arrive("p-1"))
    second, _ = await store.transact(sid, arrive("p-2"))
    store.release(first)  # outdated: ignored
    seen: list[SessionState] = []
    third, _ = await store.transact(sid, keeping(seen, arrive("p-3")))
    assert seen[0] is not first and seen[0] is not second
    assert set(third.attendees) == {"p-1", "p-2", "p-3"}
    store.release(second)  # no longer the last either
    store.release(third)
    store.release(third)  # twice: the same
    seen.clear()
    await store.transact(sid, keeping(seen, arrive("p-4")))
    assert seen[0] is third


async def test_a_refused_change_does_not_leave_its_starting_state_behind(
    store: SessionStore,
) -> None:
    sid = (await created(store)).spec.id
    first, _ = await store.transact(sid, arrive("p-1"))
    store.release(first)
    before = await store.get(sid)
    seen: list[SessionState] = []
    with pytest.raises(SessionLocked):
        await store.transact(sid, keeping(seen, lock_then_refuse))
    assert seen[0] is first  # it started from the given-back state, and changed it
    assert await store.get(sid) == before
    seen.clear()
    state, _ = await store.transact(sid, keeping(seen, arrive("p-2")))
    assert all(s is not first for s in seen)
    assert not state.locked and set(state.attendees) == {"p-1", "p-2"}


async def test_a_given_back_state_is_not_used_once_another_client_wrote(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    first, second = store_pair
    sid = (await created(first)).spec.id
    mine, _ = await first.transact(sid, arrive("p-1"))
    await second.transact(sid, arrive("p-2"))
    first.release(mine)
    state, events = await first.transact(sid, arrive("p-3"))
    assert set(state.attendees) == {"p-1", "p-2", "p-3"} and state.version == 3
    assert await second.get(sid) == state
    assert seqs(await second.events(sid)) == [1, 2, 3, 4] and seqs(events) == [4]


async def test_a_state_changed_after_it_was_given_back_is_caught_in_the_tests(
    store: SessionStore,
) -> None:
    """The suite's own check (CHECK_SPARES) catches a caller breaking release's promise."""
    sid = (await created(store)).spec.id
    first, _ = await store.transact(sid, arrive("p-1"))
    store.release(first)
    first.locked = True
    with pytest.raises(AssertionError, match="differs from its document"):
        await store.transact(sid, arrive("p-2"))


async def test_events_after_seq(store: SessionStore) -> None:
    sid = (await created(store)).spec.id

    def three(state: SessionState) -> list[LedgerEvent]:
        return [e for a in ("p-1", "p-2", "p-3") for e in arrive(a)(state)]

    await store.transact(sid, three)
    await store.transact(sid, arrive("p-4"))
    assert seqs(await store.events(sid)) == [1, 2, 3, 4, 5]
    assert seqs(await store.events(sid, after_seq=0)) == [1, 2, 3, 4, 5]
    assert seqs(await store.events(sid, after_seq=2)) == [3, 4, 5]
    assert seqs(await store.events(sid, after_seq=4)) == [5]
    assert await store.events(sid, after_seq=5) == []
    assert await store.events(sid, after_seq=99) == []


async def test_long_ledger_tail_reads_across_pages(store: SessionStore) -> None:
    sid = (await created(store)).spec.id

    def many(state: SessionState) -> list[LedgerEvent]:
        return [emit(state, CTX, EventKind.MODALITY, modality="audio") for _ in range(600)]

    await store.transact(sid, many)
    assert seqs(await store.events(sid, after_seq=1)) == list(range(2, 602))
    assert seqs(await store.events(sid, after_seq=550)) == list(range(551, 602))


async def test_sessions_starting_orders_by_start_within_bounds(store: SessionStore) -> None:
    hour = timedelta(hours=1)
    at = {n: (await created(store, T0 + n * hour)).spec.id for n in (3, 0, 2, 1)}
    assert await store.sessions_starting(T0 - hour, T0 + 10 * hour) == [at[0], at[1], at[2], at[3]]
    assert await store.sessions_starting(T0 + hour, T0 + 3 * hour) == [at[1], at[2]]
    assert await store.sessions_starting(T0, T0 + hour) == [at[0]]
    assert await store.sessions_starting(T0 + hour, T0 + hour) == []
    assert await store.sessions_starting(T0 + 4 * hour, T0 + 5 * hour) == []
    just_after = T0 + timedelta(microseconds=1)
    assert await store.sessions_starting(just_after, T0 + hour) == []


async def test_ended_session_stays_readable(store: SessionStore) -> None:
    sid = (await created(store)).spec.id
    state, _ = await store.transact(sid, end)
    assert (await store.get(sid)).status is SessionStatus.ENDED
    assert await store.get(sid) == state


async def test_ping(store: SessionStore) -> None:
    await store.ping()


async def test_concurrent_transacts_all_land(store: SessionStore) -> None:
    sid = (await created(store)).spec.id
    results = await asyncio.gather(*(store.transact(sid, arrive(f"p-{n}")) for n in range(50)))
    await _assert_all_landed(store, sid, results, 50)


async def test_capacity_race_admits_exactly_capacity(store: SessionStore) -> None:
    sid = (await created(store)).spec.id
    await _capacity_race(sid, [store], racers=30, capacity=12)
    await _assert_ledger_matches(store, sid, 12)


async def test_concurrent_transacts_across_clients(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    first, second = store_pair
    sid = (await created(first)).spec.id
    racers = [(first, second)[n % 2].transact(sid, arrive(f"p-{n}")) for n in range(50)]
    results = await asyncio.gather(*racers)
    await _assert_all_landed(second, sid, results, 50)
    assert await first.get(sid) == await second.get(sid)


async def test_capacity_race_across_clients(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    first, second = store_pair
    sid = (await created(first)).spec.id
    await _capacity_race(sid, list(store_pair), racers=30, capacity=12)
    await _assert_ledger_matches(second, sid, 12)


async def test_change_is_refused_only_by_current_state(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    """A client that last saw the session before another client changed it must not refuse
    a change on its outdated view."""
    first, second = store_pair
    sid = (await created(first)).spec.id
    await first.transact(sid, arrive("p-1"))  # first has now seen version 1
    await second.transact(sid, arrive("p-2"))

    def needs_p2(state: SessionState) -> list[LedgerEvent]:
        if AttendeeId("p-2") not in state.attendees:
            raise SessionLocked("p-2 has not arrived")
        return arrive("p-3")(state)

    state, events = await first.transact(sid, needs_p2)
    assert state.version == 3
    assert seqs(events) == [4]


async def _capacity_race(
    sid: SessionId, clients: list[SessionStore], *, racers: int, capacity: int
) -> None:
    changes = [
        clients[n % len(clients)].transact(sid, take_seat(f"p-{n}", capacity))
        for n in range(racers)
    ]
    outcomes = await asyncio.gather(*changes, return_exceptions=True)
    won = [o for o in outcomes if isinstance(o, tuple)]
    refused = [o for o in outcomes if isinstance(o, HomeroomError)]
    assert len(won) == capacity
    assert len(refused) == racers - capacity
    assert all(isinstance(o, SessionFull) for o in refused)
    assert len((await clients[0].get(sid)).attendees) == capacity


async def _assert_all_landed(
    store: SessionStore,
    sid: SessionId,
    results: list[tuple[SessionState, list[LedgerEvent]]],
    count: int,
) -> None:
    assert sorted(state.version for state, _ in results) == list(range(1, count + 1))
    committed = sorted(e.seq for _, events in results for e in events)
    assert committed == list(range(2, count + 2))
    final = await store.get(sid)
    assert final.version == count
    assert len(final.attendees) == count
    await _assert_ledger_matches(store, sid, count)


async def _assert_ledger_matches(store: SessionStore, sid: SessionId, changes: int) -> None:
    """One event per committed change, seqs unique and contiguous, ending at the state's seq."""
    ledger = await store.events(sid)
    assert seqs(ledger) == list(range(1, changes + 2))
    assert (await store.get(sid)).seq == changes + 1
    arrived = {e.attendee for e in ledger if e.kind is EventKind.WAITING}
    assert arrived == set((await store.get(sid)).attendees)


# Backend-specific guarantees.


async def test_memory_forgets_ended_state_after_ttl_but_keeps_ledger() -> None:
    now = [0.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731 -- a settable clock
    store = MemoryStore(ended_ttl_seconds=60, clock=clock)
    sid = (await created(store)).spec.id
    await store.transact(sid, end)
    now[0] = 59.0
    assert (await store.get(sid)).status is SessionStatus.ENDED
    now[0] = 60.0
    with pytest.raises(SessionNotFound):
        await store.get(sid)
    assert seqs(await store.events(sid)) == [1, 2]


async def test_redis_expires_ended_state_but_never_the_ledger(
    redis_store: SessionStore, redis_url: str, redis_prefix: str
) -> None:
    client = Redis.from_url(redis_url)
    try:
        sid = (await created(redis_store)).spec.id
        await redis_store.transact(sid, arrive("p-1"))
        state_key, stream_key = f"{redis_prefix}:s:{sid}", f"{redis_prefix}:s:{sid}:ev"
        assert await client.ttl(state_key) == -1  # live sessions never expire
        await redis_store.transact(sid, end)
        assert 0 < await client.ttl(state_key) <= 7 * 86400
        assert await client.ttl(stream_key) == -1
        assert await client.xlen(stream_key) == 3
    finally:
        await client.aclose()


async def test_redis_transactions_of_a_session_take_turns_and_leave_nothing_behind(
    redis_store: SessionStore,
) -> None:
    """One lock per session with a transaction held or waiting in this process: taken in
    turn, and gone once the last is done, whether it committed, was refused or cancelled."""
    assert isinstance(redis_store, RedisStore)
    sid = (await created(redis_store)).spec.id
    inside, most = 0, 0

    def counted(attendee: str) -> Mutation:
        def change(state: SessionState) -> list[LedgerEvent]:
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            try:
                return arrive(attendee)(state)
            finally:
                inside -= 1

        return change

    waiting = [asyncio.create_task(redis_store.transact(sid, counted(f"p-{n}"))) for n in range(8)]
    refused = asyncio.create_task(redis_store.transact(sid, lock_then_refuse))
    await asyncio.sleep(0)
    assert redis_store._turns[sid].users == 9
    waiting[3].cancel()  # while it waits its turn
    done = await asyncio.gather(*waiting, refused, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError) and isinstance(done[8], SessionLocked)
    assert most == 1 and redis_store._turns == {}
    landed = await redis_store.get(sid)
    assert sorted(landed.attendees) == sorted(f"p-{n}" for n in range(8) if n != 3)
    late = asyncio.create_task(redis_store.transact(sid, arrive("p-20")))
    await asyncio.sleep(0)  # in its turn, waiting for Redis
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    assert redis_store._turns == {}


async def test_unreachable_redis_raises_store_unavailable() -> None:
    store = open_store(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.get(SessionId("s-any"))
    finally:
        await store.close()


async def test_ledger_and_state_survive_a_redis_crash(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    """Killed without warning, Redis comes back from its append-only file with every
    acknowledged change; the same client reconnects and reloads its script."""
    assert redis_server.appendfsync == "always"
    store = open_store(redis_server.url, prefix=redis_prefix)
    try:
        sid = (await created(store)).spec.id
        for n in range(20):
            state, _ = await store.transact(sid, arrive(f"p-{n}"))
        ledger = await store.events(sid)
        redis_server.restart(kill=True)
        assert await store.get(sid) == state
        assert await store.events(sid) == ledger
        assert seqs(ledger) == list(range(1, 22))
        after, events = await store.transact(sid, arrive("p-20"))
        assert after.version == 21
        assert seqs(events) == [22]
    finally:
        await store.close()


# Specs outlive the state; ledgers are hash chains; the admin audit log.


async def test_spec_is_kept_for_the_ledger(store: SessionStore) -> None:
    state = await created(store)
    assert await store.spec(state.spec.id) == state.spec
    await store.transact(state.spec.id, end)
    assert await store.spec(state.spec.id) == state.spec


async def test_unknown_spec_is_not_found(store: SessionStore) -> None:
    with pytest.raises(SessionNotFound):
        await store.spec(SessionId("s-nobody"))


async def test_a_refused_create_keeps_the_first_spec(store: SessionStore) -> None:
    state = await created(store)
    other = state.model_copy(update={"spec": state.spec.model_copy(update={"capacity": 3})})
    with pytest.raises(SessionExists):
        await store.create(other, [emit(other, CTX, EventKind.SESSION_CREATED)])
    assert await store.spec(state.spec.id) == state.spec


async def test_racing_writers_leave_one_unbroken_chain(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    """The chain's head lives in the state, so a change retried after a race is re-chained
    on the winner's head: the ledger never forks."""
    first, second = store_pair
    sid = (await created(first)).spec.id
    racers = [(first, second)[n % 2].transact(sid, arrive(f"p-{n}")) for n in range(40)]
    await asyncio.gather(*racers)
    ledger = await second.events(sid)
    report = verify_chain(ledger)
    assert report.ok and report.count == 41
    assert report.head == (await first.get(sid)).ledger_head == ledger[-1].hash


async def test_admin_audit_is_an_ordered_chain(store: SessionStore) -> None:
    assert await store.admin_audit() == []
    appended = [
        await store.append_admin_audit(
            "admin-1", "attendance.export", {"format": "csv", "n": n, "all": True}, T0
        )
        for n in range(3)
    ]
    assert [e.seq for e in appended] == [1, 2, 3]
    assert await store.admin_audit() == appended
    assert verify_admin_chain(appended).ok
    assert await store.admin_audit(after_seq=1) == appended[1:]
    assert await store.admin_audit(limit=1) == appended[:1]
    assert await store.admin_audit(after_seq=1, limit=1) == appended[1:2]
    assert await store.admin_audit(after_seq=3) == []
    assert await store.admin_audit(limit=0) == []


async def test_a_malformed_admin_entry_changes_nothing(store: SessionStore) -> None:
    first = await store.append_admin_audit("admin-1", "audit.read", {}, T0)
    with pytest.raises(ValidationError):
        await store.append_admin_audit("admin@clinic.example", "audit.read", {}, T0)
    with pytest.raises(ValidationError):
        await store.append_admin_audit("admin-1", "audit.read", {}, T0.replace(tzinfo=None))
    assert await store.admin_audit() == [first]
    second = await store.append_admin_audit("admin-1", "audit.verify", {"ok": True}, T0)
    assert second.prev == first.hash


async def test_concurrent_admin_appends_never_share_a_prev(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    first, second = store_pair
    appends = [
        (first, second)[n % 2].append_admin_audit("admin-1", "audit.read", {"n": n}, T0)
        for n in range(40)
    ]
    returned = await asyncio.gather(*appends)
    stored = await first.admin_audit()
    assert sorted(stored, key=lambda e: e.seq) == stored
    assert sorted(returned, key=lambda e: e.seq) == stored
    assert len({e.prev for e in stored}) == 40
    assert {e.detail["n"] for e in stored} == set(range(40))
    assert verify_admin_chain(stored).ok


async def test_memory_keeps_the_spec_after_the_state_expires() -> None:
    now = [0.0]
    store = MemoryStore(ended_ttl_seconds=60, clock=lambda: now[0])
    state = await created(store)
    await store.transact(state.spec.id, end)
    now[0] = 61.0
    with pytest.raises(SessionNotFound):
        await store.get(state.spec.id)
    assert await store.spec(state.spec.id) == state.spec


async def test_redis_keeps_the_spec_forever(
    redis_store: SessionStore, redis_url: str, redis_prefix: str
) -> None:
    client = Redis.from_url(redis_url)
    try:
        state = await created(redis_store)
        sid = state.spec.id
        await redis_store.transact(sid, end)
        assert await client.ttl(f"{redis_prefix}:s:{sid}:spec") == -1
        await client.delete(f"{redis_prefix}:s:{sid}")  # as the state's TTL would
        assert await redis_store.spec(sid) == state.spec
    finally:
        await client.aclose()


async def test_redis_spec_of_a_session_stored_before_specs_were_kept(
    redis_store: SessionStore, redis_url: str, redis_prefix: str
) -> None:
    """Older sessions have their spec in the state only: it is read from there."""
    client = Redis.from_url(redis_url)
    try:
        state = await created(redis_store)
        await client.delete(f"{redis_prefix}:s:{state.spec.id}:spec")
        assert await redis_store.spec(state.spec.id) == state.spec
    finally:
        await client.aclose()


async def test_more_concurrent_commands_than_connections_wait_their_turn(redis_url: str) -> None:
    """Beyond the pool's connections, commands queue instead of failing (StoreUnavailable)."""
    store = open_store(redis_url, prefix="hrt-pool")
    try:
        results = await asyncio.gather(
            *(store.ping() for _ in range(5 * MAX_CONNECTIONS)), return_exceptions=True
        )
        assert [r for r in results if r is not None] == []
    finally:
        await store.close()


async def test_a_store_keeps_at_most_max_connections_whatever_its_client(redis_url: str) -> None:
    """The bound is the store's own: a client whose pool has no limit opens no more."""
    name = "hrt-bound-" + secrets.token_hex(4)
    store = RedisStore(Redis.from_url(redis_url, decode_responses=True, client_name=name))
    observer = Redis.from_url(redis_url, decode_responses=True)
    try:
        await asyncio.gather(*(store.ping() for _ in range(5 * MAX_CONNECTIONS)))
        clients = await observer.client_list()
        opened = [c for c in clients if c["name"] == name]
        assert 1 < len(opened) <= MAX_CONNECTIONS
    finally:
        await observer.aclose()
        await store.close()


@contextmanager
def stopped(server: RedisServer) -> Iterator[None]:
    """The server frozen with SIGSTOP: it still accepts connections, but answers nothing."""
    with redis.Redis.from_url(server.url) as client:
        pid = int(client.info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_redis_that_stops_answering_is_unavailable_within_the_timeout(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    """A hung Redis is StoreUnavailable after the store's timeout, for the callers queued
    behind the connections as well; once it answers again, no caller gets a reply meant
    for a command that timed out."""
    timeout = 0.5
    store = RedisStore.from_url(redis_server.url, prefix=redis_prefix, timeout=timeout)
    try:
        first, second = await created(store), await created(store)
        # Should the timeout fail to bound a call, fail rather than hang.
        async with asyncio.timeout(timeout + 10):
            with stopped(redis_server):
                started = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    await store.get(first.spec.id)
                assert time.monotonic() - started < timeout + 2
                started = time.monotonic()
                results = await asyncio.gather(
                    *(store.ping() for _ in range(3 * MAX_CONNECTIONS)), return_exceptions=True
                )
                assert all(isinstance(r, StoreUnavailable) for r in results)
                assert time.monotonic() - started < timeout + 2
                # Cancelled by its caller rather than by the timeout, a call stays cancelled.
                call = asyncio.create_task(store.get(first.spec.id))
                await asyncio.sleep(timeout / 5)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
        assert await store.get(second.spec.id) == second
        assert await store.get(first.spec.id) == first
        await store.ping()
    finally:
        await store.close()


async def test_the_store_timeout_must_be_positive(redis_url: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError):
            RedisStore(client, timeout=0)
    finally:
        await client.aclose()
