"""``python -m bench.instructions [--n N]``: instructions per join lifecycle, under callgrind.

CPU time on a busy or virtual machine moves by 10-20% between runs; the number of
instructions a server executes for the same work does not (runs of the same code agree
within about 2%, the rest being timers and collections that fall in or out of the window).
Each server runs under valgrind's callgrind, pinned to the server core; after 20 lifecycles
of warm-up its counters are zeroed, N lifecycles run one after another, and the count is
read from a dump. Servers: Homeroom (Redis mode), the plain floor, and the floor exchanging
Homeroom's messages with AsyncRedisManager, as in ``make bench``.

Counts are user-space instructions only: the kernel's share (system calls, the loopback
network) is not in them, nor are cache misses, so they compare code paths, not seconds.
Needs ``valgrind`` (Debian's package). About a minute per server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench import servers
from bench.servers import REPO, Proc, RedisProc, Served, free_port
from bench.targets import Floor, FloorPattern, Homeroom, Target

_HOMEROOM = "import sys; from web.cli import main; sys.argv = ['homeroom', 'serve']; main()"


def _callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.%p"]


async def _ready(served: Served, path: str) -> None:
    """Like ``Served.ready``, with the patience a server under valgrind needs."""
    deadline = time.monotonic() + 1200
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            served.proc.check()
            try:
                async with http.get(served.url + path) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    raise RuntimeError(f"{served.proc.name} did not start under valgrind")


async def _start(
    name: str, out: Path, redis_url: str, extra_env: dict[str, str] | None = None
) -> Served:
    port = free_port()
    if extra_env is not None or name == "Homeroom":
        prefix = "instr-" + "".join(c if c.isalnum() else "-" for c in name)[:24]
        env = {
            **servers.homeroom_env(out, port, redis_url, prefix),
            "PYTHONPATH": str(REPO),
            **(extra_env or {}),
        }
        argv = [*_callgrind(out), sys.executable, "-c", _HOMEROOM]
        path = "/readyz"
    else:
        pattern = "homeroom" if name == PATTERN else "join"
        fanout = "redis" if name == PATTERN else "local"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        argv = [
            *_callgrind(out),
            *servers.floor_argv(port, redis_url, f"instr-{pattern}", fanout, pattern),
        ]
        path = "/healthz"
    # Counts do not depend on the core: servers counted side by side may share both.
    argv = servers._pinned(servers.SERVER_CORE, argv) if extra_env is None else argv
    proc = Proc(name, argv, out / f"{name}.log", env, out)
    served = Served(proc, f"http://127.0.0.1:{port}")
    await _ready(served, path)
    return served


async def _control(option: str, pid: int) -> None:
    """``callgrind_control -z`` (zero the counters) or ``-d`` (dump them)."""
    proc = await asyncio.create_subprocess_exec(
        "callgrind_control", option, str(pid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if await proc.wait() != 0:
        raise RuntimeError(f"callgrind_control {option} failed")


def _dumps(pid: int, out: Path) -> set[Path]:
    return set(out.glob(f"callgrind.{pid}.*"))


def _total(dump: Path) -> int | None:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return None


async def _instructions(pid: int, out: Path) -> int:
    """Dump the counters of a running callgrind and read the total back."""
    before = _dumps(pid, out)
    await _control("-d", pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for dump in _dumps(pid, out) - before:
            total = _total(dump)
            if total is not None:
                return total
        await asyncio.sleep(0.2)
    raise RuntimeError("callgrind wrote no dump")


async def measure(
    name: str,
    n: int,
    out: Path,
    redis_url: str,
    kind: type[Target] | None = None,
    extra_env: dict[str, str] | None = None,
) -> float:
    """Instructions per lifecycle of one server: ``name`` is Homeroom or a floor, or, with
    ``extra_env``, a Homeroom run with those variables, driven through ``kind``'s lifecycle."""
    served = await _start(name, out, redis_url, extra_env)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            kind = kind or {"Homeroom": Homeroom, PATTERN: FloorPattern}.get(name, Floor)
            target: Target = kind(served, http)
            await target.prepare(4)
            for _ in range(20):
                await target.lifecycle(0.0)
            await asyncio.sleep(0.5)
            pid = served.proc.pid
            await _control("-z", pid)
            for _ in range(n):
                await target.lifecycle(0.0)
            await asyncio.sleep(0.5)
            count = await _instructions(pid, out)
            await target.close()
        return count / n
    finally:
        served.proc.stop()


PATTERN = "floor, Homeroom's messages"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="lifecycles counted per server")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    if servers.PINNED:
        servers.pin_self_to_load_core()
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        out = Path(tmp)
        redis = RedisProc(out / "redis")
        try:
            counts = {
                name: asyncio.run(measure(name, args.n, out, redis.url))
                for name in ("floor", "Homeroom", PATTERN)
            }
        finally:
            redis.stop()
    floor = counts["floor"]
    print(f"user-space instructions per join lifecycle, {args.n} lifecycles each")
    for name, count in counts.items():
        print(f"{name:<28}{count / 1e6:>8.2f} M{count / floor:>8.2f}x the floor")


if __name__ == "__main__":
    main()
