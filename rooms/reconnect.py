"""Reconnects: a dropped connection, its resume within the grace window, and its expiry.

Presence ends when the connection drops and starts again on resume: the gap is not attendance,
but the resume is not a new join (same seats, same admission).
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from rooms import lifecycle
from rooms.authz import require_active
from rooms.errors import InvalidTransition, ResumeExpired, TokenInvalid
from rooms.ids import EndpointId
from rooms.ledger import Ctx, EventKind, LedgerEvent, emit
from rooms.state import SessionState


def disconnect(
    state: SessionState,
    ctx: Ctx,
    endpoint: EndpointId,
    connection: str | None = None,
    *,
    reason: str | None = None,
) -> list[LedgerEvent]:
    """The connection dropped. Presence ends now (``ctx.now``, or the endpoint's last event if
    that is later); a resume within the grace window restores it.

    With ``connection`` given, the close of a connection the endpoint has already moved away
    from (a resume on a new connection) is refused as stale and changes nothing. ``reason``,
    when given, is recorded in the events' data (the reaper's "node_lost").
    """
    found = state.endpoint(endpoint)
    if connection is not None and found.connection != connection:
        raise InvalidTransition("that connection no longer serves this endpoint")
    if not found.connected:
        raise InvalidTransition("the endpoint is already disconnected")
    if found.last_event_at is not None and found.last_event_at > ctx.now:
        # A backdated close (a dead node's last heartbeat, a hang-up written late) never
        # lands before what the endpoint did since: the ledger's time does not run backwards.
        ctx = Ctx(now=found.last_event_at, node=ctx.node)
    found.connected = False
    found.disconnected_at = ctx.now
    data = {"reason": reason} if reason is not None else {}
    return [
        emit(
            state,
            ctx,
            EventKind.DISCONNECTED,
            attendee=a,
            endpoint=endpoint,
            was=str(s.status),
            **data,
        )
        for a, s in found.seats.items()
    ]


def resume(
    state: SessionState,
    ctx: Ctx,
    endpoint: EndpointId,
    grace: timedelta,
    connection: str | None = None,
    proof: tuple[str, str] | None = None,
) -> list[LedgerEvent]:
    """A dropped endpoint is back within the grace window: same seats, same admission.

    A client may come back before the server noticed the old connection die: then the new
    connection takes the endpoint over and presence simply continues (``takeover``).
    ``proof`` is (hash of the credential presented, hash of the next credential).
    """
    require_active(state)
    found = state.endpoints.get(endpoint)
    if found is None:
        # Forgotten once its grace window passed (rooms.presence.expire_stale): for the
        # client that is the same as a window that has just passed.
        raise ResumeExpired("the reconnect grace window has passed: join again")
    if proof is not None:
        if found.resume_hash is None or not hmac.compare_digest(found.resume_hash, proof[0]):
            raise TokenInvalid("this resume credential is not valid")
        found.resume_hash = proof[1]
    takeover = found.connected
    if not takeover:
        assert found.disconnected_at is not None
        if ctx.now - found.disconnected_at > grace:
            raise ResumeExpired("the reconnect grace window has passed: join again")
    found.connected = True
    found.disconnected_at = None
    found.node = ctx.node
    found.connection = connection
    events = [
        emit(
            state,
            ctx,
            EventKind.RESUMED,
            attendee=a,
            endpoint=endpoint,
            was=str(s.status),
            takeover=takeover,
        )
        for a, s in found.seats.items()
    ]
    return events + lifecycle.live_if_ready(state, ctx)


def expire(
    state: SessionState, ctx: Ctx, endpoint: EndpointId, grace: timedelta
) -> list[LedgerEvent]:
    """Forget an endpoint whose grace window has passed. Its presence already ended."""
    found = state.endpoint(endpoint)
    if found.connected or found.disconnected_at is None:
        raise InvalidTransition("the endpoint is connected")
    if ctx.now - found.disconnected_at <= grace:
        raise InvalidTransition("the endpoint may still resume")
    del state.endpoints[endpoint]
    return []
