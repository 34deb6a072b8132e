"""One person, one window: the same link opened a second time takes the first window over.

A link opened in a second tab or on a second device would otherwise become a second endpoint
of the same person, who then sees themselves as a remote participant. Instead the server
refuses the plain join (``AlreadyJoined``) and the page asks "Continue here?"; a join asked
with ``takeover`` moves the person's endpoint to the new connection. The endpoint keeps its
id, seats, admission and mute state, so attendance continues as one interval: no leave, no
second join, nothing counted twice.

Only the endpoint a person opened with their own link is theirs to take over. A partner
attached to someone else's shared device opening their own link elsewhere is a second device
of that person (the design allows it; their intervals are merged).
"""

from __future__ import annotations

from rooms import lifecycle
from rooms.authz import require_active, require_roster
from rooms.errors import AlreadyJoined, TokenRevoked
from rooms.ids import AttendeeId, EndpointId
from rooms.ledger import Ctx, EventKind, LedgerEvent, emit
from rooms.state import EndpointState, SessionState


def own_endpoint(state: SessionState, attendee: AttendeeId) -> EndpointState | None:
    """The connected endpoint ``attendee`` opened with their own link, if any."""
    for endpoint in state.endpoints.values():
        seat = endpoint.seats.get(attendee)
        if seat is not None and not seat.attached and endpoint.connected:
            return endpoint
    return None


def refuse_second_window(state: SessionState, attendee: AttendeeId) -> None:
    """Raise ``AlreadyJoined`` when the person is connected in another window."""
    if own_endpoint(state, attendee) is not None:
        raise AlreadyJoined(
            "you are already in this session in another window or on another device"
        )


def take_over(
    state: SessionState,
    ctx: Ctx,
    attendee: AttendeeId,
    connection: str | None,
    resume_hash: str | None,
) -> tuple[EndpointId, list[LedgerEvent]] | None:
    """Move the person's connected endpoint to ``connection``; None when there is none (the
    other window closed meanwhile: the caller joins as usual).

    ``resume_hash`` replaces the endpoint's resume credential, so the old window can neither
    resume nor keep the endpoint. Recorded as ``resumed`` with ``takeover`` (presence goes on).
    """
    require_active(state)
    require_roster(state, attendee)
    if state.is_removed(attendee):
        raise TokenRevoked("this link was withdrawn by the clinician")
    found = own_endpoint(state, attendee)
    if found is None:
        return None
    found.connection = connection
    found.resume_hash = resume_hash
    found.node = ctx.node
    events = [
        emit(
            state,
            ctx,
            EventKind.RESUMED,
            attendee=a,
            endpoint=found.id,
            was=str(s.status),
            takeover=True,
            by="link",
        )
        for a, s in found.seats.items()
    ]
    return found.id, events + lifecycle.live_if_ready(state, ctx)
