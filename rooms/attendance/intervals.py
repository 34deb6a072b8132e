"""Half-open time intervals and the arithmetic attendance needs: merge, clip, total.

Instants are timezone-aware UTC datetimes; durations are ``timedelta`` so sums stay exact to the
microsecond (no float minutes anywhere until display).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

ZERO = timedelta(0)


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """``[start, end)``: present from ``start`` up to, not including, ``end``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"interval ends before it starts: {self.start} > {self.end}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """The union of ``intervals`` as sorted, disjoint, non-empty intervals.

    Touching intervals (one ends when the next starts) become one: a person who switches devices
    at the same instant was present without a gap. Empty intervals vanish.
    """
    ordered = sorted(i for i in intervals if i.end > i.start)
    if not ordered:
        return ()
    out: list[Interval] = []
    start, end = ordered[0].start, ordered[0].end
    for iv in ordered[1:]:
        if iv.start <= end:
            end = max(end, iv.end)
        else:
            out.append(Interval(start, end))
            start, end = iv.start, iv.end
    out.append(Interval(start, end))
    return tuple(out)


def clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> tuple[Interval, ...]:
    """The parts of ``intervals`` inside ``[start, end)``, empty parts dropped, order kept."""
    out: list[Interval] = []
    for iv in intervals:
        lo, hi = max(iv.start, start), min(iv.end, end)
        if hi > lo:
            out.append(Interval(lo, hi))
    return tuple(out)


def total(intervals: Iterable[Interval]) -> timedelta:
    """Sum of durations as given. Overlaps count twice: :func:`merge` first to count them once."""
    return sum((iv.duration for iv in intervals), ZERO)


def union_total(intervals: Iterable[Interval]) -> timedelta:
    """Time covered by at least one of ``intervals``."""
    return total(merge(intervals))


def whole_minutes(duration: timedelta) -> int:
    """Display minutes: rounded down, so 15:59 shows as 15 (thresholds use exact time)."""
    return duration // timedelta(minutes=1)
