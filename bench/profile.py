"""Part 4: where a Homeroom server spends its CPU during the join lifecycle (py-spy).

py-spy samples the pinned `homeroom serve` process from outside (no code change, nothing
imported into the server) while the load generator runs lifecycles back to back. The raw
collapsed stacks go to ``bench/out/profile.txt`` (load them into speedscope or flamegraph.pl),
with ``--svg`` also a flame graph, and this module prints the functions with the largest
inclusive and self shares of the samples (idle time in epoll is not sampled).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path

import aiohttp

from bench.params import Params
from bench.report import Report
from bench.servers import RedisProc, start_homeroom
from bench.signaling import Figures, saturate
from bench.targets import Homeroom

_RATE = 250
#: Where the time goes, by what a developer could change: (label, frame substrings).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store transactions (RedisStore._transact)", ("RedisStore._transact",)),
    ("  EVALSHA compare-and-set (RedisStore._commit)", ("RedisStore._commit",)),
    ("  the domain change (Rooms.apply lambda)", ("Rooms.apply.<locals>.<lambda>",)),
    ("  ledger events: emit + hash chain", ("emit (rooms/ledger.py",)),
    ("store reads (RedisStore.get: hello, signal relay)", ("RedisStore.get ",)),
    ("socket.io emits (AsyncPubSubManager.emit)", ("AsyncPubSubManager.emit",)),
    ("  Redis PUBLISH of every emit", ("AsyncRedisManager._publish",)),
    ("pub/sub listener reading this node's own emits", ("AsyncPubSubManager._thread",)),
    ("disconnect 1 s after leave (_drop_soon timer)", ("_drop_soon.<locals>.later",)),
    ("room views (room_views, room_view)", ("room_views (signaling", "room_view (signaling")),
    ("link token check (verify_link_token)", ("verify_link_token",)),
    ("logging (structlog, redaction, access log)", ("structlog/", "config/logging.py",
                                                    "AccessLogger.log")),
    ("pydantic validate/dump (anywhere)", ("pydantic/",)),
    ("stdlib json (anywhere)", ("json/",)),
    ("Redis client (redis-py commands, the store's script calls)",
     ("Redis.execute_command", "PubSub.", "Script.__call__")),
    ("frames written to websockets (Outbox.write)", ("Outbox.write",)),
    ("websocket accept (aiohttp WebSocketResponse.prepare)", ("WebSocketResponse.prepare",)),
    ("socket.io packet binary check (Packet.data_is_binary)", ("Packet.data_is_binary",)),
    ("reaper", ("rooms/reaper.py",)),
)  # fmt: skip
#: Frames of these files are the interpreter's plumbing, not a place to fix anything.
_BORING = ("asyncio/", "runpy.py", "<frozen", "selectors.py")


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, target: Path, fmt: str) -> asyncio.Task[int]:
    binary = py_spy()
    assert binary is not None
    argv = [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
            "--rate", str(_RATE), "--function", "--format", fmt,
            "--output", str(target)]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )

    async def wait() -> int:
        _, err = await proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        return proc.returncode or 0

    return asyncio.create_task(wait())


async def run(p: Params, out: Path, report: Report, svg: bool = False) -> None:
    if py_spy() is None:
        report.notes.append("profile skipped: py-spy is not installed (pip install py-spy)")
        return
    redis = RedisProc(out / "redis-profile")
    try:
        served = await start_homeroom(out, redis.url, "bench-profile")
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                target = Homeroom(served, http)
                await target.prepare(p.workers)
                await saturate(target, p.workers, 1.0, Figures())  # warm-up
                raw = out / "profile.txt"
                formats = [("raw", raw)] + ([("flamegraph", out / "profile.svg")] if svg else [])
                for fmt, path in formats:
                    spy = await record(served.proc.pid, p.profile_seconds, path, fmt)
                    await saturate(target, p.workers, p.profile_seconds + 1.0, Figures())
                    await spy
                await target.close()
        finally:
            served.proc.stop()
    finally:
        redis.stop()
    print(summary(raw.read_text()), file=sys.stderr)
    report.notes.append(f"profile: {raw} (collapsed stacks; top functions printed above)")


def summary(collapsed: str, top: int = 25) -> str:
    """The heaviest functions of a py-spy raw profile: inclusive and self share of samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";") if f]
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    if not total:
        return "profile: no samples"
    lines = [f"profile: {total} samples of the server while busy"]
    lines.append("by concern (a sample counts once per line; lines overlap):")
    lines += [f"  {100 * n / total:5.1f}%  {label}" for label, n in grouped(collapsed)]
    lines.append("inclusive (time in the function and what it calls):")
    lines += _ranked(inclusive, total, top, skip_boring=True)
    lines.append("self (time in the function's own code):")
    lines += _ranked(own, total, top, skip_boring=False)
    return "\n".join(lines)


def grouped(collapsed: str) -> list[tuple[str, int]]:
    """Samples per :data:`GROUPS` entry, in that order."""
    counts = dict.fromkeys((label for label, _ in GROUPS), 0)
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        for label, patterns in GROUPS:
            if any(pattern in stack for pattern in patterns):
                counts[label] += int(count)
    return list(counts.items())


def _ranked(counts: Counter[str], total: int, top: int, *, skip_boring: bool) -> list[str]:
    ranked = [(f, n) for f, n in counts.most_common() if not (skip_boring and _boring(f))]
    return [f"  {100 * n / total:5.1f}%  {f}" for f, n in ranked[:top]]


def _boring(frame: str) -> bool:
    return any(b in frame for b in _BORING)


def _short(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py:12)``."""
    name, _, where = frame.partition(" (")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where}" if where else name
