"""The endpoints' CPU with their receivers counting frames and decoding them, in the same group.

The group media part counts received frames instead of decoding them (bench/counting_decoder.py,
a private hook of aiortc). STYLE.md item 10 keeps such a hook only where a same-run measurement
shows it saves a large share of the path's CPU: here the endpoints' process (every publisher
and receiver of the group, on their own core). Once a group is up, rounds of a few seconds
alternate between counting and decoding (in the order count, decode, decode, count, ...: a
drift of the machine's load weighs on both alike) on the very same connections; each round
reads the process's CPU time, the CPU time of aiortc's video decoder threads, and the frames
every receiver got, which must be the same rate either way.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.counting_decoder import set_decoding

#: What aiortc names its receivers' video decoder threads (``RTCRtpReceiver``: kind + "-decoder").
DECODER_THREAD = "video-decoder"
#: After a switch, before the round's clock starts: frames queued under the old mode drain.
SWITCH_SETTLE = 1.0
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Round:
    decoding: bool
    seconds: float
    process_cpu: float  # CPU seconds of this process (every endpoint)
    decoder_cpu: float  # of its video decoder threads
    frames: int  # received by all endpoints together


@dataclass
class ReceiverCpu:
    """Rounds of one group, with the medians of each mode."""

    streams: int
    rounds: list[Round] = field(default_factory=list)

    def _median(self, decoding: bool, get: Callable[[Round], float]) -> float:
        return statistics.median(get(r) / r.seconds for r in self.rounds if r.decoding == decoding)

    def cpu(self, decoding: bool) -> float:
        """Median share of a core the endpoints' process used."""
        return self._median(decoding, lambda r: r.process_cpu)

    def decoder_cpu(self, decoding: bool) -> float:
        return self._median(decoding, lambda r: r.decoder_cpu)

    def fps(self, decoding: bool) -> float:
        """Median frames per second per received stream."""
        return self._median(decoding, lambda r: r.frames / self.streams)


def _thread_cpu(tid: int) -> float:
    try:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    except FileNotFoundError:  # the thread ended
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _decoder_threads() -> dict[int, float]:
    return {
        t.native_id: _thread_cpu(t.native_id)
        for t in threading.enumerate()
        if t.name == DECODER_THREAD and t.native_id is not None
    }


def _process_cpu() -> float:
    times = os.times()
    return times.user + times.system


async def compare(
    members: list[Any], frames: Callable[[], int], rounds: int, seconds: float
) -> ReceiverCpu:
    """``rounds`` rounds of each mode over ``members`` (``frames()``: every frame received so
    far, by all of them); leaves the receivers counting."""
    n = len(members)
    result = ReceiverCpu(streams=n * (n - 1))
    loop = asyncio.get_running_loop()
    order = [k % 4 in (1, 2) for k in range(2 * rounds)]
    try:
        for decoding in order:
            set_decoding(decoding)
            await asyncio.sleep(SWITCH_SETTLE)
            threads, cpu, got = _decoder_threads(), _process_cpu(), frames()
            start = loop.time()
            await asyncio.sleep(seconds)
            took = loop.time() - start
            after = _decoder_threads()
            decoder = sum(after[t] - threads[t] for t in threads.keys() & after.keys())
            result.rounds.append(
                Round(decoding, took, _process_cpu() - cpu, decoder, frames() - got)
            )
    finally:
        set_decoding(False)
    return result


def describe(result: ReceiverCpu, n: int) -> str:
    """The note of a comparison: medians, every round, and the frame rates both ways."""

    def share(x: float) -> str:
        return f"{100 * x:.1f}%"

    rounds = ", ".join(
        f"{'decode' if r.decoding else 'count'} {share(r.process_cpu / r.seconds)}"
        for r in result.rounds
    )
    return (
        f"group: {n} receivers counting / decoding (same group, {len(result.rounds)} rounds of "
        f"{result.rounds[0].seconds:.0f} s alternating): endpoints' process "
        f"{share(result.cpu(False))} / {share(result.cpu(True))} of a core "
        f"({result.cpu(False) / result.cpu(True):.2f}x), of which aiortc's video decoder "
        f"threads {share(result.decoder_cpu(False))} / {share(result.decoder_cpu(True))}; "
        f"frames per second per stream {result.fps(False):.2f} / {result.fps(True):.2f}; "
        f"rounds: {rounds}"
    )
