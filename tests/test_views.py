"""Room views per audience in a group session, built all at once or one at a time."""

from __future__ import annotations

from rooms import controls, membership
from rooms.ids import AttendeeId, EndpointId
from rooms.kinds import SessionKind
from rooms.state import SessionState
from signaling.protocol import AttendeeView, Room
from signaling.views import admitted_endpoints, room_view, room_views
from tests.factories import C, ctx, make_state


def group_of_five() -> SessionState:
    """A clinician, three admitted patients (one muted by the clinician), one waiting."""
    state = make_state(SessionKind.GROUP, patients=4)
    membership.join(state, ctx(), EndpointId("e-c"), C, connection="sc")
    for i, patient in enumerate(("p-201", "p-202", "p-203", "p-204")):
        endpoint = EndpointId(f"e-{patient}")
        membership.join(state, ctx(i + 1), endpoint, AttendeeId(patient), connection=f"s{i}")
        if patient != "p-204":
            membership.admit(state, ctx(i + 1), actor=C, attendee=AttendeeId(patient))
    controls.mute(state, ctx(6), actor=C, target=AttendeeId("p-202"))
    return state


def test_each_audience_sees_what_it_may() -> None:
    state = group_of_five()
    views = room_views(state)
    for endpoint, view in views.items():
        Room.model_validate(view)  # the wire shape the protocol defines
        assert view == room_view(state, endpoint)  # all at once == one at a time
    in_call = ["e-c", "e-p-201", "e-p-202", "e-p-203"]
    host, patient, waiting = (
        views[EndpointId("e-c")],
        views[EndpointId("e-p-201")],
        views[EndpointId("e-p-204")],
    )
    assert [e["endpoint"] for e in host["endpoints"]] == in_call
    assert [e["endpoint"] for e in host["waiting"]] == ["e-p-204"]
    assert [e["endpoint"] for e in patient["endpoints"]] == in_call
    assert patient["waiting"] == [] and patient["admitted"] is True
    assert waiting["admitted"] is False and waiting["waiting"] == []
    assert [e["endpoint"] for e in waiting["endpoints"]] == ["e-p-204"]
    muted = next(e for e in patient["endpoints"] if e["endpoint"] == "e-p-202")
    assert muted["attendees"][0]["muted"] and muted["attendees"][0]["clinician_muted"]
    assert sorted(admitted_endpoints(state)) == sorted(in_call)


def test_views_carry_pseudonymous_ids_only() -> None:
    state = group_of_five()
    for view in room_views(state).values():
        for endpoint in view["endpoints"] + view["waiting"]:
            assert set(endpoint) == {"endpoint", "connected", "attendees"}
            for person in endpoint["attendees"]:
                assert person["attendee"].startswith(("c-", "p-"))
                assert set(person) == set(AttendeeView.model_fields)  # nothing more travels
