"""Presence after failures: endpoints of a dead node, and endpoints past the grace window.

Pure like :mod:`rooms.membership`, whose rules these reuse: each function changes the given
copy of the state in place and returns the ledger events recording it; raising changes
nothing. Run them through ``Rooms.apply``; the reaper (:mod:`rooms.reaper`) does.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rooms import reconnect
from rooms.errors import InvalidTransition
from rooms.ids import NodeId
from rooms.ledger import Ctx, LedgerEvent
from rooms.state import SessionState

#: ``reason`` of the DISCONNECTED events of a dead node's endpoints.
NODE_LOST = "node_lost"


def reap_node(
    state: SessionState, ctx: Ctx, node: NodeId, last_seen: datetime, grace: timedelta
) -> list[LedgerEvent]:
    """Close the endpoints of a dead ``node``: presence ends at its last heartbeat.

    Every endpoint of ``node`` still connected is disconnected as of ``last_seen`` (its events
    are stamped then, not now, or at the endpoint's own last event when that came later: a
    leave never precedes what the endpoint did; the grace window runs from then too), and
    every endpoint of
    ``node`` disconnected for longer than ``grace`` as of ``ctx.now`` is forgotten. Endpoints
    of other nodes, and those already disconnected, are left alone. Returns [] when there is
    nothing to do, so a second reaper racing the first changes nothing.
    """
    at_last_beat = Ctx(now=last_seen, node=ctx.node)
    events: list[LedgerEvent] = []
    for endpoint in state.endpoint_of_node(node):
        if endpoint.connected:
            events += reconnect.disconnect(state, at_last_beat, endpoint.id, reason=NODE_LOST)
    return events + expire_stale(state, ctx, grace, node=node)


def expire_stale(
    state: SessionState, ctx: Ctx, grace: timedelta, *, node: NodeId | None = None
) -> list[LedgerEvent]:
    """Forget every endpoint (of ``node`` only, when given) disconnected longer than ``grace``.

    Their presence already ended when they disconnected, so this records no event; afterwards
    a returning attendee joins anew (through the waiting room unless auto-readmit is on).
    """
    events: list[LedgerEvent] = []
    for endpoint in list(state.endpoints.values()):
        if node is not None and endpoint.node != node:
            continue
        try:
            # reconnect.expire is the one rule for "past the grace window".
            events += reconnect.expire(state, ctx, endpoint.id, grace)
        except InvalidTransition:
            continue  # connected, or may still resume: it stays
    return events
