"""What each endpoint may see of its session: the ``room`` event, per audience."""

from __future__ import annotations

from rooms.authz import is_host
from rooms.ids import EndpointId
from rooms.state import EndpointState, SeatStatus, SessionState
from signaling.protocol import AttendeeView, EndpointView, Room


def room_view(state: SessionState, endpoint: EndpointId) -> Room:
    """The session as ``endpoint`` may see it.

    Waiting endpoints see only themselves; admitted ones see everyone in the call; clinicians
    also see the waiting room. Names never appear: only pseudonymous ids and roles.
    """
    me = state.endpoints[endpoint]
    admitted = _in_call(me)
    host = any(is_host(state, a) for a in me.seats)
    common = {
        "version": state.version,
        "status": str(state.status),
        "locked": state.locked,
        "you": endpoint,
        "admitted": admitted,
    }
    if not admitted:
        return Room(**common, endpoints=[_endpoint_view(state, me)])
    in_call = [e for e in state.endpoints.values() if _in_call(e)]
    waiting = [e for e in state.endpoints.values() if not _in_call(e)] if host else []
    return Room(
        **common,
        endpoints=[_endpoint_view(state, e) for e in sorted(in_call, key=lambda e: e.id)],
        waiting=[_endpoint_view(state, e) for e in sorted(waiting, key=lambda e: e.joined_at)],
    )


def admitted_endpoints(state: SessionState) -> list[EndpointId]:
    """Endpoints taking part in the call (media may flow between these only)."""
    return [e.id for e in state.endpoints.values() if _in_call(e)]


def _in_call(endpoint: EndpointState) -> bool:
    return any(s.status is not SeatStatus.WAITING for s in endpoint.seats.values())


def _endpoint_view(state: SessionState, endpoint: EndpointState) -> EndpointView:
    attendees = []
    for attendee, seat in endpoint.seats.items():
        person = state.peek(attendee)
        attendees.append(
            AttendeeView(
                attendee=attendee,
                role=str(state.spec.role_of(attendee)),
                status=str(seat.status),
                muted=person.muted,
                clinician_muted=person.clinician_muted,
                mute_locked=person.mute_locked,
                unmute_requested=person.unmute_requested,
                attached=seat.attached,
                attested=seat.attested,
            )
        )
    return EndpointView(endpoint=endpoint.id, connected=endpoint.connected, attendees=attendees)
