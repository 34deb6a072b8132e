"""Membership: join, waiting room, admission, capacity, removal, reconnects and shared devices."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from rooms import lifecycle, membership, reconnect
from rooms.errors import (
    DeviceFull,
    EndpointNotFound,
    HomeroomError,
    InvalidTransition,
    NotAuthorized,
    NotOnRoster,
    ResumeExpired,
    SessionFull,
    SessionLocked,
    TokenInvalid,
    TokenRevoked,
)
from rooms.ids import AttendeeId, EndpointId
from rooms.kinds import SessionKind
from rooms.state import SeatStatus, SessionState
from tests.factories import C2, E1, E2, E3, P1, P2, C, ctx, kinds, make_state

GRACE = timedelta(seconds=30)


def unchanged(
    state: SessionState, action: Callable[[], object], error: type[HomeroomError]
) -> None:
    """The action raises ``error`` and leaves the state exactly as it was."""
    before = state.model_copy(deep=True)
    with pytest.raises(error):
        action()
    assert state == before


def in_call(kind: SessionKind = SessionKind.COUPLES) -> SessionState:
    """Clinician on e-1, first patient admitted on e-2."""
    state = make_state(kind)
    membership.join(state, ctx(), E1, C)
    membership.join(state, ctx(), E2, P1)
    membership.admit(state, ctx(1), C, P1)
    return state


def test_patient_waits_and_only_a_clinician_admits() -> None:
    state = make_state()
    membership.join(state, ctx(), E1, P1)
    assert state.endpoints[E1].seats[P1].status is SeatStatus.WAITING
    unchanged(state, lambda: membership.admit(state, ctx(), P1, P1), NotAuthorized)
    unchanged(state, lambda: membership.admit(state, ctx(), AttendeeId("c-99"), P1), NotAuthorized)
    events = membership.admit(state, ctx(1), C, P1)
    assert events[0].actor == C and events[0].endpoint == E1
    assert state.is_present(P1)


def test_one_admission_per_attendee() -> None:
    state = in_call()
    unchanged(state, lambda: membership.admit(state, ctx(2), C, P1), InvalidTransition)


def test_strangers_and_duplicate_endpoints_are_refused() -> None:
    state = make_state()
    unchanged(state, lambda: membership.join(state, ctx(), E1, AttendeeId("p-999")), NotOnRoster)
    membership.join(state, ctx(), E1, P1)
    unchanged(state, lambda: membership.join(state, ctx(), E1, C), InvalidTransition)


def test_deny_drops_the_waiting_endpoint() -> None:
    state = make_state()
    membership.join(state, ctx(), E1, P1)
    unchanged(state, lambda: membership.deny(state, ctx(), P1, P1), NotAuthorized)
    assert kinds(membership.deny(state, ctx(), C, P1)) == ["denied"]
    assert not state.endpoints
    unchanged(state, lambda: membership.deny(state, ctx(), C, P1), InvalidTransition)


def test_remove_revokes_and_cannot_target_clinicians() -> None:
    state = in_call()
    unchanged(state, lambda: membership.remove(state, ctx(), P1, P2), NotAuthorized)
    unchanged(state, lambda: membership.remove(state, ctx(), C, C), NotAuthorized)
    events = membership.remove(state, ctx(5), C, P1)
    assert kinds(events) == ["removed"] and events[0].endpoint == E2
    assert E2 not in state.endpoints and state.attendees[P1].removed
    unchanged(state, lambda: membership.join(state, ctx(6), E3, P1), TokenRevoked)
    unchanged(state, lambda: membership.remove(state, ctx(6), C, P1), InvalidTransition)


def test_removing_an_absent_attendee_still_revokes_their_link() -> None:
    state = in_call()
    events = membership.remove(state, ctx(5), C, P2)
    assert events[0].endpoint is None and state.attendees[P2].removed


def test_leave_records_every_seat() -> None:
    state = in_call()
    events = membership.leave(state, ctx(30), E2)
    assert kinds(events) == ["left"] and events[0].data == {"was": "admitted"}
    unchanged(state, lambda: membership.leave(state, ctx(31), E2), EndpointNotFound)


def test_resume_within_grace_keeps_admission_and_is_not_a_join() -> None:
    state = in_call()
    assert kinds(reconnect.disconnect(state, ctx(10), E2)) == ["disconnected"]
    assert not state.is_present(P1) and state.is_admitted(P1)
    unchanged(state, lambda: reconnect.disconnect(state, ctx(10), E2), InvalidTransition)
    events = reconnect.resume(state, ctx(10.4, node="n-2"), E2, GRACE, "conn-2")
    assert kinds(events) == ["resumed"] and events[0].data["takeover"] is False
    assert state.is_present(P1) and state.endpoints[E2].node == "n-2"


def test_resume_before_the_old_connection_closed_takes_the_endpoint_over() -> None:
    state = in_call()
    state.endpoints[E2].connection = "conn-1"
    events = reconnect.resume(state, ctx(5), E2, GRACE, "conn-2")
    assert kinds(events) == ["resumed"] and events[0].data["takeover"] is True
    # A resume credential must match, and is rotated by each resume.
    state.endpoints[E2].resume_hash = "h1"
    unchanged(
        state, lambda: reconnect.resume(state, ctx(5), E2, GRACE, "c", ("bad", "h2")), TokenInvalid
    )
    reconnect.resume(state, ctx(5), E2, GRACE, "conn-2", ("h1", "h2"))
    assert state.endpoints[E2].resume_hash == "h2"
    # The old connection's close arrives late: it is stale and changes nothing.
    unchanged(state, lambda: reconnect.disconnect(state, ctx(6), E2, "conn-1"), InvalidTransition)
    assert kinds(reconnect.disconnect(state, ctx(7), E2, "conn-2")) == ["disconnected"]


def test_after_grace_an_endpoint_expires_and_a_new_join_waits() -> None:
    state = in_call()
    reconnect.disconnect(state, ctx(10), E2)
    late = ctx(10.6)
    unchanged(state, lambda: reconnect.resume(state, late, E2, GRACE), ResumeExpired)
    unchanged(state, lambda: reconnect.expire(state, ctx(10.2), E2, GRACE), InvalidTransition)
    assert reconnect.expire(state, late, E2, GRACE) == []
    assert E2 not in state.endpoints
    membership.join(state, ctx(11), E3, P1)
    assert state.endpoints[E3].seats[P1].status is SeatStatus.WAITING


def test_auto_readmit_skips_the_waiting_room_for_returning_attendees() -> None:
    state = in_call()
    membership.leave(state, ctx(10), E2)
    lifecycle.set_auto_readmit(state, ctx(10), C, enabled=True)
    events = membership.join(state, ctx(11), E3, P1)
    assert kinds(events) == ["waiting", "admitted"] and events[1].actor == "system"


def test_lock_keeps_newcomers_out_but_not_clinicians() -> None:
    state = in_call()
    lifecycle.set_locked(state, ctx(2), C, locked=True)
    unchanged(state, lambda: membership.join(state, ctx(3), E3, P2), SessionLocked)
    membership.join(state, ctx(3), E3, P1)  # already admitted on e-2: a second device
    assert state.endpoints[E3].seats[P1].status is SeatStatus.ADMITTED


def test_capacity_counts_people_not_devices() -> None:
    state = make_state(SessionKind.GROUP, patients=4, capacity=2, clinicians=2)
    membership.join(state, ctx(), E1, C)
    for i, attendee in enumerate(("p-201", "p-202", "p-203")):
        membership.join(state, ctx(), EndpointId(f"e-p{i}"), AttendeeId(attendee))
    membership.admit(state, ctx(1), C, AttendeeId("p-201"))
    membership.admit(state, ctx(1), C, AttendeeId("p-202"))
    unchanged(state, lambda: membership.admit(state, ctx(1), C, AttendeeId("p-203")), SessionFull)
    # The same person on a second device does not take a second place.
    membership.join(state, ctx(2), EndpointId("e-again"), AttendeeId("p-201"))
    assert state.seated_count() == 2
    # Clinicians do not count either.
    membership.join(state, ctx(2), EndpointId("e-c2"), C2)
    assert state.seated_count() == 2


def test_shared_device_on_a_call_admits_the_partner_pending_attestation() -> None:
    state = in_call()
    events = membership.attach(state, ctx(3), E2, P2)
    assert kinds(events) == ["attached", "waiting", "admitted"]
    assert events[2].actor == P1 and events[2].data == {"shared_device": True}
    seat = state.endpoints[E2].seats[P2]
    assert seat.attached and not seat.attested and state.is_present(P2)
    unchanged(state, lambda: membership.attach(state, ctx(3), E2, P2), InvalidTransition)
    # The clinician attests: recorded once.
    assert kinds(membership.mark(state, ctx(4), C, E2, P2, present=True)) == ["marked_present"]
    assert seat.attested or state.endpoints[E2].seats[P2].attested
    unchanged(
        state, lambda: membership.mark(state, ctx(4), C, E2, P2, present=True), InvalidTransition
    )


def test_shared_device_while_waiting_waits_together() -> None:
    state = make_state(SessionKind.COUPLES)
    membership.join(state, ctx(), E1, P1)
    events = membership.attach(state, ctx(), E1, P2)
    assert kinds(events) == ["attached", "waiting"]
    events = membership.admit(state, ctx(1), C, P2)
    assert kinds(events) == ["admitted"]
    assert state.endpoints[E1].seats[P1].status is SeatStatus.WAITING


def test_shared_device_rules() -> None:
    state = in_call(SessionKind.GROUP)
    unchanged(state, lambda: membership.attach(state, ctx(), E2, C), NotAuthorized)
    unchanged(state, lambda: membership.attach(state, ctx(), E2, AttendeeId("p-9")), NotOnRoster)
    unchanged(state, lambda: membership.attach(state, ctx(), E3, P2), EndpointNotFound)
    membership.attach(state, ctx(), E2, P2)
    unchanged(state, lambda: membership.attach(state, ctx(), E2, AttendeeId("p-203")), DeviceFull)


def test_mark_absent_and_present_on_a_shared_device() -> None:
    state = in_call()
    membership.attach(state, ctx(3), E2, P2)
    assert kinds(membership.mark(state, ctx(5), P1, E2, P2, present=False)) == ["marked_absent"]
    assert not state.is_present(P2) and state.is_admitted(P2)
    unchanged(
        state, lambda: membership.mark(state, ctx(5), P1, E2, P2, present=False), InvalidTransition
    )
    assert kinds(membership.mark(state, ctx(8), P1, E2, P2, present=True)) == ["marked_present"]
    assert state.is_present(P2)
    # A single-attendee endpoint cannot be marked.
    unchanged(
        state, lambda: membership.mark(state, ctx(9), C, E1, C, present=False), InvalidTransition
    )


def test_only_the_device_or_a_clinician_marks_and_detaches() -> None:
    state = make_state(SessionKind.GROUP)
    membership.join(state, ctx(), E1, C)
    membership.join(state, ctx(), E2, P1)
    membership.admit(state, ctx(), C, P1)
    membership.attach(state, ctx(), E2, P2)
    p3 = AttendeeId("p-203")
    membership.join(state, ctx(), E3, p3)
    membership.admit(state, ctx(), C, p3)
    unchanged(
        state, lambda: membership.mark(state, ctx(), p3, E2, P2, present=False), NotAuthorized
    )
    unchanged(state, lambda: membership.detach(state, ctx(), p3, E2, P2), NotAuthorized)
    assert kinds(membership.detach(state, ctx(9), C, E2, P2)) == ["detached"]
    unchanged(state, lambda: membership.detach(state, ctx(9), C, E2, P1), InvalidTransition)


def test_dropped_shared_device_disconnects_both() -> None:
    state = in_call()
    membership.attach(state, ctx(3), E2, P2)
    events = reconnect.disconnect(state, ctx(9), E2)
    assert sorted(e.attendee or "" for e in events) == [P1, P2]
    events = reconnect.resume(state, ctx(9.2), E2, GRACE)
    assert kinds(events) == ["resumed", "resumed"]


def test_sequences_are_contiguous() -> None:
    state = in_call()
    membership.attach(state, ctx(3), E2, P2)
    events = lifecycle.end(state, ctx(60), C)
    assert [e.seq for e in events] == list(range(events[0].seq, state.seq + 1))


def test_modality_changes_are_recorded_once() -> None:
    state = in_call()
    unchanged(
        state, lambda: membership.report_modality(state, ctx(), E2, "video"), InvalidTransition
    )
    unchanged(
        state, lambda: membership.report_modality(state, ctx(), E2, "smell"), InvalidTransition
    )
    unchanged(
        state, lambda: membership.report_modality(state, ctx(), E3, "audio"), EndpointNotFound
    )
    events = membership.report_modality(state, ctx(4), E2, "audio")
    assert kinds(events) == ["modality"] and events[0].data == {"modality": "audio"}
    assert events[0].endpoint == E2 and events[0].attendee is None
