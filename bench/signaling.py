"""Part 1: signaling, Homeroom against the floor, each in its own pinned server process.

Phases per server, in this order: warm-up; lifecycles offered at a fixed rate (server CPU per
lifecycle from /proc, join latency); a closed loop of concurrent lifecycles (lifecycles per
second at saturation); idle endpoints connected (RSS per endpoint); lifecycles at the fixed
rate again with the idle endpoints still connected (latency under that load).
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.params import Params
from bench.report import Report, Row, percentile
from bench.servers import RedisProc, cpu_seconds, start_floor, start_homeroom
from bench.targets import BenchError, Floor, FloorPattern, Homeroom, Sample, Target

PART = "signaling"
_WARMUP = 20


@dataclass
class Figures:
    cpu_ms: float | None = None
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


async def measure(target: Target, p: Params, pool: int) -> Figures:
    figs = Figures()
    proc = target.served.proc
    await target.prepare(pool)
    await offered(target, p.rate, _WARMUP / p.rate, figs)

    cpu0 = proc.cpu()
    samples = await offered(target, p.rate, p.rate_seconds, figs)
    cpu = proc.cpu() - cpu0
    figs.rate_done = len(samples)
    figs.cpu_ms = 1000 * cpu / len(samples) if samples else None
    figs.join_p50, figs.join_p99 = _ms(samples, 50, "join"), _ms(samples, 99, "join")
    figs.total_p50, figs.total_p99 = _ms(samples, 50, "total"), _ms(samples, 99, "total")

    cpu0, load0, wall0 = proc.cpu(), _self_cpu(), time.monotonic()
    done = await saturate(target, p.workers, p.saturate_seconds, figs)
    wall = time.monotonic() - wall0
    figs.saturation = done / wall
    figs.busy = (
        f"server core {100 * (proc.cpu() - cpu0) / wall:.0f}% busy, "
        f"load generator {100 * (_self_cpu() - load0) / wall:.0f}% of a core"
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
    await target.close()
    return figs


async def cpu_only(target: Target, p: Params, pool: int) -> float | None:
    """Server CPU per lifecycle at the offered rate, nothing else (the fan-out floor)."""
    figs = Figures()
    await target.prepare(pool)
    await offered(target, p.rate, _WARMUP / p.rate, figs)
    cpu0 = target.served.proc.cpu()
    samples = await offered(target, p.rate, p.rate_seconds, figs)
    cpu = target.served.proc.cpu() - cpu0
    await target.close()
    return 1000 * cpu / len(samples) if samples else None


async def run(p: Params, out: Path, report: Report) -> None:
    redis = RedisProc(out / "redis-signaling")
    pool = max(16, p.workers)
    results: dict[str, Figures] = {}
    fanout_cpu: float | None = None
    pattern_cpu: float | None = None
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            for name, start in (("floor", start_floor), ("Homeroom", start_homeroom)):
                served = await start(out, redis.url, f"bench-{name.lower()}")
                try:
                    cls = Floor if name == "floor" else Homeroom
                    results[name] = await measure(cls(served, http), p, pool)
                finally:
                    served.proc.stop()
            served = await start_floor(out, redis.url, "bench-fanout", fanout="redis")
            try:
                fanout_cpu = await cpu_only(Floor(served, http), p, pool)
            finally:
                served.proc.stop()
            served = await start_floor(
                out, redis.url, "bench-pattern", fanout="redis", pattern="homeroom"
            )
            try:
                pattern_cpu = await cpu_only(FloorPattern(served, http), p, pool)
            finally:
                served.proc.stop()
        report.notes.append(
            f"redis-server CPU over part 1: {cpu_seconds(redis.pid):.1f} s (on the load core)"
        )
    finally:
        redis.stop()
    _rows(results["Homeroom"], results["floor"], fanout_cpu, pattern_cpu, p, report)


def _rows(
    h: Figures,
    f: Figures,
    fanout_cpu: float | None,
    pattern_cpu: float | None,
    p: Params,
    report: Report,
) -> None:
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
