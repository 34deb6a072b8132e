"""A pre-encoded VP8 clip, and tracks that send it without encoding anything.

The group media benchmark puts up to 13 publishers and 156 forwarded streams on one machine;
encoding live pictures for each publisher would make it measure libvpx. So the clip is encoded
once at start (:func:`encode_clip`) and each publisher's :class:`ClipTrack` yields the encoded
frames as ``av.Packet`` objects, which aiortc's ``RTCRtpSender`` packetizes as they are (its
path for pre-encoded media, as ``MediaPlayer(decode=False)`` uses it) instead of encoding.

Every frame of the clip is a keyframe: a sender of fixed frames cannot answer a receiver's
keyframe request, so a receiver that joins late decodes the first frame it gets instead of
waiting for the clip's next keyframe. The picture is small (a thumbnail tile) and its texture
mild, so that decoding it stays a small share of the load where receivers still decode (tests,
and the benchmark's rounds that compare its counting receivers with decoding ones,
bench/counting_decoder.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from media.negotiation import LocalMedia
from media.synthetic import VIDEO_CLOCK, MediaSpec, PacedTrack


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """What the clip is: ``frames`` pictures of ``width`` x ``height``, played at ``fps``."""

    width: int = 160
    height: int = 120
    #: A thumbnail's rate: 156 streams at 15 fps are more frames than aiortc's receivers can
    #: decode on one core (each goes through a decoder thread of its own).
    fps: int = 10
    frames: int = 20
    #: Libvpx's target; with every frame a keyframe the frames come out near bitrate / fps
    #: (here under 1,200 bytes: one RTP packet each).
    bitrate: int = 100_000
    #: Noise added to the picture (0..255): more texture, bigger frames.
    texture: int = 2
    seed: int = 7


@dataclass(frozen=True)
class Clip:
    """The encoded frames of a :class:`ClipSpec`, in order."""

    spec: ClipSpec
    frames: tuple[bytes, ...]

    @property
    def bytes_per_second(self) -> float:
        return sum(len(f) for f in self.frames) * self.spec.fps / len(self.frames)


def encode_clip(spec: ClipSpec = ClipSpec()) -> Clip:
    """Encode the clip once: a gradient with a little noise and a white bar that moves."""
    if spec.frames < 1 or spec.width % 2 or spec.height % 2:
        raise ValueError("a clip needs at least one frame and even dimensions")
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = spec.width, spec.height
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = spec.bitrate
    codec.framerate = Fraction(spec.fps)
    codec.time_base = Fraction(1, spec.fps)
    codec.gop_size = 1
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    w, h = spec.width, spec.height
    rng = random.Random(spec.seed)
    noise = bytes(b % (spec.texture + 1) for b in rng.randbytes(2 * w * h))
    base = bytes(16 + (i % w) * 160 // w + (i // w) * 40 // h for i in range(w * h))
    encoded: list[bytes] = []
    for n in range(spec.frames):
        frame = av.VideoFrame(w, h, "yuv420p")
        luma, u, v = frame.planes
        shift = (n * 7 * w + n * 5) % (w * h)
        picture = bytearray(a + b for a, b in zip(base, noise[shift : shift + w * h], strict=True))
        bar = (n * 8) % w
        end = min(w, bar + w // 8)
        for row in range(h // 3, 2 * h // 3):
            picture[row * w + bar : row * w + end] = b"\xeb" * (end - bar)
        luma.update(_rows(bytes(picture), w, luma.line_size))
        u.update(b"\x80" * u.buffer_size)
        v.update(b"\x80" * v.buffer_size)
        frame.pts, frame.time_base = n, Fraction(1, spec.fps)
        frame.pict_type = av.video.frame.PictureType.I
        encoded += [bytes(p) for p in codec.encode(frame)]
    encoded += [bytes(p) for p in codec.encode(None)]
    if len(encoded) != spec.frames:
        raise RuntimeError(f"libvpx gave {len(encoded)} packets for {spec.frames} frames")
    return Clip(spec, tuple(encoded))


def _rows(picture: bytes, width: int, line_size: int) -> bytes:
    """The picture's rows padded to the plane's line size."""
    if line_size == width:
        return picture
    pad = b"\x00" * (line_size - width)
    return b"".join(picture[i : i + width] + pad for i in range(0, len(picture), width))


class ClipTrack(PacedTrack):
    """A video track that yields the clip's encoded frames in a loop, in real time.

    ``sent_bytes`` counts the frames' bytes it gave its sender (the VP8 payload; RTP, SRTP and
    UDP headers come on top)."""

    kind = "video"

    def __init__(self, clip: Clip) -> None:
        super().__init__(1 / clip.spec.fps)
        self._clip = clip
        self.sent_bytes = 0

    async def recv(self) -> av.Packet[Any]:
        elapsed = await self._tick()
        data = self._clip.frames[(self.frames - 1) % len(self._clip.frames)]
        packet = av.Packet(data)
        packet.pts = round(elapsed * VIDEO_CLOCK)
        packet.time_base = Fraction(1, VIDEO_CLOCK)
        self.sent_bytes += len(data)
        return packet


class ClipMedia(LocalMedia):
    """What a benchmark endpoint sends: the clip as video (one track per connection that asks,
    so a mesh endpoint has one per peer) and no audio (its microphone is off)."""

    def __init__(self, clip: Clip) -> None:
        super().__init__(MediaSpec(width=clip.spec.width, height=clip.spec.height))
        self.clip = clip
        self.sending["audio"] = False
        self.tracks: list[ClipTrack] = []

    def track(self, kind: str) -> PacedTrack:
        if kind != "video":
            return super().track(kind)
        track = ClipTrack(self.clip)
        track.enabled = self.sending["video"]
        self.tracks.append(track)
        return track

    @property
    def sent_bytes(self) -> int:
        """Video bytes sent so far, over every connection."""
        return sum(t.sent_bytes for t in self.tracks)
