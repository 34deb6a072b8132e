"""The reaper through the real stores: a dead node's endpoints close once, at its last heartbeat.

Nodes share one settable clock; each node's Rooms has its own store client (two independent
Redis connections and caches, or the one embedded store). No sleeps: time moves by hand.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rooms import lifecycle, membership, reconnect
from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.kinds import Role, SessionKind
from rooms.ledger import EventKind, LedgerEvent
from rooms.reaper import Reaper
from rooms.roster import RosterEntry
from rooms.service import CreateSession, Rooms
from rooms.store import MemoryStore, SessionStore
from rooms.store.redis import RedisStore
from tests.redis_server import free_port

T0 = datetime.fromisoformat("2026-11-02T15:00:00+00:00")
GRACE = timedelta(seconds=60)
DEAD_AFTER = 30.0
CLINICIAN, P1, P2 = AttendeeId("c-1"), AttendeeId("p-1"), AttendeeId("p-2")
A, B, C = NodeId("n-a"), NodeId("n-b"), NodeId("n-c")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Cluster:
    """Nodes A, B and C on one clock; A and C share a store client, B has its own."""

    clock: Clock
    rooms: dict[NodeId, Rooms]
    reapers: dict[NodeId, Reaper]

    async def beat(self, *nodes: NodeId) -> None:
        for node in nodes:
            await self.reapers[node].beat()


def cluster(pair: tuple[SessionStore, SessionStore]) -> Cluster:
    clock = Clock(T0)
    stores = {A: pair[0], B: pair[1], C: pair[0]}
    rooms = {n: Rooms(s, node=n, clock=clock) for n, s in stores.items()}
    reapers = {
        n: Reaper(r, interval=5.0, dead_after=DEAD_AFTER, grace=GRACE) for n, r in rooms.items()
    }
    return Cluster(clock, rooms, reapers)


async def couples_call(nodes: Cluster) -> SessionId:
    """Clinician on node B (e-c); on node A, P1 and P2 share e-1 and P2 has a phone, e-2."""
    a, b = nodes.rooms[A], nodes.rooms[B]
    roster = [
        RosterEntry(attendee=CLINICIAN, role=Role.CLINICIAN),
        RosterEntry(attendee=P1, role=Role.PATIENT),
        RosterEntry(attendee=P2, role=Role.PATIENT),
    ]
    req = CreateSession(kind=SessionKind.COUPLES, roster=roster)
    sid = (await b.create_session(req, created_by="c-1")).spec.id
    await b.apply(sid, partial(membership.join, endpoint=EndpointId("e-c"), attendee=CLINICIAN))
    await a.apply(sid, partial(membership.join, endpoint=EndpointId("e-1"), attendee=P1))
    await b.apply(sid, partial(membership.admit, actor=CLINICIAN, attendee=P1))
    await a.apply(sid, partial(membership.attach, endpoint=EndpointId("e-1"), attendee=P2))
    await a.apply(sid, partial(membership.join, endpoint=EndpointId("e-2"), attendee=P2))
    return sid


async def node_a_dies(nodes: Cluster) -> datetime:
    """Everyone beats at T0 and T0+10s; then A falls silent and the others beat on until A
    counts as dead. Returns A's last heartbeat."""
    await nodes.beat(A, B, C)
    nodes.clock.advance(10)
    await nodes.beat(A, B, C)
    last_seen = nodes.clock.now
    nodes.clock.advance(DEAD_AFTER + 5)
    await nodes.beat(B, C)
    return last_seen


def disconnects(events: list[LedgerEvent]) -> list[LedgerEvent]:
    return [e for e in events if e.kind is EventKind.DISCONNECTED]


