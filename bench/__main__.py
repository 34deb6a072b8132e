"""``python -m bench [--quick] [--only PART ...]``: run the benchmarks, print one table.

Exit status: 0 when every part ran (however slow the machine), 1 when a part broke (a server
that would not start, an answer no correct server gives), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import structlog

from bench import attendance, group_media, media_start, overrides, profile, signaling, views
from bench.params import FULL, QUICK, Params
from bench.report import Report, cpu_times, machine, steal_share
from bench.servers import PINNED, pin_self_to_load_core

Part = Callable[[Params, Path, Report], Awaitable[None]]
OUT = Path(__file__).resolve().parent / "out"


def parts() -> dict[str, Part]:
    return {
        "signaling": signaling.run,
        "overrides": overrides.run,
        "media": media_start.run,
        "group": group_media.run,
        "attendance": attendance.run,
        "views": views.run,
        "profile": profile.run,
    }


def main(argv: list[str] | None = None) -> int:
    known = parts()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the bench")
    parser.add_argument("--only", action="append", choices=list(known), help="run only PART")
    parser.add_argument("--out", type=Path, default=OUT, help="results and logs (bench/out)")
    parser.add_argument("--idle", type=int, help="idle endpoints for the RSS figure")
    parser.add_argument("--events", type=int, help="ledger events of the generated month")
    parser.add_argument("--runs", type=int, help="calls per kind for media start")
    args = parser.parse_args(argv)
    p = QUICK if args.quick else FULL
    overrides = {"idle": args.idle, "events": args.events, "media_runs": args.runs}
    p = replace(p, **{k: v for k, v in overrides.items() if v is not None})
    _raise_fd_limit()
    pin_self_to_load_core()
    # The media participants log every state change at debug level; the table is the output.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    report = Report(mode="quick" if args.quick else "full")
    if not PINNED:
        report.notes.append("one core: server and load generator share it (not pinned)")
    for name in args.only or list(known):
        print(f"== {name}", file=sys.stderr, flush=True)
        before = cpu_times()
        try:
            asyncio.run(known[name](p, args.out, report))
        except Exception as exc:
            traceback.print_exc()
            report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        stolen = steal_share(before, cpu_times())
        if stolen is not None:
            report.notes.append(
                f"{name}: {100 * stolen:.1f}% of the machine's CPU time was stolen by the "
                "hypervisor during this part"
            )
    report.save(args.out)
    info = machine()
    print(f"\nHomeroom benchmarks ({report.mode}), {info['cores']} cores, {info['cpu']}")
    print(report.table())
    for note in report.notes:
        print(f"note: {note}")
    for error in report.errors:
        print(f"ERROR: {error}")
    return 1 if report.errors else 0


def _raise_fd_limit() -> None:
    """Thousands of idle endpoints need as many descriptors, in the servers too (inherited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384 if hard == resource.RLIM_INFINITY else min(16384, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


if __name__ == "__main__":
    sys.exit(main())
