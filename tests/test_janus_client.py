"""The Janus client against a real Janus in a namespace: sessions, handles, transactions,
plugin requests, errors mapped to Homeroom's codes, and a lost connection."""

from __future__ import annotations

import secrets

import pytest

from media.janus.client import JanusConnection
from media.janus.errors import FORWARDER_REJECTED, FORWARDER_UNAVAILABLE, JanusError
from media.janus.process import JanusProcess
from media.janus.videoroom import CreateRoom, DestroyRoom, ListParticipants, ListRooms


async def _connect(janus: JanusProcess, secret: str | None = None) -> JanusConnection:
    connection = JanusConnection(janus.config.url, secret or janus.config.api_secret)
    await connection.connect()
    return connection


async def test_room_created_listed_and_destroyed(janus: JanusProcess) -> None:
    connection = await _connect(janus)
    try:
        info = await connection.info()
        assert info.janus == "server_info"
        session = await connection.create_session()
        handle = await session.attach()
        room = secrets.randbelow(2**52) + 1
        secret = secrets.token_urlsafe(16)
        created = await handle.send(
            CreateRoom(
                room=room,
                description="hr-test",
                secret=secret,
                pin="p1n",
                publishers=3,
                bitrate=256_000,
                admin_key=janus.config.api_secret,
            ).body()
        )
        assert created.plugin_data["videoroom"] == "created"
        admin = ListRooms(admin_key=janus.config.api_secret).body()
        assert room in {entry["room"] for entry in (await handle.send(admin)).plugin_data["list"]}
        # Without the admin key a private room is not listed.
        public = await handle.send(ListRooms().body())
        assert room not in {entry["room"] for entry in public.plugin_data["list"]}
        listed = await handle.send(ListParticipants(room=room).body())
        assert listed.plugin_data["participants"] == []
        with pytest.raises(JanusError) as wrong:
            await handle.send(DestroyRoom(room=room, secret="wrong").body())
        assert wrong.value.code == FORWARDER_REJECTED and wrong.value.plugin
        await handle.send(DestroyRoom(room=room, secret=secret).body())
        rooms = await handle.send(admin)
        assert room not in {entry["room"] for entry in rooms.plugin_data["list"]}
        with pytest.raises(JanusError) as gone:
            await handle.send(ListParticipants(room=room).body())
        assert gone.value.status == 426 and gone.value.code == FORWARDER_UNAVAILABLE
        await handle.detach()
        await session.destroy()
    finally:
        await connection.close()


async def test_wrong_api_secret_is_refused(janus: JanusProcess) -> None:
    connection = await _connect(janus, secret="not-the-secret")
    try:
        with pytest.raises(JanusError) as refused:
            await connection.create_session()
        assert refused.value.status == 403
        assert refused.value.code == FORWARDER_REJECTED
    finally:
        await connection.close()


async def test_janus_death_fails_requests_as_unavailable(janus: JanusProcess) -> None:
    connection = await _connect(janus)
    try:
        session = await connection.create_session()
        janus.kill()
        await connection.wait_closed()
        assert not connection.connected
        with pytest.raises(JanusError) as lost:
            await session.attach()
        assert lost.value.code == FORWARDER_UNAVAILABLE
    finally:
        await connection.close()


async def test_unreachable_janus_is_unavailable() -> None:
    connection = JanusConnection("ws://127.0.0.1:9/janus", "secret")
    with pytest.raises(JanusError) as failed:
        await connection.connect(deadline=10)
    assert failed.value.code == FORWARDER_UNAVAILABLE
