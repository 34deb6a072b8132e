"""The Janus forwarder with real aiortc endpoints and a real Janus in a namespace, without
Homeroom's signaling: publish, one multistream subscription each, moderate, kick, rooms."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from media.forwarded import ForwardedMedia
from media.forwarder import EndpointCallbacks, SubscriptionOffer
from media.janus.client import JanusConnection
from media.janus.forwarder import JanusForwarder
from media.janus.naming import RoomNames
from media.janus.process import JanusProcess
from media.janus.videoroom import ListRooms
from media.negotiation import LocalMedia, rtc_configuration
from media.synthetic import MediaSpec

SPEC = MediaSpec(width=160, height=120, fps=10)
DEADLINE = 60.0


async def until(
    check: Callable[[], bool],
    what: str,
    deadline: float = DEADLINE,
    detail: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after a generous deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not check():
        if loop.time() > end:
            pytest.fail(f"not within {deadline} s: {what} {detail()}")
        await asyncio.sleep(0.05)


@dataclass
class Member:
    endpoint: str
    media: ForwardedMedia
    closed: list[str]


@pytest.fixture
async def forwarder(janus: JanusProcess) -> AsyncIterator[JanusForwarder]:
    fwd = JanusForwarder(janus.config.url, janus.config.api_secret, secrets.token_bytes(32))
    await fwd.start(set())
    yield fwd
    await fwd.close()


async def _member(fwd: JanusForwarder, session: str, endpoint: str) -> Member:
    closed: list[str] = []
    tasks: set[asyncio.Future[None]] = set()
    media = ForwardedMedia(
        rtc_configuration([]),
        LocalMedia(SPEC),
        send_offer=lambda sdp: fwd.publish(session, endpoint, sdp),
        send_answer=lambda sdp: fwd.answer(session, endpoint, sdp),
        resubscribe=lambda: fwd.resubscribe(session, endpoint),
    )

    async def on_offer(offer: SubscriptionOffer) -> None:
        # Handed over, as a socket would: the endpoint's answer (or its request for a fresh
        # subscription) comes back as a separate call, never inside the forwarder's relay.
        streams = [{"mid": s.mid, "endpoint": s.endpoint} for s in offer.streams]
        task = asyncio.ensure_future(media.on_offer(offer.sdp, streams))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def on_closed(reason: str) -> None:
        closed.append(reason)

    await fwd.join(session, endpoint, EndpointCallbacks(offer=on_offer, closed=on_closed))
    await media.publish()
    return Member(endpoint, media, closed)


def _report(members: list[Member]) -> str:
    return "; ".join(
        f"{m.endpoint}: "
        + ", ".join(f"{k}={v.video_frames}v/{v.audio_frames}a" for k, v in m.media.received.items())
        for m in members
    )


def _everyone_hears_everyone(members: list[Member]) -> bool:
    for me in members:
        for other in members:
            if other is me:
                continue
            got = me.media.received.get(other.endpoint)
            if got is None or got.video_frames < 3 or got.audio_frames < 3:
                return False
    return True


async def test_three_endpoints_each_upload_one_feed_and_receive_all(
    forwarder: JanusForwarder,
) -> None:
    session = "s-" + secrets.token_hex(4)
    await forwarder.open_room(session, publishers=14)
    members = [await _member(forwarder, session, f"e-member{i}") for i in range(3)]
    try:
        await until(lambda: _everyone_hears_everyone(members), "every endpoint hears every other")
        for member in members:
            # One receiving connection carrying both others; one upload of video.
            assert set(member.media.received) == {m.endpoint for m in members} - {member.endpoint}
            assert await member.media.outbound_video_streams() == 1
        # A latecomer is added to the existing subscriptions, without new connections.
        subscribers = [m.media.subscriber for m in members]
        late = await _member(forwarder, session, "e-member3")
        members.append(late)
        await until(
            lambda: _everyone_hears_everyone(members),
            "the latecomer is in everyone's",
            detail=lambda: _report(members),
        )
        assert [m.media.subscriber for m in members[:3]] == subscribers
    finally:
        for member in members:
            await member.media.close()
        await forwarder.close_room(session)


async def test_moderate_stops_audio_even_if_the_client_keeps_sending(
    forwarder: JanusForwarder,
) -> None:
    session = "s-" + secrets.token_hex(4)
    await forwarder.open_room(session, publishers=14)
    loud, ear = [await _member(forwarder, session, f"e-mod{i}") for i in range(2)]
    loop = asyncio.get_running_loop()
    try:
        heard = lambda: ear.media.received.get(loud.endpoint)  # noqa: E731
        await until(lambda: (heard() or _empty()).audio_frames > 5, "audio flows")
        await forwarder.moderate(session, loud.endpoint, True)
        muted_at = loop.time()
        # The client keeps sending audio (it never obeys); nothing more arrives.
        quiet = await _silence(lambda: heard().audio_frames, "audio", loop)  # type: ignore[union-attr]
        stats = heard()
        assert stats is not None and stats.last_audio_at is not None
        assert stats.last_audio_at - muted_at <= 0.5
        assert quiet
        # Renegotiating the feed (a new connection, a new publish) does not undo the mute.
        await loud.media.publish()
        assert await _silence(lambda: heard().audio_frames, "audio", loop)  # type: ignore[union-attr]
        video = heard().video_frames  # type: ignore[union-attr]
        await until(lambda: heard().video_frames > video + 5, "video keeps flowing")  # type: ignore[union-attr]
        await forwarder.moderate(session, loud.endpoint, False)
        audio = heard().audio_frames  # type: ignore[union-attr]
        await until(lambda: heard().audio_frames > audio + 5, "unmute restores audio")  # type: ignore[union-attr]
    finally:
        await loud.media.close()
        await ear.media.close()
        await forwarder.close_room(session)


async def test_kick_stops_media_both_ways(forwarder: JanusForwarder) -> None:
    session = "s-" + secrets.token_hex(4)
    await forwarder.open_room(session, publishers=14)
    members = [await _member(forwarder, session, f"e-kick{i}") for i in range(3)]
    gone, stay = members[0], members[1:]
    loop = asyncio.get_running_loop()
    try:
        await until(lambda: _everyone_hears_everyone(members), "everyone hears everyone")
        await forwarder.kick(session, gone.endpoint)
        kicked_at = loop.time()
        for other in stay:
            frames = lambda o=other: o.media.received[gone.endpoint].video_frames  # noqa: E731
            assert await _silence(frames, "video from the removed", loop)
            assert other.media.received[gone.endpoint].last_video_at - kicked_at <= 1.0  # type: ignore[operator]
        for other in stay:
            frames = lambda o=other: gone.media.received[o.endpoint].video_frames  # noqa: E731
            assert await _silence(frames, "video to the removed", loop)
            assert gone.media.received[other.endpoint].last_video_at - kicked_at <= 1.0  # type: ignore[operator]
        # The others still hear each other.
        await until(lambda: _everyone_hears_everyone(stay), "the rest still hear each other")
    finally:
        for member in members:
            await member.media.close()
        await forwarder.close_room(session)


async def test_rooms_of_unknown_sessions_are_collected(janus: JanusProcess) -> None:
    key = secrets.token_bytes(32)
    first = JanusForwarder(janus.config.url, janus.config.api_secret, key)
    await first.start(set())
    await first.open_room("s-kept", publishers=4)
    await first.open_room("s-stale", publishers=4)
    # A restart of Homeroom that knows only s-kept as live.
    second = JanusForwarder(janus.config.url, janus.config.api_secret, key)
    await second.start({"s-kept"})
    names = RoomNames(key)
    rooms = await _room_ids(janus)
    assert names.room("s-kept") in rooms
    assert names.room("s-stale") not in rooms
    await second.close_room("s-kept")
    assert names.room("s-kept") not in await _room_ids(janus)
    await first.close()
    await second.close()


async def _room_ids(janus: JanusProcess) -> set[int]:
    connection = JanusConnection(janus.config.url, janus.config.api_secret)
    await connection.connect()
    try:
        session = await connection.create_session()
        handle = await session.attach()
        listed = await handle.send(ListRooms(admin_key=janus.config.api_secret).body())
        return {int(room["room"]) for room in listed.plugin_data["list"]}
    finally:
        await connection.close()


def _empty() -> object:
    from media.reception import PeerStats

    return PeerStats()


async def _silence(
    count: Callable[[], int], what: str, loop: asyncio.AbstractEventLoop, window: float = 2.0
) -> bool:
    """Wait until ``count`` stays the same for ``window`` seconds (generous deadline)."""
    end = loop.time() + DEADLINE
    last, since = count(), loop.time()
    while loop.time() < end:
        await asyncio.sleep(0.1)
        now = count()
        if now != last:
            last, since = now, loop.time()
        elif loop.time() - since >= window:
            return True
    pytest.fail(f"{what} never stopped")


async def test_newcomer_after_a_departure_is_received(forwarder: JanusForwarder) -> None:
    # Janus reuses the m-lines of a feed that left for the next one that comes; the aiortc
    # endpoint asks for a fresh subscription then, and receives the newcomer.
    session = "s-" + secrets.token_hex(4)
    await forwarder.open_room(session, publishers=14)
    members = [await _member(forwarder, session, f"e-turn{i}") for i in range(3)]
    try:
        await until(lambda: _everyone_hears_everyone(members), "everyone hears everyone")
        gone = members.pop()
        await gone.media.close()
        await forwarder.leave(session, gone.endpoint)
        members.append(await _member(forwarder, session, "e-turn3"))
        await until(
            lambda: _everyone_hears_everyone(members),
            "the newcomer is received by those who stayed",
            detail=lambda: _report(members),
        )
    finally:
        for member in members:
            await member.media.close()
        await forwarder.close_room(session)
