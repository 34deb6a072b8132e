"""Mute controls and the authorization matrix: every control as every role."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rooms import controls, lifecycle, membership
from rooms.errors import HomeroomError, InvalidTransition, MuteLocked, NotAuthorized
from rooms.ids import AttendeeId, EndpointId
from rooms.kinds import SessionKind
from rooms.ledger import LedgerEvent
from rooms.state import SessionState
from tests.factories import E1, E2, E3, P1, C, ctx, kinds, make_state

P2 = AttendeeId("p-202")
P3 = AttendeeId("p-203")
P4 = AttendeeId("p-204")
OTHER_CLINICIAN = AttendeeId("c-99")  # a clinician of another session


def group_call() -> SessionState:
    """Group: c-17 hosting, p-201 and p-204 admitted, p-202 waiting, p-203 removed."""
    state = make_state(SessionKind.GROUP, patients=4)
    membership.join(state, ctx(), E1, C)
    membership.join(state, ctx(), E2, P1)
    membership.admit(state, ctx(1), C, P1)
    membership.join(state, ctx(1), E3, P2)
    membership.remove(state, ctx(2), C, P3)
    membership.join(state, ctx(2), EndpointId("e-4"), P4)
    membership.admit(state, ctx(2), C, P4)
    return state


def test_self_mute_and_unmute() -> None:
    state = group_call()
    assert kinds(controls.mute(state, ctx(), P1, P1)) == ["muted"]
    assert state.attendees[P1].muted
    with pytest.raises(InvalidTransition):
        controls.mute(state, ctx(), P1, P1)
    events = controls.unmute(state, ctx(), P1, P1)
    assert events[0].data == {"by": "self"} and not state.attendees[P1].muted


def test_clinician_mute_binds_until_lifted() -> None:
    state = group_call()
    controls.mute(state, ctx(), C, P1)
    with pytest.raises(NotAuthorized, match="ask to unmute"):
        controls.unmute(state, ctx(), P1, P1)
    assert kinds(controls.ask_to_unmute(state, ctx(), P1)) == ["unmute_requested"]
    with pytest.raises(InvalidTransition):
        controls.ask_to_unmute(state, ctx(), P1)
    controls.unmute(state, ctx(), C, P1)
    person = state.attendees[P1]
    assert not person.muted and not person.unmute_requested


def test_lock_mute_refuses_asking_until_released() -> None:
    state = group_call()
    events = controls.lock_mute(state, ctx(), C, P1, locked=True)
    assert kinds(events) == ["muted", "mute_locked"]
    with pytest.raises(MuteLocked):
        controls.ask_to_unmute(state, ctx(), P1)
    with pytest.raises(MuteLocked):
        controls.unmute(state, ctx(), P1, P1)
    with pytest.raises(MuteLocked):
        controls.unmute(state, ctx(), C, P1)
    controls.lock_mute(state, ctx(), C, P1, locked=False)
    assert state.attendees[P1].clinician_muted  # released, still muted until unmuted
    controls.unmute(state, ctx(), C, P1)
    assert not state.attendees[P1].muted


def test_mute_all_mutes_admitted_patients_only() -> None:
    state = group_call()
    events = controls.mute_all(state, ctx(), C)
    assert [e.attendee for e in events] == [P1, P4]
    assert {e.data["by"] for e in events} == {"clinician_all"}
    with pytest.raises(InvalidTransition):
        controls.mute_all(state, ctx(), C)


Control = Callable[[SessionState, AttendeeId], list[LedgerEvent]]

HOST_CONTROLS: dict[str, Control] = {
    "admit": lambda s, a: membership.admit(s, ctx(), a, P2),
    "deny": lambda s, a: membership.deny(s, ctx(), a, P2),
    "remove": lambda s, a: membership.remove(s, ctx(), a, P1),
    "mute": lambda s, a: controls.mute(s, ctx(), a, P1),
    "unmute_other": lambda s, a: controls.unmute(s, ctx(), a, P1),
    "mute_all": lambda s, a: controls.mute_all(s, ctx(), a),
    "lock_mute": lambda s, a: controls.lock_mute(s, ctx(), a, P1, locked=True),
    "lock": lambda s, a: lifecycle.set_locked(s, ctx(), a, locked=True),
    "end": lambda s, a: lifecycle.end(s, ctx(), a),
    "auto_readmit": lambda s, a: lifecycle.set_auto_readmit(s, ctx(), a, enabled=True),
}

FORBIDDEN_ACTORS = {
    "patient": P4,
    "waiting_patient": P2,
    "removed_patient": P3,
    "other_sessions_clinician": OTHER_CLINICIAN,
}


@pytest.mark.parametrize("control", sorted(HOST_CONTROLS))
@pytest.mark.parametrize("who", sorted(FORBIDDEN_ACTORS))
def test_controls_refused_for_every_non_host_and_change_nothing(control: str, who: str) -> None:
    state = group_call()
    before = state.model_copy(deep=True)
    with pytest.raises(NotAuthorized) as caught:
        HOST_CONTROLS[control](state, FORBIDDEN_ACTORS[who])
    assert caught.value.code == "not_authorized"
    assert state == before


@pytest.mark.parametrize("control", sorted(HOST_CONTROLS))
def test_controls_allowed_for_the_sessions_clinician(control: str) -> None:
    state = group_call()
    if control == "unmute_other":
        controls.mute(state, ctx(), C, P1)
    seq = state.seq
    HOST_CONTROLS[control](state, C)
    assert state.seq > seq


@pytest.mark.parametrize("who", ["waiting_patient", "removed_patient", "other_sessions_clinician"])
def test_self_controls_need_a_present_member(who: str) -> None:
    state = group_call()
    actor = FORBIDDEN_ACTORS[who]
    before = state.model_copy(deep=True)
    for action in (controls.mute, controls.unmute):
        with pytest.raises(HomeroomError):
            action(state, ctx(), actor, actor)
    with pytest.raises(HomeroomError):
        controls.ask_to_unmute(state, ctx(), actor)
    assert state == before


def test_a_patient_cannot_mute_a_clinician_or_another_patient() -> None:
    state = group_call()
    before = state.model_copy(deep=True)
    with pytest.raises(NotAuthorized):
        controls.mute(state, ctx(), P1, C)
    with pytest.raises(NotAuthorized):
        controls.mute(state, ctx(), P1, P2)
    assert state == before


def test_clinicians_cannot_be_muted_by_a_co_facilitator() -> None:
    state = make_state(SessionKind.GROUP, clinicians=2)
    before = state.model_copy(deep=True)
    with pytest.raises(NotAuthorized):
        controls.mute(state, ctx(), C, AttendeeId("c-18"))
    assert state == before
