"""``python -m bench.compare [--seconds S] [--rounds N] NAME=CHECKOUT ...``: CPU per join
lifecycle of several versions of Homeroom side by side, against the floor.

Whole-server CPU time on a shared machine drifts by more than one change is worth between
two runs; served at the same time and taking turns at the fixed rate (the signaling part's
CPU rounds, :func:`bench.signaling.cpu_rounds`), versions meet the same drift. Each NAME is a
``homeroom serve`` run from CHECKOUT (a directory holding the repository at some commit,
e.g. ``git worktree add /tmp/before HEAD~3``), with this checkout's virtualenv; the floor
is this checkout's. Prints each version's median CPU per lifecycle, its ratio to the floor
and every round's figure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp

from bench import servers
from bench.params import FULL
from bench.servers import REPO, Proc, RedisProc, Served, free_port, start_floor
from bench.signaling import cpu_rounds
from bench.targets import Floor, Homeroom, Target

_SERVE = "import sys; from web.cli import main; sys.argv = ['homeroom', 'serve']; main()"


async def _start(name: str, checkout: Path, out: Path, redis_url: str) -> Served:
    port = free_port()
    env = {
        **servers.homeroom_env(out, port, redis_url, f"compare-{name}"),
        "PYTHONPATH": str(checkout),
    }
    argv = servers._pinned(servers.SERVER_CORE, [sys.executable, "-c", _SERVE])
    served = Served(Proc(name, argv, out / f"{name}.log", env, cwd=out), f"http://127.0.0.1:{port}")
    await served.ready("/readyz")
    return served


async def compare(versions: dict[str, Path], seconds: float, rounds: int, out: Path) -> None:
    redis = RedisProc(out / "redis-compare")
    served: dict[str, Served] = {}
    try:
        served["floor"] = await start_floor(out, redis.url, "compare-floor")
        for name, checkout in versions.items():
            served[name] = await _start(name, checkout, out, redis.url)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            targets: dict[str, Target] = {
                name: (Floor if name == "floor" else Homeroom)(one, http)
                for name, one in served.items()
            }
            for target in targets.values():
                await target.prepare(16)
            params = replace(FULL, rate_seconds=seconds, cpu_rounds=rounds)
            results = await cpu_rounds(targets, params)
            for target in targets.values():
                await target.close()
    finally:
        for one in served.values():
            one.proc.stop()
        redis.stop()
    floor = results["floor"].cpu_ms
    print(f"server CPU per join lifecycle at {FULL.rate:g}/s, median of {rounds} rounds")
    for name, figs in results.items():
        if figs.cpu_ms is None or floor is None:
            print(f"{name:<16} no figure (no lifecycle completed)")
            continue
        each = " ".join(f"{ms:.2f}" for ms in figs.cpu_rounds)
        print(f"{name:<16}{figs.cpu_ms:>7.2f} ms{figs.cpu_ms / floor:>7.2f}x   rounds: {each}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("versions", nargs="+", metavar="NAME=CHECKOUT")
    parser.add_argument("--seconds", type=float, default=60.0, help="at the rate, per version")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    versions: dict[str, Path] = {}
    for spec in args.versions:
        name, sep, path = spec.partition("=")
        checkout = Path(path).resolve()
        if not sep or not name or name == "floor" or not (checkout / "web" / "cli.py").exists():
            parser.error(f"{spec!r}: want NAME=CHECKOUT, a directory holding the repository")
        versions[name] = checkout
    if servers.PINNED:
        servers.pin_self_to_load_core()
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(compare(versions, args.seconds, args.rounds, out))


if __name__ == "__main__":
    main()
