"""Room views per audience in a group session, built all at once or one at a time."""

from __future__ import annotations

from datetime import timedelta

from rooms import controls, membership, reconnect
from rooms.ids import AttendeeId, EndpointId, SessionId
from rooms.kinds import SessionKind
from rooms.ledger import utc_stamp
from rooms.state import SessionState
from signaling.delivery import Before, RecentViews
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


def test_views_of_a_version_are_built_once_and_a_new_version_gets_its_own() -> None:
    recent = RecentViews(size=2)
    state = group_of_five()
    first = recent.of(state)
    assert first == room_views(state)
    assert recent.of(state.model_copy(deep=True)) is first  # the same version: kept
    controls.mute(state, ctx(7), actor=C, target=AttendeeId("p-201"))
    state.version += 1  # as the store does when it commits the change
    second, fresh = recent.of(state), room_views(state)
    assert second is not first and second.keys() == fresh.keys()
    for endpoint, view in second.items():
        if endpoint == EndpointId("e-p-204"):
            # The waiting patient sees nothing of the mute: its view is the one it had, whose
            # version says when its content last changed (what a room_delta applies to).
            assert view is first[endpoint] and view["version"] == 0
        else:
            assert view == fresh[endpoint] and view["version"] == 1
    # A bounded number of sessions: the least recently used goes first.
    for i in range(2):
        other = make_state(SessionKind.GROUP, patients=1)
        other.spec = other.spec.model_copy(update={"id": SessionId(f"s-other-{i}")})
        recent.of(other)
        assert recent.of(other) is recent.of(other)
    # Rebuilt from scratch: the same content, each view stamped with the state's version.
    assert recent.of(state) is not second and recent.of(state) == fresh


def test_a_change_pushes_only_the_views_it_altered_when_its_views_are_kept() -> None:
    """Before.note reads the kept views of the version it starts from."""
    recent = RecentViews()
    state = group_of_five()
    recent.of(state)
    before = Before(recent)
    before.note(state)
    controls.mute(state, ctx(7), actor=C, target=AttendeeId("p-201"))
    state.version += 1
    after = recent.of(state)
    altered = {e for e, view in after.items() if not before.saw(e, view)}
    # Everyone in the call sees the mute; the waiting patient sees only themselves.
    assert altered == {EndpointId(e) for e in ("e-c", "e-p-201", "e-p-202", "e-p-203")}


def test_a_clinician_sees_who_left_apart_from_who_has_not_come() -> None:
    """``departed``: the people who were here and are on no device now, with when their
    presence ended; a dropped connection counts from the drop, once its grace window is over."""
    state = group_of_five()
    membership.leave(state, ctx(8), EndpointId("e-p-201"))
    reconnect.disconnect(state, ctx(9), EndpointId("e-p-203"))
    assert [d["attendee"] for d in room_view(state, EndpointId("e-c"))["departed"]] == ["p-201"]
    reconnect.expire(state, ctx(20), EndpointId("e-p-203"), grace=timedelta(seconds=30))
    membership.remove(state, ctx(21), actor=C, attendee=AttendeeId("p-202"))
    host = room_view(state, EndpointId("e-c"))
    Room.model_validate(host)
    assert host["departed"] == [
        {"attendee": "p-201", "at": utc_stamp(ctx(8).now), "removed": False},
        {"attendee": "p-202", "at": utc_stamp(ctx(21).now), "removed": True},
        {"attendee": "p-203", "at": utc_stamp(ctx(9).now), "removed": False},
    ]
    # Back through their link (the waiting room again): here, not departed.
    membership.join(state, ctx(22), EndpointId("e-p-201b"), AttendeeId("p-201"), connection="s9")
    assert "p-201" not in [d["attendee"] for d in room_view(state, EndpointId("e-c"))["departed"]]
    # Patients do not see who left: only clinicians do.
    membership.admit(state, ctx(23), actor=C, attendee=AttendeeId("p-204"))
    assert room_view(state, EndpointId("e-p-204"))["departed"] == []
