"""Part 1: signaling, Homeroom against the floor, each in its own pinned server process.

Server CPU per lifecycle is measured in rounds: every server (Homeroom and the three floors)
takes its turn at the fixed rate in each round, in an order that rotates, and the figure is
the median over the rounds. A noisy neighbour on the machine then disturbs one round of each
server alike rather than the whole measurement of one of them. The latencies at that rate
pool the rounds' samples.

Then, per server (Homeroom and the plain floor), in this order: a closed loop of concurrent
lifecycles (lifecycles per second at saturation); idle endpoints connected (RSS per
endpoint); lifecycles at the fixed rate again with the idle endpoints still connected
(latency under that load).
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.params import Params
from bench.report import Report, Row, cpu_times, percentile, steal_share
from bench.servers import (
    SERVER_CORE,
    RedisProc,
    Served,
    cpu_seconds,
    start_floor,
    start_homeroom,
)
from bench.targets import BenchError, Floor, FloorPattern, Homeroom, Sample, Target

PART = "signaling"
_WARMUP = 20


@dataclass
class Figures:
    cpu_ms: float | None = None
    cpu_rounds: list[float] = field(default_factory=list)
    rate_done: int = 0
    join_p50: float | None = None
    join_p99: float | None = None
    total_p50: float | None = None
    total_p99: float | None = None
    saturation: float | None = None
    busy: str = ""
    rss_kb: float | None = None
    idle: int = 0
    idle_rate: float | None = None
    idle_join_p50: float | None = None
    idle_join_p99: float | None = None
    idle_total_p99: float | None = None
    failures: Counter[str] = field(default_factory=Counter)


async def offered(target: Target, rate: float, seconds: float, figs: Figures) -> list[Sample]:
    """Start lifecycles at ``rate`` per second, open loop, and wait for all of them."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks = []
    for i in range(max(1, round(rate * seconds))):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        tasks.append(asyncio.create_task(target.lifecycle(due)))
    return _collect(await asyncio.gather(*tasks, return_exceptions=True), figs)


async def saturate(target: Target, workers: int, seconds: float, figs: Figures) -> int:
    """Closed loop: ``workers`` lifecycles back to back until ``seconds`` have passed."""
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while loop.time() < stop:
            try:
                await target.lifecycle(loop.time())
                done += 1
            except (TimeoutError, BenchError, OSError, aiohttp.ClientError) as exc:
                _fail(figs, exc)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done


async def cpu_rounds(targets: dict[str, Target], p: Params) -> dict[str, Figures]:
    """CPU per lifecycle and latency at the fixed rate, every target in turn, in rounds."""
    figures = {name: Figures() for name in targets}
    samples: dict[str, list[Sample]] = {name: [] for name in targets}
    per_round: dict[str, list[float]] = {name: [] for name in targets}
    for target in targets.values():
        await offered(target, p.rate, _WARMUP / p.rate, Figures())
    names = list(targets)
    seconds = p.rate_seconds / p.cpu_rounds
    for turn in range(p.cpu_rounds):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            proc = targets[name].served.proc
            cpu0 = proc.cpu()
            got = await offered(targets[name], p.rate, seconds, figures[name])
            if got:
                per_round[name].append(1000 * (proc.cpu() - cpu0) / len(got))
            samples[name] += got
    for name, figs in figures.items():
        done = samples[name]
        figs.rate_done = len(done)
        figs.cpu_rounds = per_round[name]
        figs.cpu_ms = statistics.median(per_round[name]) if per_round[name] else None
        figs.join_p50, figs.join_p99 = _ms(done, 50, "join"), _ms(done, 99, "join")
        figs.total_p50, figs.total_p99 = _ms(done, 50, "total"), _ms(done, 99, "total")
    return figures


async def under_load(target: Target, p: Params, figs: Figures) -> None:
    """Saturation, then idle endpoints and the fixed rate again with them connected."""
    proc = target.served.proc
    cpu0, load0, wall0 = proc.cpu(), _self_cpu(), time.monotonic()
    core0 = cpu_times(SERVER_CORE)
    done = await saturate(target, p.workers, p.saturate_seconds, figs)
    wall = time.monotonic() - wall0
    stolen = steal_share(core0, cpu_times(SERVER_CORE))
    figs.saturation = done / wall
    figs.busy = (
        f"server core {100 * (proc.cpu() - cpu0) / wall:.0f}% busy"
        + ("" if stolen is None else f" ({100 * stolen:.0f}% of its time stolen)")
        + f", load generator {100 * (_self_cpu() - load0) / wall:.0f}% of a core"
    )

    rss0, wall0 = proc.rss(), time.monotonic()
    idle, failed = await target.connect_idle(p.idle, p.idle_per_session)
    figs.idle_rate = len(idle) / (time.monotonic() - wall0)
    for exc in failed:
        _fail(figs, exc)
    await asyncio.sleep(1.0)
    figs.idle = len(idle)
    figs.rss_kb = (proc.rss() - rss0) / 1024 / len(idle) if idle else None
    samples = await offered(target, p.rate, p.rate_seconds, figs)
    figs.idle_join_p50, figs.idle_join_p99 = _ms(samples, 50, "join"), _ms(samples, 99, "join")
    figs.idle_total_p99 = _ms(samples, 99, "total")
    await asyncio.gather(*(ep.close() for ep in idle), return_exceptions=True)


