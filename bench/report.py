"""Benchmark results: rows of (figure, Homeroom, floor, ratio), printed as one table."""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One figure for Homeroom and its floor, measured in the same run."""

    part: str
    figure: str
    unit: str
    homeroom: float | None
    floor: float | None = None
    goal: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.homeroom is None or self.floor is None or self.floor == 0:
            return None
        return self.homeroom / self.floor


@dataclass
class Report:
    mode: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def table(self, markdown: bool = False) -> str:
        head = ("figure", "unit", "Homeroom", "floor", "ratio", "goal")
        body = [
            (
                f"{r.part}: {r.figure}",
                r.unit,
                _num(r.homeroom),
                _num(r.floor),
                "" if r.ratio is None else f"{r.ratio:.2f}x",
                r.goal,
            )
            for r in self.rows
        ]
        if markdown:
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(cells) + " |" for cells in body]
            return "\n".join(lines)
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*cells) for cells in body]
        return "\n".join(lines)

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": self.mode,
            "machine": machine(),
            "rows": [asdict(r) | {"ratio": r.ratio} for r in self.rows],
            "notes": self.notes,
            "errors": self.errors,
        }
        (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
        (out / "results.md").write_text(self.table(markdown=True) + "\n")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = []
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_end": load,
    }


def cpu_times(core: int | None = None) -> tuple[int, int] | None:
    """(steal, total) clock ticks so far of the whole machine, or of one ``core``, from
    /proc/stat; None where there is none. Steal is time a virtual machine's CPU was runnable
    but the hypervisor ran something else: what makes a machine "noisy" in a way no process
    here can see."""
    name = "cpu" if core is None else f"cpu{core}"
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    found = [line.split() for line in lines if line.startswith(name + " ")]
    if not found or len(found[0]) < 9:
        return None
    fields = found[0]
    ticks = [int(f) for f in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return ticks[7], sum(ticks)


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time stolen between two :func:`cpu_times` readings (of one core or all)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
