"""Part ``overrides``: each override of a library's internals against the library's own path.

Homeroom replaces part of a library in a few places (docs/performance.md, "Overrides of
libraries' internals"); STYLE.md item 10 keeps one only where it saves at least 15% of the
server's CPU per join lifecycle against the library used as documented, measured in the same
run. Here one ``homeroom serve`` runs with every override, and one more per override with
only that one switched back to the library's path (``HOMEROOM_STOCK_PATHS``, read at start).
All of them take turns at the fixed rate in rounds whose order rotates (the signaling part's
:func:`bench.signaling.cpu_rounds`), and each figure is the median of its rounds.

The lifecycle is the signaling part's with a few events between admission and ``leave``:
the patient relays an offer and two ICE candidates to the clinician, mutes and unmutes
itself, then leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from bench import instructions
from bench.params import Params
from bench.report import Report, Row
from bench.servers import RedisProc, Served, start_homeroom
from bench.signaling import Figures, cpu_rounds
from bench.targets import Homeroom, Sample, Target, expect_ok, is_waiting

PART = "overrides"
#: Each override by its switch name (a value of HOMEROOM_STOCK_PATHS), with what it replaces.
OVERRIDES = {
    "websocket": "signaling/websocket.py (python-engineio's websocket loop)",
    "wire": "signaling/wire.py (python-socketio's decoding, dispatch and sends)",
}
ALL = "every override"
_SDP = "v=0\r\n" + "".join(f"a=x-line:{i:04d} {'x' * 40}\r\n" for i in range(40))


class WithEvents(Homeroom):
    """Homeroom's join lifecycle with a few events between admission and leave."""

    async def _run(self, seat: Any, due: float) -> Sample:
        loop = asyncio.get_running_loop()
        patient = self.endpoint()
        try:
            await patient.connect(seat.auth)
            joined = loop.time()
            me = patient.welcome["endpoint"] if patient.welcome else ""
            host = seat.clinician.welcome["endpoint"]
            await seat.clinician.until_view(lambda view: is_waiting(view, me))
            expect_ok(await seat.clinician.call("admit", {"attendee": seat.patient}), "admit")
            await patient.until_view(lambda view: bool(view["admitted"]))
            offer = {"to": host, "description": {"type": "offer", "sdp": _SDP}}
            expect_ok(await patient.call("signal", offer), "signal")
            for i in range(2):
                candidate = {"candidate": f"candidate:{i} 1 udp 2122260223 10.0.0.{i} 9 typ host"}
                expect_ok(await patient.call("signal", {"to": host, "candidate": candidate}), "ice")
            expect_ok(await patient.call("mute", {"attendee": seat.patient}), "mute")
            expect_ok(await patient.call("unmute", {"attendee": seat.patient}), "unmute")
            expect_ok(await patient.call("leave"), "leave")
        finally:
            await patient.close()
        return Sample(joined - due, loop.time() - due)


async def measure(p: Params, out: Path) -> dict[str, Figures]:
    """CPU per lifecycle of every variant, in rounds (see the module doc)."""
    redis = RedisProc(out / "redis-overrides")
    served: dict[str, Served] = {}
    variants = {ALL: "", **{name: name for name in OVERRIDES}}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            for name, stock in variants.items():
                env = {"HOMEROOM_STOCK_PATHS": stock}
                prefix = f"ov-{stock or 'all'}"
                served[name] = await start_homeroom(out, redis.url, prefix, env)
            targets: dict[str, Target] = {n: WithEvents(s, http) for n, s in served.items()}
            for target in targets.values():
                await target.prepare(16)
            rounds = replace(p, rate_seconds=p.override_seconds, cpu_rounds=p.override_rounds)
            results = await cpu_rounds(targets, rounds)
            for target in targets.values():
                await target.close()
    finally:
        for one in served.values():
            one.proc.stop()
        redis.stop()
    return results


async def run(p: Params, out: Path, report: Report) -> None:
    results = await measure(p, out)
    _rows(results, report)


def _rows(results: dict[str, Figures], report: Report) -> None:
    """A row per override: the override's CPU per lifecycle against the library's path (the
    floor column here), so the ratio below 1 is what the override saves."""
    ours = results[ALL]
    for name in OVERRIDES:
        stock = results[name]
        report.add(Row(PART, f"{name}: server CPU per lifecycle, stock path as floor", "ms",
                       ours.cpu_ms, stock.cpu_ms, "<= 0.85x to keep"))  # fmt: skip
    rounds = "; ".join(
        f"{name} {' '.join(f'{ms:.2f}' for ms in figs.cpu_rounds)}"
        for name, figs in results.items()
    )
    report.notes.append(f"overrides: CPU per lifecycle by round (ms): {rounds}")
    for name in OVERRIDES:
        paired = _paired_savings(ours.cpu_rounds, results[name].cpu_rounds)
        if paired:
            report.notes.append(
                f"overrides: {name} saves {100 * statistics.median(paired):.1f}% "
                f"(median of the rounds' own savings, {len(paired)} rounds)"
            )
    for name, figs in results.items():
        if figs.failures:
            report.notes.append(f"overrides failures, {name}: {dict(figs.failures)}")
            report.errors += [f"{name}: {k}" for k in figs.failures if not k.startswith("timeout")]


def _paired_savings(ours: list[float], stock: list[float]) -> list[float]:
    """1 - ours / stock, round by round (a round's figures met the same machine)."""
    return [1 - o / s for o, s in zip(ours, stock, strict=False) if s > 0]


async def count(n: int, out: Path, parallel: int) -> dict[str, float]:
    """User-space instructions per lifecycle of every variant, each server under callgrind
    (bench.instructions); ``parallel`` servers at a time (counts do not move with load)."""
    redis = RedisProc(out / "redis")
    gate = asyncio.Semaphore(parallel)

    async def one(name: str, stock: str) -> float:
        async with gate:
            env = {"HOMEROOM_STOCK_PATHS": stock}
            return await instructions.measure(name, n, out, redis.url, WithEvents, env)

    variants = {ALL: "", **{name: name for name in OVERRIDES}}
    try:
        counts = await asyncio.gather(*(one(name, stock) for name, stock in variants.items()))
    finally:
        redis.stop()
    return dict(zip(variants, counts, strict=True))


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.overrides --instructions [--n N]``: the same comparison counted in
    instructions under callgrind, which does not move with the machine's load (``python -m
    bench --only overrides`` gives the CPU figures)."""
    parser = argparse.ArgumentParser(prog="python -m bench.overrides", description=main.__doc__)
    parser.add_argument("--instructions", action="store_true", required=True)
    parser.add_argument("--n", type=int, default=100, help="lifecycles counted per server")
    parser.add_argument("--parallel", type=int, default=2, help="servers counted at once")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    # Not pinned: counts do not depend on the core, and the servers under callgrind may use both.
    with tempfile.TemporaryDirectory(prefix="bench-overrides-") as tmp:
        counts = asyncio.run(count(args.n, Path(tmp), args.parallel))
    ours = counts[ALL]
    print(f"user-space instructions per lifecycle (with events), {args.n} lifecycles each")
    print(f"{ALL:<16}{ours / 1e6:>8.2f} M")
    for name in OVERRIDES:
        stock = counts[name]
        saved = 100 * (1 - ours / stock)
        print(f"{name:<16}{stock / 1e6:>8.2f} M with the library's path: saves {saved:.1f}%")


if __name__ == "__main__":
    main()
