"""Two Homeroom nodes on one real Redis and one real Janus: endpoints held by different nodes
share the session's one Janus room, everyone receives everyone, and a clinician's mute on one
node is enforced for a patient held by the other."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from media.janus.client import JanusConnection
from media.janus.forwarder import JanusForwarder
from media.janus.naming import RoomNames
from media.janus.process import JanusProcess
from media.janus.videoroom import ListRooms
from media.participant import Participant
from rooms.state import SessionState
from rooms.store import open_store
from tests.signaling_harness import Node, create, link
from tests.test_group_media import (
    SMALL,
    _waiting,
    everyone_receives_everyone_of,
    got,
    silence,
    until,
)


class TwoNodes:
    """Nodes ``a`` and ``b`` on one Redis, each with its own connection to one Janus."""

    def __init__(self, a: Node, b: Node, janus: JanusProcess) -> None:
        self.a, self.b, self.janus = a, b, janus
        self.joined: list[Participant] = []

    async def join(
        self, node: Node, state: SessionState, attendee: str, *, obey: bool = True
    ) -> Participant:
        participant = Participant(node.url, token=link(state, attendee), spec=SMALL, obey_mute=obey)
        self.joined.append(participant)
        return await participant.join()

    async def homeroom_rooms(self) -> list[str]:
        """The sessions of the rooms Homeroom made in Janus (asked of Janus itself)."""
        config = self.janus.config
        connection = JanusConnection(config.url, config.api_secret)
        await connection.connect()
        try:
            session = await connection.create_session()
            handle = await session.attach()
            listed = await handle.send(ListRooms(admin_key=config.api_secret).body())
            await session.destroy()
        finally:
            await connection.close()
        descriptions = [str(r.get("description", "")) for r in listed.plugin_data["list"]]
        return [s for d in descriptions if (s := RoomNames.session_of(d)) is not None]


@pytest.fixture
async def nodes(janus: JanusProcess, redis_url: str, redis_prefix: str) -> AsyncIterator[TwoNodes]:
    key = secrets.token_bytes(32)  # HOMEROOM_SECRET's derivation: the same on every node
    stores = [open_store(redis_url, prefix=redis_prefix) for _ in range(2)]
    forwarders = [JanusForwarder(janus.config.url, janus.config.api_secret, key) for _ in stores]
    for forwarder in forwarders:
        await forwarder.start(set())
    started: list[Node] = []
    for name, store, forwarder in zip(("n-a", "n-b"), stores, forwarders, strict=True):
        node = Node(
            store, name=name, redis_url=redis_url, channel=redis_prefix, forwarder=forwarder
        )
        started.append(await node.start())
    pair = TwoNodes(started[0], started[1], janus)
    try:
        yield pair
    finally:
        for participant in pair.joined:
            await participant.close()
        for node in started:
            await node.stop()
        for forwarder in forwarders:
            await forwarder.close()
        for store in stores:
            await store.close()


async def test_endpoints_on_two_nodes_share_one_janus_room(nodes: TwoNodes) -> None:
    a, b = nodes.a, nodes.b
    state = await create(a.rooms, "group", "c-1", "p-1", "p-2", "p-3", purpose="therapy_group")
    clinician = await nodes.join(a, state, "c-1")
    members = [clinician]
    # p-1 and p-3 on node B, p-2 on node A: the clinician on A admits them all.
    # p-1 runs a modified client that keeps sending audio whatever the room says.
    for patient, node in (("p-1", b), ("p-2", a), ("p-3", b)):
        member = await nodes.join(node, state, patient, obey=patient != "p-1")
        await until(lambda p=patient: _waiting(clinician, p), f"{patient} waits")
        assert (await clinician.admit(patient))["ok"] is True
        members.append(member)
    assert all(m.welcome["target"] == "server" for m in members)
    await until(everyone_receives_everyone_of(members), "every endpoint receives every other")
    for member in members:
        assert member.forwarded is not None
        assert await member.forwarded.outbound_video_streams() == 1
        assert len(member.stats()) == 3
    # Both nodes publish into the session's room: exactly one room exists for it.
    assert await nodes.homeroom_rooms() == [str(state.spec.id)]
    # The clinician (node A) mutes p-1 (node B): nobody hears p-1, on either node.
    loud = members[1]
    assert (await clinician.call("mute", {"attendee": "p-1"}))["ok"] is True
    for receiver in (clinician, members[2], members[3]):
        await silence(lambda r=receiver: got(r, loud).audio_frames, "p-1's audio")
    heard = got(clinician, members[3]).audio_frames
    await until(lambda: got(clinician, members[3]).audio_frames > heard + 10, "p-3's audio")
