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
from rooms.ledger import utc_stamp
from rooms.state import EndpointState, SessionState

#: A ``room`` payload (the JSON object of :class:`signaling.protocol.Room`).
View = dict[str, Any]


def room_view(state: SessionState, endpoint: EndpointId) -> View:
    """The session as ``endpoint`` may see it.

    Waiting endpoints see only themselves; admitted ones see everyone in the call; clinicians
    also see the waiting room and who was here and has gone (``departed``). Names never
    appear: only pseudonymous ids and roles.
    """
    return _Views(state).of(state.endpoints[endpoint])


def room_views(state: SessionState) -> dict[EndpointId, View]:
    """Every endpoint's view at once: each endpoint is described once and shared by the views
    that show it, so a change in a group of n costs O(n) descriptions rather than O(n^2)."""
    views = _Views(state)
    return {e.id: views.of(e) for e in state.endpoints.values()}


class _Views:
    """The parts every audience's view of one state is assembled from, computed once."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self._described: dict[EndpointId, dict[str, Any]] = {}
        self._call: list[dict[str, Any]] | None = None
        self._waiting: list[dict[str, Any]] | None = None
        self._departed: list[dict[str, Any]] | None = None

    def of(self, me: EndpointState) -> View:
        state = self.state
        admitted = me.in_call()
        view: View = {
            "version": state.version,
            "status": str(state.status),
            "locked": state.locked,
            "you": me.id,
            "admitted": admitted,
        }
        if not admitted:
            view["endpoints"], view["waiting"], view["departed"] = [self._describe(me)], [], []
            return view
        view["endpoints"] = self._in_call()
        host = any(is_host(state, a) for a in me.seats)
        view["waiting"] = self._in_waiting_room() if host else []
        view["departed"] = self._gone() if host else []
        return view

    def _describe(self, endpoint: EndpointState) -> dict[str, Any]:
        found = self._described.get(endpoint.id)
        if found is None:
            found = self._described[endpoint.id] = _endpoint_view(self.state, endpoint)
        return found

    def _in_call(self) -> list[dict[str, Any]]:
        if self._call is None:
            found = sorted((e for e in self.state.endpoints.values() if e.in_call()), key=_by_id)
            self._call = [self._describe(e) for e in found]
        return self._call

    def _in_waiting_room(self) -> list[dict[str, Any]]:
        if self._waiting is None:
            found = sorted(
                (e for e in self.state.endpoints.values() if not e.in_call()), key=_by_arrival
            )
            self._waiting = [self._describe(e) for e in found]
        return self._waiting

    def _gone(self) -> list[dict[str, Any]]:
        """People who were here and hold no seat now: they left, lost their connection past
        the grace window, or were removed (a clinician tells them from those not come yet)."""
        if self._departed is None:
            seated = {a for e in self.state.endpoints.values() for a in e.seats}
            self._departed = [
                {"attendee": a, "at": utc_stamp(p.left_at), "removed": p.removed}
                for a, p in self.state.attendees.items()
                if p.left_at is not None and a not in seated
            ]
        return self._departed


def admitted_endpoints(state: SessionState) -> list[EndpointId]:
    """Endpoints taking part in the call (media may flow between these only)."""
    return [e.id for e in state.endpoints.values() if e.in_call()]


def _by_id(endpoint: EndpointState) -> str:
    return endpoint.id


def _by_arrival(endpoint: EndpointState) -> Any:
    return endpoint.joined_at


def _endpoint_view(state: SessionState, endpoint: EndpointState) -> dict[str, Any]:
    attendees = []
    for attendee, seat in endpoint.seats.items():
        person = state.peek(attendee)
        attendees.append(
            {
                "attendee": attendee,
                "role": str(state.spec.role_of(attendee)),
                "status": str(seat.status),
                "muted": person.muted,
                "clinician_muted": person.clinician_muted,
                "mute_locked": person.mute_locked,
                "unmute_requested": person.unmute_requested,
                "attached": seat.attached,
                "attested": seat.attested,
            }
        )
    return {"endpoint": endpoint.id, "connected": endpoint.connected, "attendees": attendees}
