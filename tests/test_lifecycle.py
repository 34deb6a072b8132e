"""Session lifecycle transitions and lock."""

from __future__ import annotations

import itertools

import pytest

from rooms import lifecycle, membership
from rooms.errors import InvalidTransition, NotAuthorized, SessionEnded
from rooms.session import TRANSITIONS, SessionStatus
from tests.factories import E1, E2, P1, C, ctx, kinds, make_state


@pytest.mark.parametrize(
    ("start", "to"), list(itertools.product(list(SessionStatus), list(SessionStatus)))
)
def test_every_transition_is_guarded(start: SessionStatus, to: SessionStatus) -> None:
    state = make_state()
    state.status = start
    before = state.model_copy(deep=True)
    if to in TRANSITIONS[start]:
        event = lifecycle.transition(state, ctx(), to)
        assert state.status is to
        assert event.seq == before.seq + 1
    else:
        with pytest.raises(InvalidTransition):
            lifecycle.transition(state, ctx(), to)
        assert state == before


def test_first_join_opens_and_admitting_a_patient_goes_live() -> None:
    state = make_state()
    events = membership.join(state, ctx(), E1, P1)
    assert state.status is SessionStatus.OPEN and state.opened_at == ctx().now
    assert kinds(events) == ["session_opened", "waiting"]
    events = membership.join(state, ctx(1), E2, C)
    assert kinds(events) == ["waiting", "admitted"]
    assert state.status is SessionStatus.OPEN  # the patient still waits
    events = membership.admit(state, ctx(2), C, P1)
    assert kinds(events) == ["admitted", "session_live"]
    assert state.status is SessionStatus.LIVE and state.live_at == ctx(2).now


def test_end_closes_every_seat_then_the_session() -> None:
    state = make_state()
    membership.join(state, ctx(), E1, C)
    membership.join(state, ctx(), E2, P1)
    membership.admit(state, ctx(1), C, P1)
    events = lifecycle.end(state, ctx(50), C)
    assert kinds(events) == ["left", "left", "session_ended"]
    assert all(e.data["reason"] == "session_ended" for e in events[:2])
    assert state.status is SessionStatus.ENDED and not state.endpoints
    with pytest.raises(InvalidTransition):
        lifecycle.end(state, ctx(51), "system")
    with pytest.raises(SessionEnded):
        membership.join(state, ctx(52), E1, P1)


def test_a_scheduled_session_can_be_cancelled() -> None:
    state = make_state()
    assert kinds(lifecycle.end(state, ctx(), C)) == ["session_ended"]


def test_only_clinicians_end_or_lock() -> None:
    state = make_state()
    membership.join(state, ctx(), E1, P1)
    before = state.model_copy(deep=True)
    for action in (
        lambda: lifecycle.end(state, ctx(), P1),
        lambda: lifecycle.set_locked(state, ctx(), P1, locked=True),
    ):
        with pytest.raises(NotAuthorized):
            action()
    assert state == before


def test_lock_and_unlock_are_recorded_once() -> None:
    state = make_state()
    assert kinds(lifecycle.set_locked(state, ctx(), C, locked=True)) == ["session_locked"]
    with pytest.raises(InvalidTransition):
        lifecycle.set_locked(state, ctx(), C, locked=True)
    assert kinds(lifecycle.set_locked(state, ctx(), C, locked=False)) == ["session_unlocked"]


def test_auto_readmit_is_a_recorded_clinician_setting() -> None:
    state = make_state()
    events = lifecycle.set_auto_readmit(state, ctx(), C, enabled=True)
    assert kinds(events) == ["auto_readmit"] and events[0].data == {"enabled": True}
    with pytest.raises(InvalidTransition):
        lifecycle.set_auto_readmit(state, ctx(), C, enabled=True)
    with pytest.raises(NotAuthorized):
        lifecycle.set_auto_readmit(state, ctx(), P1, enabled=False)
    assert state.auto_readmit
