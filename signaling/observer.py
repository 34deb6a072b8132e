"""What signaling reports about itself, for metrics: one call per event and per connect.

The signaling server calls an observer; web/metrics.py gives it one that counts. The calls
are on the hot path: an implementation only increments counters.
"""

from __future__ import annotations

from typing import Protocol


class SignalingObserver(Protocol):
    def event(self, name: str, error: str | None) -> None:
        """A client event was answered: its name (``known``), and its error code if refused."""

    def connect(self, result: str) -> None:
        """A connect was answered: ``join``, ``resume``, or the code it was refused with."""


class NoObserver:
    """Reports nowhere (the default, and tests that do not look)."""

    def event(self, name: str, error: str | None) -> None:
        pass

    def connect(self, result: str) -> None:
        pass
