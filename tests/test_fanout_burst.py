"""A burst of pushes to endpoints on another node: none is lost, and the fan-out's Redis
connections stay bounded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from rooms.store import open_store
from tests.signaling_harness import Client, Node, create, link, until

BURST = 300


@pytest.fixture
async def nodes(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[Node, Node]]:
    stores = [open_store(redis_url, prefix=redis_prefix) for _ in range(2)]
    pair = (
        await Node(stores[0], name="n-a", redis_url=redis_url, channel=redis_prefix).start(),
        await Node(stores[1], name="n-b", redis_url=redis_url, channel=redis_prefix).start(),
    )
    yield pair
    for node in pair:
        await node.stop()
    for store in stores:
        await store.close()


async def test_a_burst_of_cross_node_pushes_all_arrive(
    nodes: tuple[Node, Node], redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = nodes
    state = await create(a.rooms, "individual", "c-17", "p-201")
    patient = await Client(b.url).connect(token=link(state, "p-201"))
    sid = next(iter(b.server.local))  # the patient's connection, held by node B
    assert sid not in a.server.local
    caplog.set_level(logging.ERROR)
    redis = Redis.from_url(redis_url)
    try:
        before = len(await redis.client_list())
        # Node A pushes BURST byes at once to a connection it does not hold (through Redis).
        byes = [{"reason": "left", "detail": str(i)} for i in range(BURST)]
        await asyncio.gather(*(a.server._send("bye", bye, sid) for bye in byes))
        await until(lambda: len(patient.byes) == BURST, within=10)
        assert sorted(int(bye["detail"]) for bye in patient.byes) == list(range(BURST))
        assert not [r for r in caplog.records if "publish" in r.getMessage().lower()]
        opened = len(await redis.client_list()) - before
        assert opened <= 70, f"the burst opened {opened} Redis connections"
    finally:
        await redis.aclose()
    await patient.close()
