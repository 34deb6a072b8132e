"""Signaling through a real socket.io server and real stores: join, admit, controls, resume."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rooms.ledger import EventKind
from rooms.state import SessionState
from rooms.store import SessionStore
from signaling.protocol import Room, Welcome
from tests.signaling_harness import Client, Node, connect_error, create, link, until


@pytest.fixture
async def node(store: SessionStore) -> AsyncIterator[Node]:
    started = await Node(store).start()
    yield started
    await started.stop()


async def test_a_connection_that_hangs_up_is_freed_without_the_cycle_collector(
    node: Node,
) -> None:
    """Reference counting alone must free a finished connection: left to the cycle collector,
    thousands of open connections make each of its passes stall every session on the node
    (signaling.websocket)."""
    state = await create(node.rooms, "individual", "c-17", "p-201")
    sio = node.server.sio
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            patient = await Client(node.url).connect(token=link(state, "p-201"))
            (sid,) = sio.environ
            request = weakref.ref(sio.environ[sid]["aiohttp.request"])
            await patient.close()
            await until(lambda ref=request: ref() is None)
    finally:
        gc.enable()


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
        ("lock", json.loads('{"locked": ' + "[" * 400 + "]" * 400 + "}")),
    ]
    for event, data in cases:
        reply = await host.call(event, data)
        assert reply["error"] == "invalid_message", (event, reply)
    # Out of order: admitting someone who is not waiting.
    assert (await host.call("admit", {"attendee": "p-201"}))["error"] == "invalid_transition"
    assert await node.rooms.events(state.spec.id) == before
    hello = await host.call("hello")  # the connection still serves
    assert hello["welcome"] == host.welcome and hello["room"] == host.room
    Welcome.model_validate(hello["welcome"])
    Room.model_validate(hello["room"])
    await host.close()


async def in_call(
    node: Node, kind: str, *patients: str, connect: int | None = None
) -> tuple[SessionState, Client, list[Client]]:
    """A session with its clinician and the first ``connect`` patients (default: all)
    admitted, each on their own endpoint."""
    state = await create(node.rooms, kind, "c-17", *patients)
    host = await Client(node.url).connect(token=link(state, "c-17"))
    clients = []
    for patient in patients[:connect]:
        clients.append(await Client(node.url).connect(token=link(state, patient)))
        assert (await host.call("admit", {"attendee": patient}))["ok"] is True
    await until(lambda: all(c.room["admitted"] for c in clients))
    return state, host, clients


def seat(client: Client, attendee: str) -> dict[str, Any]:
    for endpoint in client.room["endpoints"]:
        for person in endpoint["attendees"]:
            if person["attendee"] == attendee:
                return dict(person)
    raise AssertionError(f"{attendee} not in {client.room}")


async def test_controls_reach_every_endpoint(node: Node) -> None:
    state, host, (p1, p2) = await in_call(node, "couples", "p-201", "p-202")
    assert (await host.call("mute", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: all(seat(c, "p-201")["clinician_muted"] for c in (host, p1, p2)))
    # The muted patient cannot unmute themselves, but can ask.
    assert (await p1.call("unmute", {"attendee": "p-201"}))["error"] == "not_authorized"
    assert (await p1.call("ask_unmute"))["ok"] is True
    await until(lambda: seat(host, "p-201")["unmute_requested"])
    assert (await host.call("lock_mute", {"attendee": "p-202", "locked": True}))["ok"] is True
    await until(lambda: seat(p2, "p-202")["mute_locked"])
    assert (await p2.call("ask_unmute"))["error"] == "mute_locked"
    assert (await host.call("lock", {"locked": True}))["ok"] is True
    await until(lambda: p1.room["locked"] and p2.room["locked"])
    # A patient may not use clinician controls; nothing changes.
    before = await node.rooms.events(state.spec.id)
    for event, data in [
        ("mute", {"attendee": "p-202"}),
        ("remove", {"attendee": "p-202"}),
        ("lock", {"locked": False}),
        ("end", {}),
        ("mute_all", {}),
    ]:
        assert (await p1.call(event, data))["error"] == "not_authorized", event
    assert await node.rooms.events(state.spec.id) == before
    for client in (host, p1, p2):
        await client.close()


async def test_remove_revokes_and_end_says_goodbye_to_everyone(node: Node) -> None:
    state, host, (p1, p2) = await in_call(node, "couples", "p-201", "p-202")
    assert (await host.call("remove", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: p1.byes == [{"reason": "removed", "detail": ""}])
    await until(lambda: not p1.sio.connected)
    await until(lambda: len(host.room["endpoints"]) == 2)
    assert (await connect_error(node.url, token=link(state, "p-201")))["error"] == "token_revoked"
    assert (await host.call("end"))["ok"] is True
    await until(lambda: [b["reason"] for b in p2.byes] == ["ended"] and not p2.sio.connected)
    assert (await connect_error(node.url, token=link(state, "p-202")))["error"] == "session_ended"
    kinds = [e.kind for e in await node.rooms.events(state.spec.id)]
    assert kinds[-1] is EventKind.SESSION_ENDED
    assert kinds.count(EventKind.REMOVED) == 1
    await until(lambda: [b["reason"] for b in host.byes] == ["ended"])
    await host.close()


async def test_shared_device_carries_two_attendees(node: Node) -> None:
    state, host, (p1,) = await in_call(node, "couples", "p-201", "p-202", connect=1)
    reply = await p1.call("attach", {"token": link(state, "p-202")})
    assert reply["ok"] is True
    await until(
        lambda: (
            len(host.room["endpoints"]) == 2
            and len(host.room["endpoints"][0]["attendees"])
            + len(host.room["endpoints"][1]["attendees"])
            == 3
        )
    )
    partner = seat(host, "p-202")
    assert partner["attached"] and not partner["attested"] and partner["status"] == "admitted"
    # The clinician attests; the device marks its partner away and back.
    assert (await host.call("mark", {"attendee": "p-202", "present": True}))["ok"] is True
    await until(lambda: seat(host, "p-202")["attested"])
    assert (await host.call("mark", {"attendee": "p-201", "present": True}))[
        "error"
    ] == "invalid_transition"
    assert (await p1.call("mark", {"attendee": "p-202", "present": False}))["ok"] is True
    await until(lambda: seat(host, "p-202")["status"] == "absent")
    # Another session's link cannot be attached.
    other = await create(node.rooms, "couples", "c-17", "p-201", "p-203")
    assert (await p1.call("attach", {"token": link(other, "p-203")}))["error"] == "wrong_session"
    device = p1.endpoint
    await p1.close()
    await until(lambda: not _endpoint(host, device)["connected"])
    events = await node.rooms.events(state.spec.id)
    dropped = [e.attendee for e in events if e.kind is EventKind.DISCONNECTED]
    assert sorted(str(a) for a in dropped) == ["p-201", "p-202"]
    await host.close()


async def test_resume_keeps_the_endpoint_and_its_attendance(node: Node) -> None:
    state, host, (p1,) = await in_call(node, "individual", "p-201")
    credential = p1.welcome["resume"]
    await p1.sio.disconnect()
    await until(lambda: not seat(host, "p-201") or not _endpoint(host, p1.endpoint)["connected"])
    again = await Client(node.url).connect(resume=credential)
    assert again.endpoint == p1.endpoint and again.welcome["resumed"] is True
    assert again.room["admitted"] is True  # no waiting room, no new admission
    # The old credential was rotated: replaying it fails.
    await again.sio.disconnect()
    await until(lambda: not _endpoint(host, p1.endpoint)["connected"])
    assert (await connect_error(node.url, resume=credential))["error"] == "token_invalid"
    kinds = [e.kind for e in await node.rooms.events(state.spec.id) if e.attendee == "p-201"]
    assert kinds.count(EventKind.ADMITTED) == 1
    assert kinds.count(EventKind.RESUMED) == 1 and kinds.count(EventKind.DISCONNECTED) == 2
    await host.close()


def _endpoint(client: Client, endpoint: str) -> dict[str, Any]:
    return next(e for e in client.room["endpoints"] if e["endpoint"] == endpoint)


async def test_signals_are_relayed_in_the_order_sent(node: Node) -> None:
    _, host, (patient,) = await in_call(node, "individual", "p-201")
    sends = [
        patient.call("signal", {"to": host.endpoint, "candidate": {"candidate": f"candidate:{i}"}})
        for i in range(40)
    ]
    assert all(reply["ok"] for reply in await asyncio.gather(*sends))
    await until(lambda: len(host.signals) == 40)
    assert [s["candidate"]["candidate"] for s in host.signals] == [
        f"candidate:{i}" for i in range(40)
    ]
    await host.close()
    await patient.close()


async def test_a_second_connection_with_the_credential_takes_over(node: Node) -> None:
    _, host, (patient,) = await in_call(node, "individual", "p-201")
    again = await Client(node.url).connect(resume=patient.welcome["resume"])
    assert again.endpoint == patient.endpoint
    await until(lambda: patient.byes == [{"reason": "replaced", "detail": ""}])
    await until(lambda: not patient.sio.connected)
    assert (await again.call("hello"))["ok"] is True
    for client in (host, again):
        await client.close()


async def test_leave_is_recorded_once_and_a_client_that_stays_is_closed(node: Node) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    host = await Client(node.url).connect(token=link(state, "c-17"))
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    assert (await patient.call("leave"))["ok"] is True
    # The clinician sees the patient gone; the patient never hangs up, so the server does.
    await until(lambda: len(host.room["endpoints"]) == 1)
    await until(lambda: not patient.sio.connected, within=5)
    events = await node.rooms.events(state.spec.id)
    lefts = [e for e in events if e.kind is EventKind.LEFT and e.attendee == "p-201"]
    assert len(lefts) == 1 and lefts[0].data.get("reason") != "disconnected"
    assert not [e for e in events if e.kind is EventKind.DISCONNECTED]
    await host.close()
