"""A Redis outage is not node death: once the store is back, every node gets time to beat again
before anything of it is reaped, and a node that really died is still reaped, at its last beat.

Two nodes, each with its own client of a real redis-server this module starts and stops (never
a shared one); server time is a settable clock, so no test waits for heartbeats to pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from rooms import membership
from rooms.errors import StoreUnavailable
from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.kinds import Role, SessionKind
from rooms.ledger import EventKind
from rooms.reaper import Reaper
from rooms.roster import RosterEntry
from rooms.service import CreateSession, Rooms
from rooms.store.redis import RedisStore
from tests.redis_server import RedisServer

T0 = datetime.fromisoformat("2026-11-02T15:00:00+00:00")
BEAT, DEAD_AFTER = 5.0, 15.0
GRACE = timedelta(seconds=60)
A, B = NodeId("n-a"), NodeId("n-b")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, free to be stopped and started."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


class Cluster:
    """Nodes A and B on one clock, each with its own store client and reaper."""

    def __init__(self, url: str) -> None:
        self.clock = Clock()
        self.stores = {n: RedisStore.from_url(url, timeout=2.0) for n in (A, B)}
        self.rooms = {n: Rooms(s, node=n, clock=self.clock) for n, s in self.stores.items()}
        self.reapers = {
            n: Reaper(r, interval=BEAT, dead_after=DEAD_AFTER, grace=GRACE)
            for n, r in self.rooms.items()
        }

    async def close(self) -> None:
        for store in self.stores.values():
            await store.close()

    async def beat(self, *nodes: NodeId) -> None:
        for node in nodes:
            await self.reapers[node].beat()

    async def beats_fail(self, *nodes: NodeId) -> None:
        for node in nodes:
            with pytest.raises(StoreUnavailable):
                await self.reapers[node].beat()


@pytest.fixture
async def nodes(own_redis: RedisServer) -> AsyncIterator[Cluster]:
    cluster = Cluster(own_redis.url)
    yield cluster
    await cluster.close()


async def _call(nodes: Cluster) -> SessionId:
    """The clinician on node A, the admitted patient on node B."""
    a, b = nodes.rooms[A], nodes.rooms[B]
    roster = [
        RosterEntry(attendee="c-1", role=Role.CLINICIAN),
        RosterEntry(attendee="p-1", role=Role.PATIENT),
    ]
    sid = (
        await a.create_session(
            CreateSession(kind=SessionKind.INDIVIDUAL, roster=roster), created_by="c-1"
        )
    ).spec.id
    await a.apply(
        sid, partial(membership.join, endpoint=EndpointId("e-c"), attendee=AttendeeId("c-1"))
    )
    await b.apply(
        sid, partial(membership.join, endpoint=EndpointId("e-p"), attendee=AttendeeId("p-1"))
    )
    await a.apply(
        sid, partial(membership.admit, actor=AttendeeId("c-1"), attendee=AttendeeId("p-1"))
    )
    return sid


async def _outage(nodes: Cluster, redis: RedisServer, seconds: float) -> None:
    """Redis stops for ``seconds`` of server time; every node's beats fail meanwhile."""
    redis.stop()
    for _ in range(int(seconds // BEAT)):
        nodes.clock.advance(BEAT)
        await nodes.beats_fail(A, B)
    redis.start()


async def test_the_first_node_back_after_an_outage_reaps_no_live_node(
    nodes: Cluster, own_redis: RedisServer
) -> None:
    sid = await _call(nodes)
    await nodes.beat(A, B)
    await _outage(nodes, own_redis, 4 * BEAT)  # longer than three heartbeats

    # A is back first and sweeps before B has had its turn to beat.
    await nodes.beat(A)
    assert await nodes.reapers[A].sweep() == 0
    nodes.clock.advance(BEAT)
    await nodes.beat(A)
    assert await nodes.reapers[A].sweep() == 0
    await nodes.beat(B)  # B beats within its period after the store came back
    for _ in range(4):
        nodes.clock.advance(BEAT)
        await nodes.beat(A, B)
        assert await nodes.reapers[A].sweep() == 0
        assert await nodes.reapers[B].sweep() == 0

    state = await nodes.rooms[A].get_session(sid)
    assert all(e.connected for e in state.endpoints.values())
    kinds = [e.kind for e in await nodes.rooms[A].events(sid)]
    assert EventKind.DISCONNECTED not in kinds


async def test_a_node_that_died_during_the_outage_is_reaped_at_its_last_beat(
    nodes: Cluster, own_redis: RedisServer
) -> None:
    sid = await _call(nodes)
    await nodes.beat(A, B)
    last_seen = nodes.clock.now
    await _outage(nodes, own_redis, 4 * BEAT)
    back = nodes.clock.now
    await nodes.beat(A)  # B never comes back

    while nodes.clock.now - back < timedelta(seconds=DEAD_AFTER):
        assert await nodes.reapers[A].sweep() == 0
        nodes.clock.advance(BEAT)
        await nodes.beat(A)
    assert await nodes.reapers[A].sweep() == 1

    (lost,) = [e for e in await nodes.rooms[A].events(sid) if e.kind is EventKind.DISCONNECTED]
    assert (lost.attendee, lost.at, lost.data["reason"]) == ("p-1", last_seen, "node_lost")


async def test_a_node_silent_after_the_outage_is_reaped_as_usual(
    nodes: Cluster, own_redis: RedisServer
) -> None:
    sid = await _call(nodes)
    await nodes.beat(A, B)
    await _outage(nodes, own_redis, 4 * BEAT)
    await nodes.beat(A, B)
    last_seen = nodes.clock.now  # B's last beat, after the outage
    for _ in range(int(DEAD_AFTER // BEAT) + 1):
        nodes.clock.advance(BEAT)
        await nodes.beat(A)
    assert await nodes.reapers[A].sweep() == 1
    (lost,) = [e for e in await nodes.rooms[A].events(sid) if e.kind is EventKind.DISCONNECTED]
    assert lost.at == last_seen
