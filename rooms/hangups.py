"""Hang-ups a node could not write: kept in order and written once the store is back.

A connection that closes while the store is unreachable still ended its endpoint's presence
then. Rather than lose the hang-up (and credit the person until the session ends), the node
keeps it: the endpoint, the connection that closed and when. Once the store answers again it
writes the kept hang-ups, oldest first, each stamped with the time it happened (never before
the endpoint's own last event: :func:`rooms.reconnect.disconnect`).

Writing twice records once: a disconnect names the connection that closed, so a retry after
a write whose reply was lost, or after the endpoint resumed on another connection, is refused
as stale and changes nothing. A resume on this node writes the kept hang-ups first
(:meth:`Hangups.flush`), so the gap before it is recorded as one. Kept in this process's
memory only: a node that dies with hang-ups kept is reaped by the others, which close its
endpoints at its last heartbeat.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from rooms import reconnect
from rooms.errors import HomeroomError, StoreConflict, StoreUnavailable
from rooms.ids import EndpointId, SessionId
from rooms.ledger import Ctx, LedgerEvent
from rooms.service import Change
from rooms.state import SessionState

log = structlog.get_logger("rooms.hangups")

#: What a write may fail with and succeed later: the hang-up is kept and tried again.
_LATER = (StoreUnavailable, StoreConflict)


@dataclass(frozen=True, slots=True)
class Hangup:
    """The close of ``connection``, which served ``endpoint`` of ``session``, at ``at``."""

    session: SessionId
    endpoint: EndpointId
    connection: str
    at: datetime

    def change(self) -> Change:
        """The disconnect, as of when it happened rather than when it is written."""

        def disconnect(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
            then = Ctx(now=self.at, node=ctx.node)
            return reconnect.disconnect(state, then, self.endpoint, self.connection)

        return disconnect


#: Writes one hang-up to the store (and tells whoever must hear of it); raises what the
#: store or the domain raised.
Write = Callable[[Hangup], Awaitable[None]]


class Hangups:
    """This node's hang-ups on their way to the store.

    ``record`` writes at once when nothing is kept; a hang-up the store cannot take now is
    kept behind the others and retried every ``retry`` seconds, doubling up to ``max_retry``,
    until written. A write the domain refuses (a stale connection, an endpoint gone) is done.
    """

    def __init__(self, write: Write, *, retry: float = 0.25, max_retry: float = 4.0) -> None:
        if not 0 < retry <= max_retry:
            raise ValueError("retry must be positive and at most max_retry")
        self._write = write
        self._retry = retry
        self._max_retry = max_retry
        self._kept: deque[Hangup] = deque()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def kept(self) -> int:
        """Hang-ups waiting for the store."""
        return len(self._kept)

    async def record(self, hangup: Hangup) -> None:
        """Write ``hangup`` now, or keep it (behind any kept before it) for later."""
        if not self._kept:
            try:
                await self._write(hangup)
                return
            except _LATER:
                pass
            except HomeroomError as exc:
                _log(hangup).debug("disconnect_ignored", code=exc.code)
                return
        self._kept.append(hangup)
        _log(hangup).warning("hangup_kept", kept=len(self._kept))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._retry_until_written(), name="hangups")

    async def flush(self) -> None:
        """Write every kept hang-up now, in order. Raises StoreUnavailable (or StoreConflict)
        when the store still cannot take them; what was written stays written."""
        async with self._lock:
            while self._kept:
                await self._write_oldest()

    async def close(self) -> None:
        """Stop retrying (at shutdown). What is still kept is lost to this node."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._kept:
            log.warning("hangups_unwritten", kept=len(self._kept))

    async def _retry_until_written(self) -> None:
        delay = self._retry
        while self._kept:
            await asyncio.sleep(delay)
            try:
                await self.flush()
            except _LATER:
                delay = min(delay * 2, self._max_retry)

    async def _write_oldest(self) -> None:
        hangup = self._kept[0]
        try:
            await self._write(hangup)
        except _LATER:
            raise
        except HomeroomError as exc:
            _log(hangup).info("disconnect_ignored", code=exc.code, late=True)
        except Exception:
            # A bug must not hold every later hang-up back: logged, and given up.
            _log(hangup).exception("hangup_failed")
        else:
            _log(hangup).info("hangup_written", at=hangup.at.isoformat())
        self._kept.popleft()


def _log(hangup: Hangup) -> structlog.typing.FilteringBoundLogger:
    return log.bind(session=hangup.session, endpoint=hangup.endpoint)  # type: ignore[no-any-return]
