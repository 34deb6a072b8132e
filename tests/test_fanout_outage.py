"""After a Redis outage, what one node pushes to another node's connections arrives again.

Two signaling nodes on a real redis-server of this test's own, stopped for several seconds.
Changes committed once it is back must reach every endpoint, including those held by the
other node: a patient admitted by a clinician on the other node sees themselves admitted
(else they sit in the waiting room on screen while the ledger counts them present).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import pytest

from rooms import membership
from rooms.errors import StoreUnavailable
from rooms.ids import AttendeeId
from rooms.ledger import EventKind
from rooms.store.redis import RedisStore
from tests.redis_server import RedisServer
from tests.signaling_harness import Client, Node, create, link, until

#: Long enough for a listener that backs off by doubling from 1 s to still be asleep when
#: Redis is back (it last tried at about 7 s and waits 8 s more).
OUTAGE = 8.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def nodes(own_redis: RedisServer) -> AsyncIterator[tuple[Node, Node]]:
    stores = [RedisStore.from_url(own_redis.url, prefix="hr-fanout") for _ in range(2)]
    pair = (
        await Node(stores[0], name="n-a", redis_url=own_redis.url, channel="fo").start(),
        await Node(stores[1], name="n-b", redis_url=own_redis.url, channel="fo").start(),
    )
    yield pair
    for node in pair:
        await node.stop()
    for store in stores:
        await store.close()


async def _store_back(node: Node) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                await node.rooms.store.ping()
                return
            except StoreUnavailable:
                await asyncio.sleep(0.05)


async def test_a_push_across_nodes_after_an_outage_arrives(
    nodes: tuple[Node, Node], own_redis: RedisServer
) -> None:
    a, b = nodes
    state = await create(a.rooms, "group", "c-1", "p-1", "p-2", purpose="therapy_group")
    host = await Client(a.url).connect(token=link(state, "c-1"))
    first = await Client(b.url).connect(token=link(state, "p-1"))
    assert (await host.call("admit", {"attendee": "p-1"}))["ok"] is True
    await until(lambda: first.room["admitted"])  # the fan-out works before the outage

    await asyncio.to_thread(own_redis.stop)
    await asyncio.sleep(OUTAGE)  # the outage's length, not a wait for some state
    await asyncio.to_thread(own_redis.start)
    await _store_back(b)

    # Node B holds the patient; the clinician on node A admits them.
    patient = await Client(b.url).connect(token=link(state, "p-2"))
    await until(
        lambda: any(w["endpoint"] == patient.endpoint for w in host.room["waiting"]), within=30
    )
    assert (await host.call("admit", {"attendee": "p-2"}))["ok"] is True
    await until(lambda: patient.room["admitted"], within=30)
    await until(
        lambda: (
            {e["endpoint"] for e in first.room["endpoints"]}
            == {host.endpoint, first.endpoint, patient.endpoint}
        ),
        within=30,
    )
    for client in (host, first, patient):
        await client.close()


async def test_a_close_the_fan_out_lost_is_made_when_it_is_back(nodes: tuple[Node, Node]) -> None:
    """A removal decided on node A while node B heard nothing of it (its subscription away):
    once B is subscribed again, its connection of the removed patient gets its bye and
    closes, and nothing more is recorded."""
    a, b = nodes
    state = await create(a.rooms, "group", "c-1", "p-1", "p-2", purpose="therapy_group")
    session = state.spec.id
    host = await Client(a.url).connect(token=link(state, "c-1"))
    patient = await Client(b.url).connect(token=link(state, "p-1"))
    other = await Client(b.url).connect(token=link(state, "p-2"))
    for who in ("p-1", "p-2"):
        assert (await host.call("admit", {"attendee": who}))["ok"] is True
    await until(lambda: patient.room["admitted"] and other.room["admitted"])
    remove = partial(membership.remove, actor=AttendeeId("c-1"), attendee=AttendeeId("p-1"))
    await a.rooms.apply(session, remove)  # committed; nothing pushed (the push was lost)

    await b.server.resync()
    await until(lambda: patient.byes == [{"reason": "removed", "detail": ""}])
    await until(lambda: not patient.sio.connected)
    await until(
        lambda: {e["endpoint"] for e in other.room["endpoints"]} == {host.endpoint, other.endpoint}
    )
    kinds = [e.kind for e in await a.rooms.events(session) if e.attendee == "p-1"]
    assert kinds[-1] is EventKind.REMOVED and EventKind.DISCONNECTED not in kinds
    for client in (host, other):
        await client.close()
