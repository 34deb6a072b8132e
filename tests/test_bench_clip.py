"""The group media benchmark's pre-encoded clip: frames that decode alone, sent as they are."""

from __future__ import annotations

import av
import pytest
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from bench.clip import Clip, ClipMedia, ClipSpec, ClipTrack, encode_clip

SPEC = ClipSpec(frames=4)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return encode_clip(SPEC)


def test_every_frame_of_the_clip_decodes_on_its_own(clip: Clip) -> None:
    assert len(clip.frames) == SPEC.frames
    for data in clip.frames:
        decoder = av.CodecContext.create("libvpx", "r")  # a receiver that joins at this frame
        pictures = decoder.decode(av.Packet(data))
        assert [(p.width, p.height) for p in pictures] == [(SPEC.width, SPEC.height)]


def test_a_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="even dimensions"):
        encode_clip(ClipSpec(width=161))


async def test_the_track_loops_the_encoded_frames_in_time(clip: Clip) -> None:
    track = ClipTrack(clip)
    packets = [await track.recv() for _ in range(SPEC.frames + 1)]
    frames = clip.frames
    assert [bytes(p) for p in packets] == [*frames, frames[0]]
    stamps = [p.pts for p in packets]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert track.sent_bytes == sum(len(f) for f in [*frames, frames[0]])
    track.stop()


async def test_aiortc_packs_the_frames_without_encoding(clip: Clip) -> None:
    # RTCRtpSender hands a Packet (not a Frame) to its encoder's pack(): the bytes go out as
    # they are, split into RTP payloads.
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    encoder = get_encoder(codec)
    track = ClipTrack(clip)
    packet = await track.recv()
    payloads, timestamp = encoder.pack(packet)
    assert timestamp == packet.pts
    # Each payload is a VP8 payload descriptor (4 bytes with a 15-bit picture id) and data.
    assert b"".join(p[4:] for p in payloads) == bytes(packet)
    track.stop()


def test_the_media_sends_the_clip_and_no_audio(clip: Clip) -> None:
    media = ClipMedia(clip)
    video, audio = media.track("video"), media.track("audio")
    assert isinstance(video, ClipTrack) and media.tracks == [video]
    assert video.enabled and not audio.enabled
    assert media.sent_bytes == 0
