"""What a participant receives from each other endpoint: decoded frames, counted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError


@dataclass(slots=True)
class PeerStats:
    """Frames decoded from one remote endpoint. Times are ``loop.time()`` (monotonic)."""

    video_frames: int = 0
    audio_frames: int = 0
    first_video_at: float | None = None
    first_audio_at: float | None = None
    last_video_at: float | None = None
    last_audio_at: float | None = None

    def note(self, kind: str, now: float) -> None:
        if kind == "video":
            self.video_frames += 1
            if self.first_video_at is None:
                self.first_video_at = now
            self.last_video_at = now
        else:
            self.audio_frames += 1
            if self.first_audio_at is None:
                self.first_audio_at = now
            self.last_audio_at = now


async def count_frames(track: MediaStreamTrack, stats: PeerStats) -> None:
    """Pull every frame of a remote track until it ends. aiortc's receiver decodes every frame
    whether or not it is pulled; pulling keeps the track's queue from growing."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            await track.recv()
        except MediaStreamError:
            return
        stats.note(track.kind, loop.time())