async def run(p: Params, out: Path, report: Report) -> None:
    redis = RedisProc(out / "redis-signaling")
    pool = max(16, p.workers)
    served: dict[str, Served] = {}
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            served["floor"] = await start_floor(out, redis.url, "bench-floor")
            served["Homeroom"] = await start_homeroom(out, redis.url, "bench-homeroom")
            served[_FANOUT] = await start_floor(out, redis.url, "bench-fanout", fanout="redis")
            served[_PATTERN] = await start_floor(
                out, redis.url, "bench-pattern", fanout="redis", pattern="homeroom"
            )
            targets: dict[str, Target] = {
                "floor": Floor(served["floor"], http),
                "Homeroom": Homeroom(served["Homeroom"], http),
                _FANOUT: Floor(served[_FANOUT], http),
                _PATTERN: FloorPattern(served[_PATTERN], http),
            }
            for target in targets.values():
                await target.prepare(pool)
            results = await cpu_rounds(targets, p)
            for name in (_FANOUT, _PATTERN):
                await targets[name].close()
                served.pop(name).proc.stop()
            for name in ("floor", "Homeroom"):
                await under_load(targets[name], p, results[name])
                await targets[name].close()
        report.notes.append(
            f"redis-server CPU over part 1: {cpu_seconds(redis.pid):.1f} s (on the load core)"
        )
    finally:
        for one in served.values():
            one.proc.stop()
        redis.stop()
    _rows(results, p, report)


#: The floors measured for CPU alone.
_FANOUT, _PATTERN = "floor, AsyncRedisManager", "floor, Homeroom's messages"


def _rows(results: dict[str, Figures], p: Params, report: Report) -> None:
    h, f = results["Homeroom"], results["floor"]
    fanout_cpu, pattern_cpu = results[_FANOUT].cpu_ms, results[_PATTERN].cpu_ms
    rate = f"{p.rate:g}/s"

    def add(figure: str, unit: str, hv: float | None, fv: float | None, goal: str = "") -> None:
        report.add(Row(PART, figure, unit, hv, fv, goal))

    add("server CPU per join lifecycle", "ms", h.cpu_ms, f.cpu_ms, "<= 1.3x")
    add("  same, floor with AsyncRedisManager fan-out", "ms", h.cpu_ms, fanout_cpu)
    add("  same, floor exchanging Homeroom's messages", "ms", h.cpu_ms, pattern_cpu)
    add("lifecycles per second at saturation", "1/s", h.saturation, f.saturation)
    add(f"join latency p50 at {rate}", "ms", h.join_p50, f.join_p50)
    add(f"join latency p99 at {rate}", "ms", h.join_p99, f.join_p99)
    add(f"whole lifecycle p99 at {rate}", "ms", h.total_p99, f.total_p99)
    add(f"RSS per idle endpoint ({h.idle} connected)", "KB", h.rss_kb, f.rss_kb, "<= 35 KB")
    add(f"idle endpoints connected per second ({p.idle_per_session} per session)", "1/s",
        h.idle_rate, f.idle_rate)  # fmt: skip
    add(f"join latency p50 at {rate}, {h.idle} idle", "ms", h.idle_join_p50, f.idle_join_p50)
    add(f"join latency p99 at {rate}, {h.idle} idle", "ms", h.idle_join_p99, f.idle_join_p99,
        "< 100 ms")  # fmt: skip
    add(f"whole lifecycle p99 at {rate}, {h.idle} idle", "ms", h.idle_total_p99, f.idle_total_p99)
    rounds = ", ".join(
        f"{name} {' '.join(f'{ms:.2f}' for ms in figs.cpu_rounds)}"
        for name, figs in results.items()
    )
    report.notes.append(f"CPU per lifecycle by round (ms; the figure is the median): {rounds}")
    for name, figs in (("Homeroom", h), ("floor", f)):
        report.notes.append(f"saturation, {name}: {figs.busy}")
        if figs.failures:
            report.notes.append(f"signaling failures, {name}: {dict(figs.failures)}")
            report.errors += [f"{name}: {k}" for k in figs.failures if not k.startswith("timeout")]


def _collect(results: list[Sample | BaseException], figs: Figures) -> list[Sample]:
    samples = []
    for result in results:
        if isinstance(result, Sample):
            samples.append(result)
        elif isinstance(result, Exception):
            _fail(figs, result)
        else:
            raise result
    return samples


def _fail(figs: Figures, exc: BaseException) -> None:
    if isinstance(exc, TimeoutError):
        figs.failures["timeout"] += 1
    else:
        figs.failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1


def _ms(samples: list[Sample], q: float, which: str) -> float | None:
    value = percentile([getattr(s, which) for s in samples], q)
    return None if value is None else 1000 * value


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
