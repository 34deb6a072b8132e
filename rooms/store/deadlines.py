"""One timer for every store call in flight: each call is bounded by the same timeout.

``asyncio.timeout`` arms a timer per call and cancels it when the call ends: a timer handle,
a push onto the event loop's heap (whose order is kept by Python-level comparisons, among
the timers of every open connection) and a cancelled handle left on it, for each of the
store's commands. Calls that all take the same timeout end their windows in the order they
started, so a queue in start order and one timer armed for its oldest call bound them all:
when the timer fires, the calls that ended are dropped from the front, those past their
deadline are cancelled, and the timer is armed again for the oldest call still running.

Cancellation is told apart as ``asyncio.timeout`` tells it (:meth:`Call.expired`): a call
cancelled by its deadline can be turned into an error, while one its caller cancelled stays
cancelled.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class Call:
    """One bounded call: set ``done`` when it ends (in a ``finally``)."""

    task: asyncio.Task[object]
    deadline: float
    #: The task's cancellation requests when the call started (see asyncio.Timeout).
    cancelling: int
    done: bool = False
    _expired: bool = field(default=False, repr=False)

    def expired(self) -> bool:
        """Whether a CancelledError the call raised came from its deadline rather than its
        caller (then the task's cancellation is undone, as ``asyncio.timeout`` undoes it
        before raising TimeoutError)."""
        return self._expired and self.task.uncancel() <= self.cancelling


class Deadlines:
    """Bounds calls to ``seconds`` each (module doc)."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        self._seconds = seconds
        self._running: deque[Call] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> Call:
        """Bound the current task from now until the call is ``done``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("bounded calls are made from a task")
        loop = task.get_loop()
        if loop is not self._loop:  # a new event loop: what ran on another one is gone
            self._loop, self._timer = loop, None
            self._running.clear()
        call = Call(task, loop.time() + self._seconds, task.cancelling())
        self._running.append(call)
        if self._timer is None:
            self._timer = loop.call_at(call.deadline, self._expire)
        return call

    def _expire(self) -> None:
        assert self._loop is not None
        self._timer = None
        running, now = self._running, self._loop.time()
        while running and (running[0].done or running[0].deadline <= now):
            call = running.popleft()
            if not call.done:
                call._expired = True
                call.task.cancel()
        if running:
            self._timer = self._loop.call_at(running[0].deadline, self._expire)
