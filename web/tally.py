"""Counters and histograms for the hot path: plain ints in dicts, exposed through
prometheus-client's collector interface at scrape time.

prometheus-client's own Counter and Histogram take a threading lock on every update; on the
event loop (one thread) that lock buys nothing, and measured on its own it was most of what
metering cost per join lifecycle. These update by one dict write.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

Labels = tuple[str, ...]


class Count(Collector):
    """A counter by label values (``name`` without ``_total``)."""

    def __init__(
        self, registry: CollectorRegistry, name: str, doc: str, labels: Sequence[str] = ()
    ) -> None:
        self.name, self.doc, self.labels = name, doc, list(labels)
        self.counts: dict[Labels, int] = {}
        registry.register(self)

    def inc(self, key: Labels, amount: int = 1) -> None:
        counts = self.counts
        counts[key] = counts.get(key, 0) + amount

    def value(self, key: Labels) -> int:
        return self.counts.get(key, 0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in list(self.counts.items()):
            family.add_metric(list(key), value)
        yield family


class Spread(Collector):
    """A histogram by label values: a count per bucket and a sum, cumulated at scrape."""

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        doc: str,
        bounds: Sequence[float],
        labels: Sequence[str] = (),
    ) -> None:
        self.name, self.doc, self.labels = name, doc, list(labels)
        self.bounds = list(bounds)
        #: Per label values: one count per bound, one past the last, then the sum.
        self.cells: dict[Labels, list[float]] = {}
        registry.register(self)

    def observe(self, key: Labels, value: float) -> None:
        cells = self.cells.get(key)
        if cells is None:
            cells = self.cells[key] = [0.0] * (len(self.bounds) + 2)
        cells[bisect_left(self.bounds, value)] += 1
        cells[-1] += value

    def count(self, key: Labels) -> int:
        cells = self.cells.get(key)
        return int(sum(cells[:-1])) if cells else 0

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for key, cells in list(self.cells.items()):
            running, buckets = 0.0, []
            for bound, n in zip([*self.bounds, float("inf")], cells[:-1], strict=True):
                running += n
                buckets.append((_bound(bound), running))
            family.add_metric(list(key), buckets, cells[-1])
        yield family


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
