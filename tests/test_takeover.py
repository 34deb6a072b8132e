"""One person, one window: the same link opened again is refused with ``already_joined``, and a
join asked with ``takeover`` moves the person's endpoint to the new connection, over a real
socket.io server on both stores. Attendance stays one person, one interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rooms.attendance.presence import track
from rooms.ids import EndpointId, SessionId
from rooms.ledger import EventKind
from rooms.store import SessionStore
from tests.signaling_harness import Client, Node, connect_error, create, link, until


@pytest.fixture
async def node(store: SessionStore) -> AsyncIterator[Node]:
    started = await Node(store).start()
    yield started
    await started.stop()


async def test_a_second_window_is_refused_then_takes_the_call_over(node: Node) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    host = await Client(node.url).connect(token=link(state, "c-17"))
    first = await Client(node.url).connect(token=link(state, "p-201"))
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: first.room["admitted"])
    before = len(await node.rooms.events(state.spec.id))

    # The same link again: refused with a clear code, nothing recorded, nothing changed.
    refused = await connect_error(node.url, token=link(state, "p-201"))
    assert refused["error"] == "already_joined", refused
    assert len(await node.rooms.events(state.spec.id)) == before
    assert len((await node.rooms.get_session(state.spec.id)).endpoints) == 2

    # "Continue here": the same endpoint moves to the new connection, still admitted.
    second = await Client(node.url).connect(token=link(state, "p-201"), takeover=True)
    assert second.endpoint == first.endpoint and second.welcome["resumed"] is True
    assert second.room["admitted"] is True
    await until(lambda: first.byes == [{"reason": "replaced", "detail": ""}])
    await until(lambda: not first.sio.connected)
    # The clinician sees one device for the patient, connected: not two, not a reconnect.
    await until(lambda: len(host.room["endpoints"]) == 2)
    patient = next(e for e in host.room["endpoints"] if e["endpoint"] == second.endpoint)
    assert patient["connected"] is True
    # The old window's resume credential is dead: it cannot take the endpoint back silently.
    gone = await connect_error(node.url, resume=first.welcome["resume"])
    assert gone["error"] == "token_invalid"
    assert (
        await second.call(
            "signal", {"to": host.endpoint, "candidate": {"candidate": "candidate:1"}}
        )
    )["ok"] is True

    assert (await host.call("end"))["ok"] is True
    events = await node.rooms.events(state.spec.id)
    mine = [e for e in events if e.attendee == "p-201"]
    assert [e.kind for e in mine].count(EventKind.ADMITTED) == 1
    assert [e.kind for e in mine].count(EventKind.WAITING) == 1
    assert not [e for e in mine if e.kind is EventKind.DISCONNECTED]
    lefts = [e for e in mine if e.kind is EventKind.LEFT]  # only the end closes the interval
    assert [e.data.get("reason") for e in lefts] == ["session_ended"]
    moved = [e for e in mine if e.kind is EventKind.RESUMED]
    assert len(moved) == 1 and moved[0].data["takeover"] is True
    (presence,) = track(events)
    assert len(presence.attendees["p-201"].intervals) == 1  # one interval, no gap, no double
    for client in (host, second):
        await client.close()


async def test_a_waiting_window_is_taken_over_and_stays_waiting(node: Node) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    host = await Client(node.url).connect(token=link(state, "c-17"))
    first = await Client(node.url).connect(token=link(state, "p-201"))
    second = await Client(node.url).connect(token=link(state, "p-201"), takeover=True)
    assert second.endpoint == first.endpoint and second.room["admitted"] is False
    await until(lambda: bool(first.byes))
    await until(lambda: len(host.room["waiting"]) == 1)
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: second.room["admitted"])
    for client in (host, second):
        await client.close()


async def test_takeover_with_nothing_to_take_joins_as_usual(node: Node) -> None:
    """The other window closed before the person said yes: the join simply goes ahead."""
    state = await create(node.rooms, "individual", "c-17", "p-201")
    first = await Client(node.url).connect(token=link(state, "p-201"))
    await first.close()
    await _disconnected(node, state.spec.id, first.endpoint)
    second = await Client(node.url).connect(token=link(state, "p-201"), takeover=True)
    assert second.endpoint != first.endpoint and second.welcome["resumed"] is False
    await second.close()


async def _disconnected(node: Node, session: SessionId, endpoint: str) -> None:
    """Poll the store until the server has recorded ``endpoint``'s connection as lost."""
    for _ in range(500):
        found = (await node.rooms.get_session(session)).endpoints.get(EndpointId(endpoint))
        if found is None or not found.connected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the closed connection was never recorded as lost")


async def test_a_removed_person_cannot_take_over(node: Node) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    host = await Client(node.url).connect(token=link(state, "c-17"))
    await Client(node.url).connect(token=link(state, "p-201"))
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    assert (await host.call("remove", {"attendee": "p-201"}))["ok"] is True
    before = len(await node.rooms.events(state.spec.id))
    refused = await connect_error(node.url, token=link(state, "p-201"), takeover=True)
    assert refused["error"] == "token_revoked"
    assert len(await node.rooms.events(state.spec.id)) == before
    await host.close()
