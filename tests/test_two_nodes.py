"""Two signaling nodes, one Redis: endpoints on different nodes meet, signal and control, and a
burst of pushes to endpoints on the other node all arrive with the fan-out's connections bounded."""

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


async def test_a_call_across_two_nodes(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    state = await create(a.rooms, "individual", "c-17", "p-201")
    host = await Client(a.url).connect(token=link(state, "c-17"))
    patient = await Client(b.url).connect(token=link(state, "p-201"))
    # The clinician on node A sees the patient who joined node B wait.
    await until(lambda: len(host.room["waiting"]) == 1)
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: patient.room["admitted"] and patient.room["status"] == "live")
    offer = {"to": host.endpoint, "description": {"type": "offer", "sdp": "v=0 from b"}}
    assert (await patient.call("signal", offer))["ok"] is True
    await until(lambda: len(host.signals) == 1)
    answer = {"to": patient.endpoint, "description": {"type": "answer", "sdp": "v=0 from a"}}
    assert (await host.call("signal", answer))["ok"] is True
    await until(lambda: len(patient.signals) == 1)
    assert patient.signals[0]["from"] == host.endpoint
    # A removal decided on node A closes the patient's connection on node B.
    assert (await host.call("remove", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: patient.byes == [{"reason": "removed", "detail": ""}])
    await until(lambda: not patient.sio.connected)
    await host.close()


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
