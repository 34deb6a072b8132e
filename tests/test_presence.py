"""Presence after failures, as pure domain functions: a dead node's endpoints, the grace window."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rooms import membership, presence, reconnect
from rooms.errors import ResumeExpired
from rooms.ids import EndpointId, NodeId
from rooms.kinds import SessionKind
from rooms.ledger import Ctx, LedgerEvent
from rooms.state import SessionState
from tests.factories import E1, E2, E3, P1, P2, T0, C, ctx, kinds, make_state

GRACE = timedelta(seconds=30)
DEAD, ALIVE, REAPER = NodeId("n-dead"), NodeId("n-alive"), NodeId("n-reaper")
LAST_SEEN = T0 + timedelta(minutes=5)


def call_on_two_nodes() -> SessionState:
    """Couples session: clinician on e-1 (alive node); on the dead node, P1 and P2 sharing
    e-2 and P2 also on e-3 (dropped at 4:54, six seconds before the last heartbeat)."""
    state = make_state(SessionKind.COUPLES)
    membership.join(state, ctx(0, ALIVE), E1, C)
    membership.join(state, ctx(1, DEAD), E2, P1)
    membership.admit(state, ctx(2, ALIVE), C, P1)
    membership.attach(state, ctx(3, DEAD), E2, P2)
    membership.join(state, ctx(3, DEAD), E3, P2)
    reconnect.disconnect(state, ctx(4.9, DEAD), E3)
    return state


def reap(state: SessionState, minutes: float) -> list[LedgerEvent]:
    return presence.reap_node(state, ctx(minutes, REAPER), DEAD, LAST_SEEN, GRACE)


def reap_at(state: SessionState, now_after_last_seen: timedelta) -> list[LedgerEvent]:
    now = Ctx(now=LAST_SEEN + now_after_last_seen, node=REAPER)
    return presence.reap_node(state, now, DEAD, LAST_SEEN, GRACE)


def test_reap_closes_the_dead_nodes_connected_endpoints_at_its_last_heartbeat() -> None:
    state = call_on_two_nodes()
    events = reap_at(state, timedelta(seconds=10))
    assert kinds(events) == ["disconnected", "disconnected"]
    assert {(e.attendee, e.endpoint) for e in events} == {(P1, E2), (P2, E2)}
    for event in events:
        assert event.at == LAST_SEEN  # not the reaper's now
        assert event.node == REAPER
        assert event.data == {"was": "admitted", "reason": presence.NODE_LOST}
    assert not state.endpoints[E2].connected
    assert state.endpoints[E2].disconnected_at == LAST_SEEN
    assert not state.is_present(P1)


def test_reap_events_have_the_shape_of_an_ordinary_disconnect() -> None:
    reaped, dropped = call_on_two_nodes(), call_on_two_nodes()
    by_reaper = reap(reaped, 6)
    by_socket = reconnect.disconnect(dropped, ctx(5, REAPER), E2)
    assert [e.model_dump(exclude={"data", "prev", "hash"}) for e in by_reaper] == [
        e.model_dump(exclude={"data", "prev", "hash"}) for e in by_socket
    ]
    assert [{**e.data, "reason": "node_lost"} for e in by_socket] == [e.data for e in by_reaper]
    assert all("reason" not in e.data for e in by_socket)


def test_reap_leaves_other_nodes_and_already_disconnected_endpoints_alone() -> None:
    state = call_on_two_nodes()
    e1_before, e3_before = state.endpoints[E1].model_copy(), state.endpoints[E3].model_copy()
    events = reap_at(state, timedelta(seconds=10))
    assert {e.endpoint for e in events} == {E2}
    assert state.endpoints[E1] == e1_before  # the alive node's clinician is still in the call
    assert state.endpoints[E3] == e3_before  # dropped earlier: keeps its own leave time
    assert state.is_present(C)


def test_reap_again_does_nothing() -> None:
    state = call_on_two_nodes()
    assert reap_at(state, timedelta(seconds=10))
    after = state.model_copy(deep=True)
    assert reap_at(state, timedelta(seconds=10)) == []  # a second reaper, racing the first
    assert reap_at(state, timedelta(seconds=11)) == []
    assert state == after


def test_reap_of_a_node_without_endpoints_does_nothing() -> None:
    state = call_on_two_nodes()
    before = state.model_copy(deep=True)
    assert presence.reap_node(state, ctx(6), NodeId("n-other"), LAST_SEEN, GRACE) == []
    assert state == before


def test_reap_forgets_the_dead_nodes_endpoints_only_after_the_grace_window() -> None:
    state = call_on_two_nodes()
    assert len(reap_at(state, timedelta(seconds=15))) == 2
    assert set(state.endpoints) == {E1, E2, E3}
    # e-3 dropped six seconds before the last heartbeat: its window closes 24 s after it.
    assert reap_at(state, timedelta(seconds=24)) == []
    assert set(state.endpoints) == {E1, E2, E3}
    assert reap_at(state, timedelta(seconds=24, microseconds=1)) == []
    assert set(state.endpoints) == {E1, E2}
    # e-2 was closed at the last heartbeat; its grace window runs from then.
    assert reap_at(state, GRACE) == []
    assert set(state.endpoints) == {E1, E2}  # exactly the grace window: it may still resume
    assert reap_at(state, GRACE + timedelta(microseconds=1)) == []  # forgetting records nothing
    assert set(state.endpoints) == {E1}
    assert state.is_present(C)


def test_reap_long_after_the_death_closes_and_forgets_in_one_change() -> None:
    state = call_on_two_nodes()
    events = reap(state, 60)
    assert kinds(events) == ["disconnected", "disconnected"]
    assert all(e.at == LAST_SEEN for e in events)
    assert set(state.endpoints) == {E1}
    assert not state.is_admitted(P1)


def test_a_reaped_endpoint_may_resume_within_the_grace_window_from_the_last_heartbeat() -> None:
    state = call_on_two_nodes()
    reap_at(state, timedelta(seconds=10))
    events = reconnect.resume(state, Ctx(now=LAST_SEEN + GRACE, node=ALIVE), E2, GRACE)
    assert kinds(events) == ["resumed", "resumed"]
    assert state.endpoints[E2].node == ALIVE  # now the alive node's: never reaped again
    assert reap_at(state, GRACE * 3) == []
    assert state.endpoints[E2].connected


def test_a_reaped_endpoint_past_the_grace_window_is_gone() -> None:
    state = call_on_two_nodes()
    reap_at(state, GRACE + timedelta(seconds=1))
    with pytest.raises(ResumeExpired):
        reconnect.resume(state, Ctx(now=LAST_SEEN + GRACE * 2, node=ALIVE), E2, GRACE)


def test_expire_stale_forgets_any_nodes_endpoints_past_grace_and_nothing_else() -> None:
    state = call_on_two_nodes()
    reconnect.disconnect(state, ctx(5, ALIVE), E1)
    before = state.model_copy(deep=True)
    assert presence.expire_stale(state, ctx(5.4), GRACE) == []  # e-3's window ends at 5:24
    assert state == before
    assert presence.expire_stale(state, ctx(5.45), GRACE) == []
    assert set(state.endpoints) == {E1, E2}  # e-3 (dead node, dropped at 4:54) forgotten
    assert presence.expire_stale(state, ctx(5.6), GRACE) == []
    assert set(state.endpoints) == {E2}  # e-1 forgotten; e-2 is still connected
    assert state.endpoints[E2].connected


def test_expire_stale_for_one_node_only() -> None:
    state = call_on_two_nodes()
    reconnect.disconnect(state, ctx(4, ALIVE), E1)
    presence.expire_stale(state, ctx(10), GRACE, node=ALIVE)
    assert set(state.endpoints) == {E2, E3}
    presence.expire_stale(state, ctx(10), GRACE, node=DEAD)
    assert set(state.endpoints) == {E2}


def test_after_expiry_a_new_join_goes_through_the_waiting_room() -> None:
    state = call_on_two_nodes()
    reap(state, 60)
    events = membership.join(state, ctx(61, ALIVE), EndpointId("e-new"), P1)
    assert kinds(events) == ["waiting"]
    assert not state.is_admitted(P1)


def test_waiting_seats_are_closed_too() -> None:
    state = make_state(SessionKind.COUPLES)
    membership.join(state, ctx(0, ALIVE), E1, C)
    membership.join(state, ctx(1, DEAD), E2, P2)  # still waiting
    events = reap(state, 6)
    assert [(e.attendee, e.data["was"]) for e in events] == [(P2, "waiting")]
    assert all(e.at == LAST_SEEN for e in events)