async def test_a_dead_nodes_endpoints_close_at_its_last_heartbeat(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    nodes = cluster(store_pair)
    b = nodes.rooms[B]
    sid = await couples_call(nodes)
    assert await b.store.node_sessions(A) == [sid]  # tracked by the commits themselves
    last_seen = await node_a_dies(nodes)
    before = await b.get_session(sid)

    assert await nodes.reapers[B].sweep() == 2

    closed = disconnects(await b.events(sid, before.seq))
    assert sorted((e.attendee, e.endpoint) for e in closed) == [
        (P1, "e-1"),
        (P2, "e-1"),
        (P2, "e-2"),
    ]
    for event in closed:
        assert event.at == last_seen
        assert event.node == B
        assert event.data["reason"] == "node_lost"
    state = await b.get_session(sid)
    assert state.endpoints[EndpointId("e-c")].connected  # B's clinician untouched
    assert state.is_present(CLINICIAN) and not state.is_present(P1)
    assert state.version == before.version + 1
    # Within the grace window the endpoints stay (they may resume) and A stays on the books.
    assert await nodes.reapers[B].sweep() == 0
    assert (await b.get_session(sid)).version == state.version  # nothing left: nothing written
    assert [n for n, _ in await b.store.stale_nodes(nodes.clock.now)] == [A]
    assert await b.store.node_sessions(A) == [sid]


async def test_two_reapers_close_each_endpoint_exactly_once(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    nodes = cluster(store_pair)
    b, c = nodes.reapers[B], nodes.reapers[C]
    sessions = [await couples_call(nodes) for _ in range(4)]
    last_seen = await node_a_dies(nodes)
    versions = {sid: (await nodes.rooms[B].get_session(sid)).version for sid in sessions}

    closed = 0
    for _ in range(4):  # B and C sweep at once, round after round
        closed += sum(await asyncio.gather(b.sweep(), c.sweep()))
    assert closed == 2 * len(sessions)

    for sid in sessions:
        events = await nodes.rooms[C].events(sid)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        lost = disconnects(events)
        assert Counter((e.attendee, e.endpoint) for e in lost) == {
            (P1, "e-1"): 1,
            (P2, "e-1"): 1,
            (P2, "e-2"): 1,
        }
        assert {e.at for e in lost} == {last_seen}
        # One write per session: the losing reaper's change found nothing and wrote nothing.
        assert (await nodes.rooms[B].get_session(sid)).version == versions[sid] + 1

    # After the grace window the endpoints are forgotten, and so is node A.
    nodes.clock.now = last_seen + GRACE + timedelta(seconds=1)
    await nodes.beat(B, C)
    for _ in range(3):
        assert list(await asyncio.gather(b.sweep(), c.sweep())) == [0, 0]
    store = nodes.rooms[B].store
    assert await store.stale_nodes(nodes.clock.now) == []
    assert await store.node_sessions(A) == []
    for sid in sessions:
        state = await nodes.rooms[B].get_session(sid)
        assert set(state.endpoints) == {"e-c"}
        assert state.version == versions[sid] + 2
        assert len(disconnects(await nodes.rooms[B].events(sid))) == 3  # expiry records nothing

    # P1 comes back through node B: a new join, through the waiting room.
    sid = sessions[0]
    _, events = await nodes.rooms[B].apply(
        sid, partial(membership.join, endpoint=EndpointId("e-new"), attendee=P1)
    )
    assert [e.kind for e in events] == [EventKind.WAITING]
    assert not (await nodes.rooms[B].get_session(sid)).is_admitted(P1)


async def test_an_endpoint_resumed_on_another_node_is_not_reaped(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    nodes = cluster(store_pair)
    b = nodes.rooms[B]
    sid = await couples_call(nodes)
    await node_a_dies(nodes)
    await nodes.reapers[B].sweep()
    _, events = await b.apply(
        sid, partial(reconnect.resume, endpoint=EndpointId("e-2"), grace=GRACE)
    )
    assert [e.kind for e in events] == [EventKind.RESUMED]
    nodes.clock.advance(GRACE.total_seconds())
    await nodes.beat(B, C)
    await nodes.reapers[C].sweep()
    state = await b.get_session(sid)
    assert set(state.endpoints) == {"e-c", "e-2"}  # e-1 expired; e-2 lives on node B
    assert state.endpoints[EndpointId("e-2")].connected
    assert state.is_present(P2)
    assert await b.store.node_sessions(A) == []
    assert await b.store.node_sessions(B) == [sid]


async def test_own_sessions_expire_after_grace_and_are_untracked_when_empty(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    nodes = cluster(store_pair)
    b, reaper = nodes.rooms[B], nodes.reapers[B]
    sid = await couples_call(nodes)
    await b.apply(sid, partial(membership.join, endpoint=EndpointId("e-3"), attendee=P1))
    await b.apply(sid, partial(reconnect.disconnect, endpoint=EndpointId("e-3")))
    dropped_at = nodes.clock.now
    await nodes.beat(A, B)

    nodes.clock.now = dropped_at + GRACE
    await nodes.beat(A, B)
    version = (await b.get_session(sid)).version
    assert await reaper.sweep() == 0
    assert (await b.get_session(sid)).version == version  # may still resume: nothing to do
    nodes.clock.advance(1)
    await reaper.sweep()
    state = await b.get_session(sid)
    assert "e-3" not in state.endpoints and "e-c" in state.endpoints
    assert state.version == version + 1
    assert await b.store.node_sessions(B) == [sid]  # the clinician is still here

    await b.apply(sid, partial(membership.leave, endpoint=EndpointId("e-c")))
    await reaper.sweep()
    assert await b.store.node_sessions(B) == []
    assert await b.store.node_sessions(A) == [sid]  # A is alive: its endpoints are its own


async def test_an_ended_session_is_untracked(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    nodes = cluster(store_pair)
    sid = await couples_call(nodes)
    await nodes.rooms[B].apply(sid, partial(lifecycle.end, actor=CLINICIAN))
    await nodes.beat(A, B)
    await nodes.reapers[A].sweep()
    await nodes.reapers[B].sweep()
    assert await nodes.rooms[B].store.node_sessions(A) == []
    assert await nodes.rooms[B].store.node_sessions(B) == []


async def test_a_node_that_comes_back_is_not_forgotten_and_cleans_up_after_itself(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    nodes = cluster(store_pair)
    store = nodes.rooms[B].store
    sid = await couples_call(nodes)
    last_seen = await node_a_dies(nodes)
    assert await nodes.reapers[B].sweep() == 2
    await nodes.beat(A)  # A was only stalled
    nodes.clock.now = last_seen + GRACE + timedelta(seconds=1)
    await nodes.beat(A, B)
    assert await nodes.reapers[B].sweep() == 0  # A is alive again: not reaped twice
    # B expires the endpoints past their grace window in its own session, whatever their node.
    assert set((await store.get(sid)).endpoints) == {"e-c"}
    assert len(disconnects(await store.events(sid))) == 3
    assert await store.node_sessions(A) == [sid]  # A's to untrack, and A is not forgotten
    await nodes.reapers[A].sweep()
    assert await store.node_sessions(A) == []
    assert A in {n for n, _ in await store.stale_nodes(nodes.clock.now + GRACE)}


async def test_a_reaper_never_reaps_its_own_node(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    nodes = cluster(store_pair)
    sid = await couples_call(nodes)
    await node_a_dies(nodes)
    assert await nodes.reapers[A].sweep() == 0  # A's own reaper, just back from a stall
    state = await nodes.rooms[A].get_session(sid)
    assert all(e.connected for e in state.endpoints.values())


def test_dead_after_must_exceed_the_interval() -> None:
    rooms = Rooms(MemoryStore(), node=A)
    with pytest.raises(ValueError):
        Reaper(rooms, interval=5.0, dead_after=5.0, grace=GRACE)
    with pytest.raises(ValueError):
        Reaper(rooms, interval=-1.0, dead_after=5.0, grace=GRACE)


async def test_run_beats_and_sweeps_until_stopped() -> None:
    store = MemoryStore()
    clock = Clock(T0)
    reaper = Reaper(Rooms(store, node=B, clock=clock), interval=0, dead_after=30, grace=GRACE)
    task = reaper.start()
    with pytest.raises(RuntimeError):
        reaper.start()
    await passes(reaper, 3)
    assert await store.stale_nodes(T0 + timedelta(seconds=1)) == [(B, T0)]
    await reaper.stop()
    assert task.cancelled() and reaper.failures == 0
    await reaper.stop()  # stopping twice is harmless


async def test_run_survives_a_store_that_fails() -> None:
    client = Redis(
        port=free_port(), decode_responses=True, retry=Retry(NoBackoff(), 0), socket_timeout=1
    )
    store = RedisStore(client)
    reaper = Reaper(Rooms(store, node=B), interval=0, dead_after=30, grace=GRACE)
    try:
        task = reaper.start()
        await passes(reaper, 3)
        assert reaper.failures == reaper.passes
        assert not task.done()
    finally:
        await reaper.stop()
        await store.close()


async def passes(reaper: Reaper, count: int) -> None:
    """Wait (by yielding, not by time) until the reaper's loop has run ``count`` passes."""
    async with asyncio.timeout(10):
        while reaper.passes < count:  # noqa: ASYNC110 -- a counter, polled by yielding
            await asyncio.sleep(0)


async def test_an_endpoint_admitted_after_its_nodes_last_heartbeat_leaves_no_earlier(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    nodes = cluster(store_pair)
    a, b = nodes.rooms[A], nodes.rooms[B]
    sid = await couples_call(nodes)
    await nodes.beat(A, B)
    last_seen = nodes.clock.now
    # After A's last beat, P1 opens a second device on A (admitted at once: already in) and
    # P2 is attached to it: that endpoint's events are all later than the beat.
    nodes.clock.advance(4)
    await a.apply(sid, partial(membership.join, endpoint=EndpointId("e-3"), attendee=P1))
    nodes.clock.advance(3)
    await a.apply(sid, partial(membership.attach, endpoint=EndpointId("e-3"), attendee=P2))
    attached_at = nodes.clock.now
    nodes.clock.advance(DEAD_AFTER + 5)
    await nodes.beat(B)
    before = await b.get_session(sid)

    assert await nodes.reapers[B].sweep() == 3

    closed = disconnects(await b.events(sid, before.seq))
    at = {(e.attendee, e.endpoint): e.at for e in closed}
    assert at[(P1, EndpointId("e-1"))] == at[(P2, EndpointId("e-1"))] == last_seen
    assert at[(P2, EndpointId("e-2"))] == last_seen
    assert at[(P1, EndpointId("e-3"))] == attached_at  # never before its own last event
    assert at[(P2, EndpointId("e-3"))] == attached_at
    events = await b.events(sid)
    for endpoint in ("e-1", "e-2", "e-3"):
        times = [e.at for e in events if e.endpoint == endpoint]
        assert times == sorted(times), endpoint
