"""Synthetic camera and microphone: a moving bar and a sine tone, paced in real time.

aiortc encodes whatever a track's ``recv()`` returns, so these tracks give a headless
participant real VP8/Opus media without devices. Frames are built from bytes (no numpy,
which PyAV does not require) and kept small: two cores run whole calls in the tests.
"""

from __future__ import annotations

import asyncio
import math
import struct
from dataclasses import dataclass
from fractions import Fraction

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

AUDIO_RATE = 48_000
#: 20 ms of audio per frame, as WebRTC endpoints packetize Opus.
AUDIO_SAMPLES = 960
VIDEO_CLOCK = 90_000


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """What a synthetic participant sends."""

    width: int = 320
    height: int = 240
    fps: int = 15
    #: 400 Hz fits a whole number of periods in 20 ms, so one frame's samples repeat forever.
    tone_hz: int = 400


class PacedTrack(MediaStreamTrack):
    """A track that yields one frame per ``interval`` of wall-clock time.

    Disabling it (``enabled = False``) makes ``recv()`` wait, so the sender sends nothing at
    all, as ``replaceTrack(null)`` does in a browser, without a new track (and timestamps that
    jump backwards) when it is enabled again.
    """

    def __init__(self, interval: float) -> None:
        super().__init__()
        self._interval = interval
        self._due: float | None = None
        self._started: float | None = None
        self._live = asyncio.Event()
        self._live.set()
        self.frames = 0

    @property
    def enabled(self) -> bool:
        return self._live.is_set()

    @enabled.setter
    def enabled(self, value: bool) -> None:
        if value:
            self._live.set()
        else:
            self._live.clear()

    def stop(self) -> None:
        super().stop()
        self._live.set()  # wake a waiting recv() so that it can end

    async def _tick(self) -> float:
        """Wait for the next frame's turn; return seconds since the first frame."""
        if not self._live.is_set():
            await self._live.wait()
            self._due = None  # resume now, not with a burst of overdue frames
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._started is None:
            self._started = now
        if self._due is None:
            self._due = now
        if self._due > now:
            await asyncio.sleep(self._due - now)
        self._due += self._interval
        self.frames += 1
        return loop.time() - self._started


class ToneTrack(PacedTrack):
    """A sine tone, mono s16 at 48 kHz, in 20 ms frames."""

    kind = "audio"

    def __init__(self, spec: MediaSpec) -> None:
        super().__init__(AUDIO_SAMPLES / AUDIO_RATE)
        amplitude = 0.2 * 32767
        samples = (
            round(amplitude * math.sin(2 * math.pi * spec.tone_hz * i / AUDIO_RATE))
            for i in range(AUDIO_SAMPLES)
        )
        self._pcm = struct.pack(f"<{AUDIO_SAMPLES}h", *samples)
        self._sent = 0

    async def recv(self) -> av.AudioFrame:
        await self._tick()
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        frame.planes[0].update(self._pcm)
        frame.sample_rate = AUDIO_RATE
        # Audio timestamps count samples sent, so they stay contiguous across a pause.
        frame.pts = self._sent
        frame.time_base = Fraction(1, AUDIO_RATE)
        self._sent += AUDIO_SAMPLES
        return frame


class PatternTrack(PacedTrack):
    """A white bar sweeping across a grey picture, yuv420p."""

    kind = "video"

    def __init__(self, spec: MediaSpec) -> None:
        super().__init__(1 / spec.fps)
        self._width, self._height = spec.width, spec.height
        self._chroma: bytes | None = None

    async def recv(self) -> av.VideoFrame:
        elapsed = await self._tick()
        frame = av.VideoFrame(self._width, self._height, "yuv420p")
        luma, u, v = frame.planes
        bar = (self.frames * 8) % self._width
        row = bytearray(b"\x60" * luma.line_size)
        row[bar : bar + 16] = b"\xeb" * len(row[bar : bar + 16])
        luma.update(bytes(row) * self._height)
        if self._chroma is None or len(self._chroma) != u.buffer_size:
            self._chroma = b"\x80" * u.buffer_size  # neutral colour
        u.update(self._chroma)
        v.update(self._chroma)
        frame.pts = round(elapsed * VIDEO_CLOCK)
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        return frame
