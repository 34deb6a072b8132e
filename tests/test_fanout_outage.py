"""After a Redis outage, what one node pushes to another node's connections arrives again.

Two signaling nodes on a real redis-server of this test's own, stopped for several seconds.
Changes committed once it is back must reach every endpoint, including those held by the
other node: a patient admitted by a clinician on the other node sees themselves admitted
(else they sit in the waiting room on screen while the ledger counts them present).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rooms.errors import StoreUnavailable
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
