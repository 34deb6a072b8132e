"""Signaling through a real socket.io server and real stores: join, admit, controls, resume."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rooms.ledger import EventKind
from rooms.store import SessionStore
from tests.signaling_harness import Client, Node, connect_error, create, link, until


@pytest.fixture
async def node(store: SessionStore) -> AsyncIterator[Node]:
    started = await Node(store).start()
    yield started
    await started.stop()


async def test_patient_waits_then_is_admitted_and_sees_the_clinician(node: Node) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    host = await Client(node.url).connect(token=link(state, "c-17"))
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    assert host.welcome["role"] == "clinician" and patient.welcome["role"] == "patient"
    assert patient.welcome["ice_servers"] == [] and patient.welcome["target"] == "peer"
    # The patient waits and sees only themselves; the clinician sees them waiting.
    assert patient.room["admitted"] is False and len(patient.room["endpoints"]) == 1
    await until(lambda: len(host.room["waiting"]) == 1)
    assert host.room["waiting"][0]["attendees"][0]["attendee"] == "p-201"
    # Only admitted endpoints may signal each other.
    refused = await patient.call(
        "signal", {"to": host.endpoint, "description": {"type": "offer", "sdp": "v=0"}}
    )
    assert refused["error"] == "not_authorized"
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: patient.room["admitted"] and patient.room["status"] == "live")
    assert {e["endpoint"] for e in patient.room["endpoints"]} == {host.endpoint, patient.endpoint}
    offer = {"to": host.endpoint, "description": {"type": "offer", "sdp": "v=0"}}
    assert (await patient.call("signal", offer))["ok"] is True
    await until(lambda: len(host.signals) == 1)
    assert host.signals[0] == {
        "from": patient.endpoint,
        "description": {"type": "offer", "sdp": "v=0"},
    }
    for client in (host, patient):
        await client.close()


async def test_bad_links_are_refused_with_a_clear_code(node: Node) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    assert (await connect_error(node.url, token="x" * 40))["error"] == "token_invalid"
    assert (await connect_error(node.url))["error"] == "invalid_message"
    tampered = link(state, "p-201")[:-3] + "AAA"
    assert (await connect_error(node.url, token=tampered))["error"] == "token_invalid"
    unknown = await connect_error(node.url, resume="s-nosuchsession.e-abcd.zzzzzzzz")
    assert unknown["error"] == "session_not_found"
    assert (await connect_error(node.url, resume="a" * 20))["error"] == "token_invalid"
    both = await connect_error(node.url, token="x" * 40, resume="y" * 40)
    assert both["error"] == "invalid_message"
    assert [e.kind for e in await node.rooms.events(state.spec.id)] == [EventKind.SESSION_CREATED]


async def test_malformed_and_unknown_events_get_codes_and_change_nothing(node: Node) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    host = await Client(node.url).connect(token=link(state, "c-17"))
    before = await node.rooms.events(state.spec.id)
    cases = [
        ("admit", {"attendee": "jane@example.org"}),
        ("admit", {}),
        ("admit", "p-201"),
        ("lock", {"locked": "yes please"}),
        (
            "signal",
            {"to": "e-nobody", "candidate": {"candidate": "x"}, "description": {"type": "offer"}},
        ),
        ("launch_missiles", {}),
        ("mute", {"attendee": "p-201", "extra": 1}),
        ("signal", {"to": host.endpoint, "description": {"type": "offer", "sdp": "x" * 70000}}),
    ]
    for event, data in cases:
        reply = await host.call(event, data)
        assert reply["error"] == "invalid_message", (event, reply)
    # Out of order: admitting someone who is not waiting.
    assert (await host.call("admit", {"attendee": "p-201"}))["error"] == "invalid_transition"
    assert await node.rooms.events(state.spec.id) == before
    assert (await host.call("hello"))["ok"] is True  # the connection still serves
    await host.close()
