"""Socket.IO's reserved event names are the server's own: a client sending an event named
``connect`` or ``disconnect`` is refused and changes nothing (one socket, one endpoint)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rooms.store import SessionStore
from tests.signaling_harness import Client, Node, create, link, until


@pytest.fixture
async def node(store: SessionStore) -> AsyncIterator[Node]:
    started = await Node(store).start()
    yield started
    await started.stop()


async def _admitted_pair(node: Node) -> tuple[str, Client, Client]:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    host = await Client(node.url).connect(token=link(state, "c-17"))
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: patient.room["admitted"])
    return state.spec.id, host, patient


async def test_a_client_event_named_connect_or_disconnect_is_refused(node: Node) -> None:
    session, host, patient = await _admitted_pair(node)
    state = await node.rooms.get_session(session)
    token = link(state, "p-201")
    before = await node.rooms.events(session)

    # Through the direct event path: each is answered invalid_message.
    second = await patient.sio.call("connect", ({}, {"v": 1, "token": token}), timeout=5)
    assert second["error"] == "invalid_message"
    hang_up = await patient.sio.call("disconnect", timeout=5)
    assert hang_up["error"] == "invalid_message"
    # Through python-socketio's own packet decoding (a namespace written out sends it there).
    await patient.sio.eio.send('2/,["connect",{},' + f'{{"v":1,"token":"{token}"}}]')
    await patient.sio.eio.send('2/,["disconnect"]')
    assert (await patient.call("hello"))["ok"] is True  # handled after the two above

    after = await node.rooms.get_session(session)
    assert set(after.endpoints) == {host.endpoint, patient.endpoint}
    assert all(e.connected for e in after.endpoints.values())
    assert await node.rooms.events(session) == before
    assert patient.sio.connected and len(patient.welcomes) == 1
    for client in (host, patient):
        await client.close()
