"""What a change means for the endpoints: which views it altered, whom it closed."""

from __future__ import annotations

from typing import Any

from rooms.ids import EndpointId
from rooms.ledger import EventKind, LedgerEvent
from rooms.state import SessionState
from signaling.views import View, room_views

_BYE_FOR: dict[EventKind, str] = {EventKind.REMOVED: "removed", EventKind.DENIED: "denied"}


class Before:
    """What endpoints looked like before a change: their connections (to say goodbye to those
    the change closes) and their views (to push only the views the change altered)."""

    def __init__(self) -> None:
        self.connections: dict[EndpointId, str | None] = {}
        self._views: dict[EndpointId, View] = {}

    def note(self, state: SessionState) -> None:
        # A change may run again after a lost race: keep only the last run's picture.
        self.connections = {e.id: e.connection for e in state.endpoints.values()}
        self._views = room_views(state)

    def saw(self, endpoint: EndpointId, view: View) -> bool:
        """Whether ``endpoint`` already had this view (the version aside)."""
        seen = self._views.get(endpoint)
        return seen is not None and _unversioned(seen) == _unversioned(view)


def closed_by(state: SessionState, events: list[LedgerEvent]) -> dict[EndpointId, str]:
    """Endpoints the change took out of the session, with the reason their bye gives."""
    closed: dict[EndpointId, str] = {}
    for event in events:
        if event.endpoint is None or event.endpoint in state.endpoints:
            continue
        if event.kind in _BYE_FOR:
            closed[event.endpoint] = _BYE_FOR[event.kind]
        elif event.kind is EventKind.LEFT and event.data.get("reason") == "session_ended":
            closed[event.endpoint] = "ended"
    return closed


def _unversioned(view: View) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k != "version"}
