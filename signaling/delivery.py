"""What a change means for the endpoints: which views it altered, whom it closed."""

from __future__ import annotations

from collections import OrderedDict

from rooms.ids import EndpointId, SessionId
from rooms.ledger import EventKind, LedgerEvent
from rooms.state import SessionState
from signaling.deltas import room_delta
from signaling.views import View, room_views

_BYE_FOR: dict[EventKind, str] = {EventKind.REMOVED: "removed", EventKind.DENIED: "denied"}


class RecentViews:
    """Every endpoint's view of the last state of each session this node built views of.

    A state's version names its content (the store commits one document per version), so
    the views pushed after a change are the views the next change starts from: kept here,
    they are not built twice. At most ``size`` sessions, the least recently used dropped.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._by_session: OrderedDict[SessionId, tuple[int, dict[EndpointId, View]]] = OrderedDict()

    def of(self, state: SessionState) -> dict[EndpointId, View]:
        """The views of ``state`` (built from it, or kept from its version). Views are never
        changed once built: callers only read and send them."""
        session = state.spec.id
        found = self._by_session.get(session)
        if found is not None and found[0] == state.version:
            self._by_session.move_to_end(session)
            return found[1]
        views = room_views(state)
        if found is not None and found[0] == state.version - 1:
            _keep_unchanged(found[1], views)
        self._by_session[session] = (state.version, views)
        self._by_session.move_to_end(session)
        if len(self._by_session) > self._size:
            self._by_session.popitem(last=False)
        return views


def _keep_unchanged(old: dict[EndpointId, View], new: dict[EndpointId, View]) -> None:
    """Give each view the change left alone its previous object, version included: a view's
    version is the store version at which its content last changed (signaling.deltas). Only
    from the version just before: views of versions this node skipped may have changed and
    changed back."""
    for endpoint, view in new.items():
        kept = old.get(endpoint)
        if kept is not None and {**kept, "version": 0} == {**view, "version": 0}:
            new[endpoint] = kept


class Before:
    """What endpoints looked like before a change: their connections (to say goodbye to those
    the change closes) and their views (to push only the views the change altered)."""

    def __init__(self, recent: RecentViews) -> None:
        self.connections: dict[EndpointId, str | None] = {}
        self._views: dict[EndpointId, View] = {}
        self._recent = recent

    def note(self, state: SessionState) -> None:
        # A change may run again after a lost race: keep only the last run's picture.
        self.connections = {e.id: e.connection for e in state.endpoints.values()}
        self._views = self._recent.of(state)

    def message(self, endpoint: EndpointId, view: View) -> tuple[str, View]:
        """What to send ``endpoint`` for its new ``view``: the change from the view it had
        (``room_delta``), or the whole view (``room``) when there is no earlier one."""
        seen = self._views.get(endpoint)
        delta = room_delta(seen, view) if seen is not None else None
        return ("room", view) if delta is None else ("room_delta", delta)

    def saw(self, endpoint: EndpointId, view: View) -> bool:
        """Whether ``endpoint`` already had this view (the version aside)."""
        seen = self._views.get(endpoint)
        if seen is view:
            return True
        # Compared with the version set alike: two dict copies, no Python-level loop.
        return seen is not None and {**seen, "version": 0} == {**view, "version": 0}


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
        elif event.kind is EventKind.LEFT and event.data.get("reason") == "link_revoked":
            closed[event.endpoint] = "revoked"  # the standing program link was withdrawn
    return closed
