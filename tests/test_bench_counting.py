"""The group media benchmark's counting receivers (bench/counting_decoder.py) against a real
aiortc: two peer connections in this process, the pre-encoded clip sent from one to the other.

The hook replaces the decoder aiortc's receiver thread gets from ``get_decoder``, a private
name: these tests fail when aiortc stops handing its assembled frames to it (or hands it
something else than the frames sent), instead of letting the benchmark decode again unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiortc.rtcrtpreceiver
import av
import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection

from bench.clip import Clip, ClipSpec, ClipTrack, encode_clip
from bench.counting_decoder import (
    CountingDecoder,
    EncodedFrame,
    counting_receivers,
    set_decoding,
)
from tests.test_lock import pinned

SPEC = ClipSpec(frames=4)
#: Frames read from the receiving track per test: the clip loops twice.
READ = 8


@pytest.fixture(scope="module")
def clip() -> Clip:
    return encode_clip(SPEC)


@pytest.fixture
def decoding_off() -> Iterator[None]:
    set_decoding(False)
    yield
    set_decoding(False)


@contextlib.asynccontextmanager
async def _call(clip: Clip) -> AsyncIterator[MediaStreamTrack]:
    """A sender of the clip connected to a receiver on loopback; yields the received track."""
    config = RTCConfiguration(iceServers=[])
    sender, receiver = RTCPeerConnection(config), RTCPeerConnection(config)
    sender.addTransceiver(ClipTrack(clip), direction="sendonly")
    tracks: list[MediaStreamTrack] = []
    receiver.on("track", tracks.append)
    try:
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        assert [t.kind for t in tracks] == ["video"]
        yield tracks[0]
    finally:
        await sender.close()
        await receiver.close()


async def _read(track: MediaStreamTrack, count: int) -> list[Any]:
    # RemoteStreamTrack.recv waits for the receiver's next frame; the timeout bounds a hook
    # that no longer hands anything on.
    async with asyncio.timeout(10):
        return [await track.recv() for _ in range(count)]


async def test_receivers_count_the_sent_frames_and_decode_none(
    clip: Clip, decoding_off: None
) -> None:
    made: list[CountingDecoder] = []
    with counting_receivers(made):
        async with _call(clip) as track:
            got = await _read(track, READ)
    pictures = [type(item).__name__ for item in got if not isinstance(item, EncodedFrame)]
    assert not pictures, f"aiortc no longer hands its frames to the counting decoder: {pictures}"
    assert len(made) == 1 and made[0].counted >= READ
    # Each counted frame is a whole frame of the clip as sent, in the clip's order.
    order = [clip.frames.index(item.data) for item in got]
    assert all(b == (a + 1) % SPEC.frames for a, b in itertools.pairwise(order))
    stamps = [item.timestamp for item in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == READ


async def test_switched_to_decoding_the_same_receivers_give_pictures(
    clip: Clip, decoding_off: None
) -> None:
    made: list[CountingDecoder] = []
    with counting_receivers(made):
        async with _call(clip) as track:
            await _read(track, 2)
            set_decoding(True)
            got = await _read(track, READ)
    pictures = [item for item in got if isinstance(item, av.VideoFrame)]
    # Frames counted before the switch may still be queued on the track.
    assert len(pictures) >= READ - 2
    assert {(p.width, p.height) for p in pictures} == {(SPEC.width, SPEC.height)}
    assert len(made) == 1


async def test_outside_the_benchmark_receivers_decode(clip: Clip) -> None:
    stock = aiortc.rtcrtpreceiver.get_decoder
    with counting_receivers():
        assert aiortc.rtcrtpreceiver.get_decoder is not stock
    assert aiortc.rtcrtpreceiver.get_decoder is stock
    async with _call(clip) as track:
        got = await _read(track, 2)
    assert all(isinstance(item, av.VideoFrame) for item in got)


def test_aiortc_is_the_release_the_hook_was_written_for() -> None:
    """The hook reaches into aiortc's receiver (STYLE.md item 10): aiortc is pinned exactly.
    Before moving the pin, run this file and `python -m bench.group_media --sizes 13`, whose
    notes compare the receivers' CPU counting and decoding."""
    assert importlib.metadata.version("aiortc") == pinned("aiortc")
