"""What each endpoint may see of its session: the ``room`` event, per audience.

Views are built as the plain JSON objects that go on the wire, in the shape of
:class:`signaling.protocol.Room` (the protocol's definition and its documentation); they are
computed for every endpoint before and after every change, so they skip building models.
Every view the signaling tests receive is validated against that model.
"""

from __future__ import annotations

from typing import Any

from rooms.authz import is_host
from rooms.ids import EndpointId
from rooms.state import EndpointState, SeatStatus, SessionState

#: A ``room`` payload (the JSON object of :class:`signaling.protocol.Room`).
View = dict[str, Any]


def room_view(state: SessionState, endpoint: EndpointId) -> View:
    """The session as ``endpoint`` may see it.

    Waiting endpoints see only themselves; admitted ones see everyone in the call; clinicians
    also see the waiting room. Names never appear: only pseudonymous ids and roles.
    """
    me = state.endpoints[endpoint]
    admitted = _in_call(me)
    view: View = {
        "version": state.version,
        "status": str(state.status),
        "locked": state.locked,
        "you": endpoint,
        "admitted": admitted,
    }
    if not admitted:
        view["endpoints"] = [_endpoint_view(state, me)]
        view["waiting"] = []
        return view
    host = any(is_host(state, a) for a in me.seats)
    in_call = sorted((e for e in state.endpoints.values() if _in_call(e)), key=_by_id)
    view["endpoints"] = [_endpoint_view(state, e) for e in in_call]
    if host:
        waiting = sorted((e for e in state.endpoints.values() if not _in_call(e)), key=_by_arrival)
        view["waiting"] = [_endpoint_view(state, e) for e in waiting]
    else:
        view["waiting"] = []
    return view


def admitted_endpoints(state: SessionState) -> list[EndpointId]:
    """Endpoints taking part in the call (media may flow between these only)."""
    return [e.id for e in state.endpoints.values() if _in_call(e)]


def _in_call(endpoint: EndpointState) -> bool:
    return any(s.status is not SeatStatus.WAITING for s in endpoint.seats.values())


def _by_id(endpoint: EndpointState) -> str:
    return endpoint.id


def _by_arrival(endpoint: EndpointState) -> Any:
    return endpoint.joined_at


def _endpoint_view(state: SessionState, endpoint: EndpointState) -> dict[str, Any]:
    attendees = []
    for attendee, seat in endpoint.seats.items():
        person = state.attendees.get(attendee)
        muted = clinician_muted = mute_locked = unmute_requested = False
        if person is not None:
            muted, clinician_muted = person.muted, person.clinician_muted
            mute_locked, unmute_requested = person.mute_locked, person.unmute_requested
        attendees.append(
            {
                "attendee": attendee,
                "role": str(state.spec.role_of(attendee)),
                "status": str(seat.status),
                "muted": muted,
                "clinician_muted": clinician_muted,
                "mute_locked": mute_locked,
                "unmute_requested": unmute_requested,
                "attached": seat.attached,
                "attested": seat.attested,
            }
        )
    return {"endpoint": endpoint.id, "connected": endpoint.connected, "attendees": attendees}
