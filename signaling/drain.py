"""Draining a node that shuts down: its endpoints move to another node without a gap.

Each endpoint connected here is told ``moving``. The client opens a new connection with its
resume credential; through the deployment's address it reaches a node that stays, and the
resume there takes the endpoint over while it is still connected here (``takeover``), so
presence goes on and the ledger records one ``resumed`` and no disconnect. The old
connection's close is then stale and records nothing. Endpoints still here when the window
closes are disconnected with reason ``node_shutdown``: their presence ends then, and they may
still resume within the grace window. Every change is committed before :func:`drain`
returns, so closing the store afterwards loses no ledger event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial

import structlog

from rooms import reconnect
from rooms.errors import HomeroomError
from signaling import protocol as p
from signaling.handlers import Conn
from signaling.server import SignalingServer
from signaling.wire import send_local

log = structlog.get_logger("homeroom.signaling")

#: How often the drain looks whether every endpoint has moved.
_POLL_SECONDS = 0.05
#: Recorded in the data of the ``disconnected`` events of endpoints that did not move.
REASON = "node_shutdown"


@dataclass(frozen=True, slots=True)
class DrainReport:
    """How a drain went: endpoints that moved away, and those closed here."""

    moved: int
    closed: int


async def drain(server: SignalingServer, within: float) -> DrainReport:
    """Tell this node's endpoints to move, wait up to ``within`` seconds for them to go, and
    disconnect the rest. Call it once new connections are no longer accepted."""
    told = list(server.local)
    moving = p.Moving(within=within).model_dump()
    for sid in told:
        await send_local(server.sio, sid, "moving", moving)
    await _until_moved(server, within)
    stayed = [conn for conn in server.local.values() if not conn.gone]
    for conn in stayed:
        await _close_out(server, conn)
    for sid in list(server.local):
        await server.sio.disconnect(sid)
    report = DrainReport(moved=len(told) - len(stayed), closed=len(stayed))
    log.info("drained", node=server.rooms.node, moved=report.moved, closed=report.closed)
    return report


async def _until_moved(server: SignalingServer, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    # Polled: connections leave through several paths (a takeover's close from another
    # node, the client's own close), none of which tells anyone; a drain happens once.
    while loop.time() < deadline and any(not c.gone for c in server.local.values()):  # noqa: ASYNC110
        await asyncio.sleep(_POLL_SECONDS)


async def _close_out(server: SignalingServer, conn: Conn) -> None:
    """Record the disconnect of an endpoint that did not move, and push it to the others.
    A resume elsewhere that commits first makes this a stale close that changes nothing."""
    conn.gone = True  # its socket's close must not record a second disconnect
    change = partial(
        reconnect.disconnect, endpoint=conn.endpoint, connection=conn.sid, reason=REASON
    )
    try:
        state, events, before = await server._apply(conn.session, change)
    except HomeroomError as exc:
        conn.log.debug("drain_close_ignored", code=exc.code)
        return
    conn.log.info("disconnected", reason=REASON)
    await server._publish(state, events, before)
    server.rooms.release(state)
