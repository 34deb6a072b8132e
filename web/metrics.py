"""Prometheus metrics of one Homeroom node (prometheus-client), named ``homeroom_*``.

Labels carry kinds, states, event names, error codes and store operations: small fixed sets,
never an id of a person, a session or an endpoint (cardinality, and 42 CFR Part 2). Counting
is on the hot path, so it only increments: label children are looked up once and kept.
What costs a store read (sessions by kind and state, the waiting room) is computed when
Prometheus scrapes (:meth:`Metrics.refresh`). docs/operations.md lists every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from rooms.errors import SessionNotFound
from rooms.kinds import Role, SessionKind
from rooms.ledger import EventKind, LedgerEvent
from rooms.service import Rooms
from rooms.session import SessionStatus
from rooms.state import SeatStatus, SessionState
from web.tally import Count, Spread

#: Sessions counted at a scrape: those scheduled to start within this much of now.
SESSION_WINDOW = timedelta(hours=24)
#: Seconds patients wait to be admitted: from seconds to an hour.
ADMIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
#: Seconds a store call takes: a Redis round trip is ~0.2 ms, the call's deadline 5 s.
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


@dataclass(frozen=True, slots=True)
class ForwarderSample:
    """One forwarding unit (a Janus instance) as its owner in media/ reports it.

    ``instance`` is the configured name of the instance, never a room or person id."""

    instance: str
    rooms: int
    publishers: int
    healthy: bool


ForwarderSource = Callable[[], Iterable[ForwarderSample]]


class Metrics:
    """A node's metrics in a registry of its own (one per application, so tests may run
    several in one process)."""

    def __init__(self) -> None:
        reg = self.registry = CollectorRegistry()
        # Read at scrape time only. (No GCCollector: it hooks every garbage collection of
        # the process, once per registry.)
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        # Updated on the hot path: lock-free tallies (web/tally.py).
        self.events = Count(
            reg, "homeroom_signaling_events", "Client events answered, by event and result "
            "(ok or the error code).", ["event", "result"],
        )  # fmt: skip
        self.connects = Count(
            reg, "homeroom_connects", "Signaling connects answered: join, resume, or the "
            "error code of a refusal.", ["result"],
        )  # fmt: skip
        self.ledger = Count(
            reg, "homeroom_ledger_appends", "Attendance ledger events appended, by kind.",
            ["kind"],
        )  # fmt: skip
        self.store_seconds = Spread(
            reg, "homeroom_store_seconds", "Store calls, by operation (failed calls "
            "included).", STORE_BUCKETS, ["op"],
        )  # fmt: skip
        self.store_failures = Count(
            reg, "homeroom_store_failures", "Store calls that failed (store_unavailable, "
            "busy).", ["op", "code"],
        )  # fmt: skip
        self.admit_wait = Histogram(
            "homeroom_admit_wait_seconds", "From joining the waiting room to admission "
            "(patients and guests).", buckets=ADMIT_BUCKETS, registry=reg,
        )  # fmt: skip
        self.checkin_wait = Histogram(
            "homeroom_checkin_queue_wait_seconds", "From a check-in request to its pick-up "
            "by a clinician.", buckets=ADMIT_BUCKETS, registry=reg,
        )  # fmt: skip
        self.sessions = Gauge(
            "homeroom_sessions", "Sessions scheduled within a day of now, by kind and status "
            "(the deployment's, the same on every node: aggregate with max).",
            ["kind", "status"], registry=reg,
        )  # fmt: skip
        self.waiting = Gauge(
            "homeroom_waiting_room_attendees", "Attendees waiting for admission in open and "
            "live sessions (the deployment's: aggregate with max).", registry=reg,
        )  # fmt: skip
        self._forwarders: list[ForwarderSource] = []
        reg.register(_Forwarders(self._forwarders))
        for kind in SessionKind:
            for status in SessionStatus:
                self.sessions.labels(str(kind), str(status)).set(0)

    # --- registration points for other parts -------------------------------------------

    def watch_endpoints(self, count: Callable[[], int]) -> None:
        """``count()``: endpoints connected to this node now (read at each scrape)."""
        Gauge(
            "homeroom_endpoints_connected", "Endpoints connected to this node.",
            registry=self.registry,
        ).set_function(count)  # fmt: skip

    def watch_draining(self, draining: Callable[[], bool]) -> None:
        Gauge(
            "homeroom_draining", "1 while this node is shutting down.", registry=self.registry
        ).set_function(lambda: float(draining()))

    def watch_forwarder(self, source: ForwarderSource) -> None:
        """Report forwarding units: ``source()`` is called at each scrape (media/ owns it)."""
        self._forwarders.append(source)

    def checkin_picked_up(self, waited_seconds: float) -> None:
        """An on-demand check-in request was picked up after ``waited_seconds`` in the queue."""
        self.checkin_wait.observe(waited_seconds)

    # --- the hot path --------------------------------------------------------------------

    def event(self, name: str, error: str | None) -> None:
        self.events.inc((name, error or "ok"))

    def connect(self, result: str) -> None:
        self.connects.inc((result,))

    def store_call(self, op: str, seconds: float, failure: str | None = None) -> None:
        self.store_seconds.observe((op,), seconds)
        if failure is not None:
            self.store_failures.inc((op, failure))

    def appended(self, state: SessionState, events: list[LedgerEvent]) -> None:
        """Count a change's ledger events; an admission also observes how long it waited."""
        inc = self.ledger.inc
        for event in events:
            kind = event.kind
            inc((kind,))
            if kind is EventKind.ADMITTED:
                self._admitted(state, event)

    def _admitted(self, state: SessionState, event: LedgerEvent) -> None:
        found = state.endpoints.get(event.endpoint) if event.endpoint else None
        # Clinicians are admitted as they join: that is no wait.
        if found is None or event.attendee is None:
            return
        if state.spec.role_of(event.attendee) is Role.CLINICIAN:
            return
        self.admit_wait.observe(max(0.0, (event.at - found.joined_at).total_seconds()))

    # --- at scrape time ------------------------------------------------------------------

    async def refresh(self, rooms: Rooms) -> None:
        """Recount sessions and the waiting room from the store. A failure leaves the last
        values (the store's own failure counters show why)."""
        now = rooms.clock()
        ids = await rooms.store.sessions_starting(now - SESSION_WINDOW, now + SESSION_WINDOW)
        counts = {(str(k), str(s)): 0 for k in SessionKind for s in SessionStatus}
        waiting = 0
        for session in ids:
            try:
                state = await rooms.store.get(session)
            except SessionNotFound:
                continue  # ended long ago: its state has expired
            counts[(str(state.spec.kind), str(state.status))] += 1
            waiting += _waiting(state)
        for (kind, status), n in counts.items():
            self.sessions.labels(kind, status).set(n)
        self.waiting.set(waiting)


def _waiting(state: SessionState) -> int:
    if state.status not in (SessionStatus.OPEN, SessionStatus.LIVE):
        return 0
    return sum(
        1
        for endpoint in state.endpoints.values()
        if endpoint.connected
        for seat in endpoint.seats.values()
        if seat.status is SeatStatus.WAITING
    )


class _Forwarders(Collector):
    """Forwarder gauges read from the registered sources at each scrape."""

    def __init__(self, sources: list[ForwarderSource]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        rooms = GaugeMetricFamily(
            "homeroom_forwarder_rooms", "Rooms open on each forwarding unit.", labels=["instance"]
        )
        publishers = GaugeMetricFamily(
            "homeroom_forwarder_publishers", "Publishers on each forwarding unit.",
            labels=["instance"],
        )  # fmt: skip
        up = GaugeMetricFamily(
            "homeroom_forwarder_up", "1 if the forwarding unit answers its health check.",
            labels=["instance"],
        )  # fmt: skip
        for source in self._sources:
            for sample in source():
                rooms.add_metric([sample.instance], sample.rooms)
                publishers.add_metric([sample.instance], sample.publishers)
                up.add_metric([sample.instance], float(sample.healthy))
        yield from (rooms, publishers, up)
