"""Resuming a dropped endpoint through the real server and stores: it restores exactly the
state before the drop, within the grace window only, and says why when it is too late."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from rooms.attendance import AttendeePresence, track
from rooms.ids import EndpointId, SessionId
from rooms.ledger import LedgerEvent
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


def _presence(events: list[LedgerEvent]) -> dict[str, AttendeePresence]:
    (session,) = track(events)
    return {str(who): found for who, found in session.attendees.items()}


async def test_a_waiting_patient_who_reloads_is_not_credited(node: Node, clock: Clock) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    session = state.spec.id
    host = await Client(node.url).connect(token=link(state, "c-17"))
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    await _dropped(node, patient, session)  # the waiting-room page reloads
    clock.advance(timedelta(seconds=5))
    again = await Client(node.url).connect(resume=patient.welcome["resume"])
    assert again.endpoint == patient.endpoint and again.room["admitted"] is False
    clock.advance(timedelta(minutes=40))  # still waiting when the clinician ends the session
    assert (await host.call("end"))["ok"] is True

    presence = _presence(await node.rooms.events(session))
    assert "p-201" not in presence or presence["p-201"].present == timedelta(0)
    assert presence["c-17"].present == timedelta(minutes=40, seconds=5)


async def test_an_absent_partner_stays_absent_when_the_shared_device_blips(
    node: Node, clock: Clock
) -> None:
    state = await create(node.rooms, "couples", "c-17", "p-201", "p-202")
    session = state.spec.id
    host = await Client(node.url).connect(token=link(state, "c-17"))
    device = await Client(node.url).connect(token=link(state, "p-201"))
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    assert (await device.call("attach", {"token": link(state, "p-202")}))["ok"] is True
    clock.advance(timedelta(minutes=10))
    mark = {"attendee": "p-202", "present": False}
    assert (await device.call("mark", mark))["ok"] is True  # p-202 steps away
    clock.advance(timedelta(minutes=5))
    await _dropped(node, device, session)
    clock.advance(timedelta(seconds=20))
    again = await Client(node.url).connect(resume=device.welcome["resume"])
    seats = {a["attendee"]: a["status"] for e in again.room["endpoints"] for a in e["attendees"]}
    assert seats["p-202"] == "absent" and seats["p-201"] == "admitted"
    clock.advance(timedelta(minutes=30))
    assert (await host.call("end"))["ok"] is True

    presence = _presence(await node.rooms.events(session))
    assert presence["p-202"].present == timedelta(minutes=10)  # until they stepped away
    assert presence["p-201"].present == timedelta(minutes=45)  # less the 20 s drop


async def test_a_patient_admitted_while_disconnected_is_credited_from_their_return(
    node: Node, clock: Clock
) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    session = state.spec.id
    host = await Client(node.url).connect(token=link(state, "c-17"))
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    await _dropped(node, patient, session)  # a waiting patient's phone drops...
    clock.advance(timedelta(seconds=10))
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True  # ...as they are let in
    clock.advance(timedelta(seconds=15))
    again = await Client(node.url).connect(resume=patient.welcome["resume"])
    assert again.room["admitted"] is True
    clock.advance(timedelta(minutes=20))
    await _dropped(node, again, session)
    clock.advance(timedelta(seconds=10))
    assert (await host.call("admit", {"attendee": "p-201"}))["error"] == "invalid_transition"
    clock.advance(timedelta(minutes=20))
    assert (await host.call("end"))["ok"] is True

    presence = _presence(await node.rooms.events(session))
    assert presence["p-201"].present == timedelta(minutes=20)  # from the resume to the drop
