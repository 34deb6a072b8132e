"""Per-sender budgets: how many events and bytes one connection may send.

One participant must never be able to knock another off. Every event a connection sends
(``signal`` and every other, valid or not) is charged to that connection's budget: one event
and the packet's bytes. A connection over budget is refused with ``rate_limited`` and its
event does nothing; the receiver of what it would have relayed never sees the flood, so its
outbox never fills and it is never dropped as a slow client
(:data:`signaling.websocket.MAX_BUFFERED`).

Budgets are token buckets: a burst for the offers and ICE candidates of a call starting, and
a sustained rate well above any page's need. They belong to this node's connections only (a
connection's packets all arrive at the node holding it), so they live in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """What one connection may send: per second, and in one burst."""

    events_per_second: float = 50.0
    event_burst: float = 200.0
    bytes_per_second: float = 256 * 1024
    byte_burst: float = 512 * 1024


def budget_limits(events_per_second: float, kib_per_second: int) -> BudgetLimits | None:
    """Limits from the two settings (bursts of 4x the events and 2x the bytes a second);
    None, no budget at all, when either is 0."""
    if events_per_second <= 0 or kib_per_second <= 0:
        return None
    return BudgetLimits(
        events_per_second=events_per_second,
        event_burst=4 * events_per_second,
        bytes_per_second=kib_per_second * 1024,
        byte_burst=2 * kib_per_second * 1024,
    )


class Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self._rate, self._burst = rate, burst
        self._tokens, self._stamp = burst, now

    def take(self, amount: float, now: float) -> bool:
        """Take ``amount`` tokens if there are that many; False (and nothing taken) if not.
        An amount larger than the burst costs the whole burst (it passes when full)."""
        amount = min(amount, self._burst)
        tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if tokens < amount:
            self._tokens = tokens
            return False
        self._tokens = tokens - amount
        return True

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` tokens are there (as of the last ``take``)."""
        return max(1e-3, min(amount, self._burst) - self._tokens) / self._rate


class Budget:
    """One connection's budget: events and bytes."""

    __slots__ = ("_bytes", "_events", "refused")

    def __init__(self, limits: BudgetLimits, now: float) -> None:
        self._events = Bucket(limits.events_per_second, limits.event_burst, now)
        self._bytes = Bucket(limits.bytes_per_second, limits.byte_burst, now)
        #: Events refused in a row (the first of a run is logged, not each).
        self.refused = 0

    def charge(self, size: int, now: float) -> float:
        """Charge one event of ``size`` bytes: 0.0 when within budget, else the seconds to
        wait before the same event would be (nothing is charged then)."""
        if not self._events.take(1, now):
            self.refused += 1
            return self._events.wait_for(1)
        if not self._bytes.take(size, now):
            self._events.take(-1, now)  # the refused event costs no event either
            self.refused += 1
            return self._bytes.wait_for(size)
        self.refused = 0
        return 0.0


class Budgets:
    """The budgets of this node's connections, by Engine.IO session id."""

    def __init__(
        self, limits: BudgetLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or BudgetLimits()
        self._clock = clock
        self._by_connection: dict[str, Budget] = {}

    def charge(self, connection: str, size: int) -> float:
        """See :meth:`Budget.charge`; a connection's budget starts full."""
        now = self._clock()
        budget = self._by_connection.get(connection)
        if budget is None:
            budget = self._by_connection[connection] = Budget(self.limits, now)
        return budget.charge(size, now)

    def of(self, connection: str) -> Budget | None:
        return self._by_connection.get(connection)

    def forget(self, connection: str) -> None:
        self._by_connection.pop(connection, None)
