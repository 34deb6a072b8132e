"""Resuming a dropped endpoint through the real server and stores: it restores exactly the
state before the drop, within the grace window only, and says why when it is too late."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from rooms.ids import EndpointId, SessionId
from rooms.reaper import Reaper
from rooms.store import SessionStore
from tests.signaling_harness import GRACE, Client, Node, connect_error, create, link


class Clock:
    """Server time that moves only when a test says so (starting from the real time, so
    links issued now are valid)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def node(store: SessionStore, clock: Clock) -> AsyncIterator[Node]:
    started = Node(store)
    started.rooms.clock = clock
    await started.start()
    yield started
    await started.stop()


async def _dropped(node: Node, client: Client, session: SessionId) -> None:
    """Hang ``client`` up and wait until the store has its endpoint disconnected."""
    endpoint = EndpointId(client.endpoint)
    await client.sio.disconnect()
    deadline = asyncio.get_running_loop().time() + 10
    while (await node.rooms.get_session(session)).endpoints[endpoint].connected:
        assert asyncio.get_running_loop().time() < deadline, "the hang-up was not recorded"
        await asyncio.sleep(0.02)


async def test_a_resume_after_the_grace_window_is_resume_expired(node: Node, clock: Clock) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    session = state.spec.id
    host = await Client(node.url).connect(token=link(state, "c-17"))
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    credential = patient.welcome["resume"]
    await _dropped(node, patient, session)

    clock.advance(GRACE + timedelta(seconds=1))
    assert (await connect_error(node.url, resume=credential))["error"] == "resume_expired"
    # Once the reaper has forgotten the endpoint, the answer is the same.
    reaper = Reaper(node.rooms, interval=5, dead_after=15, grace=GRACE)
    await reaper.beat()
    await reaper.sweep()
    assert patient.endpoint not in (await node.rooms.get_session(session)).endpoints
    before = await node.rooms.events(session)
    assert (await connect_error(node.url, resume=credential))["error"] == "resume_expired"
    assert await node.rooms.events(session) == before
    await host.close()
