"""The audit trail: hash-chained ledgers, chain verification, the staff-action view and the
admin audit log's entries."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rooms import controls, lifecycle, membership
from rooms.audit import (
    ATTEST,
    HASH_MISMATCH,
    MISSING_HASH,
    PREV_MISMATCH,
    SEQUENCE_GAP,
    AdminAction,
    AdminAuditEntry,
    audit_entries,
    next_admin_entry,
    session_audit,
    verify_admin_chain,
    verify_chain,
    verify_session,
)
from rooms.errors import SessionNotFound
from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.kinds import SessionKind
from rooms.ledger import (
    Ctx,
    EventKind,
    LedgerEvent,
    canonical_json,
    emit,
    event_hash,
    utc_stamp,
)
from rooms.state import SessionState
from rooms.store import SessionStore
from tests.factories import E1, E2, E3, P1, P2, T0, C, ctx, make_state
from tests.test_archive import DAY, local, play_session, rooms_on

# The canonical form is a stored format: archives written today must verify in six years.


def test_canonical_json_is_pinned() -> None:
    fields: dict[str, object] = {
        "seq": 3,
        "at": datetime(2026, 11, 2, 10, 0, tzinfo=timezone(timedelta(hours=-5))),
        "session": SessionId("s-1"),
        "kind": EventKind.MUTED,
        "attendee": AttendeeId("p-1"),
        "endpoint": None,
        "node": NodeId("n-1"),
        "actor": "c-1",
        "data": {"by": "clinician", "n": 1, "ok": True, "z": None, "é": "ü"},
    }
    assert canonical_json(fields) == (
        '{"actor":"c-1","at":"2026-11-02T15:00:00.000000Z","attendee":"p-1",'
        '"data":{"by":"clinician","n":1,"ok":true,"z":null,"\\u00e9":"\\u00fc"},'
        '"endpoint":null,"kind":"muted","node":"n-1","seq":3,"session":"s-1"}'
    )


def test_canonical_json_is_the_standard_librarys_sorted_compact_ascii_json() -> None:
    rng = random.Random(17)
    texts = ["", "p-1", "é", "ü\u2028", '\x00\n"', "日本", "\ud83d\ude00", "a" * 40]
    scalars: list[object] = [*texts, 0, -7, 2**70, True, False, None, EventKind.LEFT]
    for _ in range(2_000):
        fields: dict[str, object] = {rng.choice(texts): rng.choice(scalars) for _ in range(5)}
        fields["data"] = {rng.choice(texts): rng.choice(scalars) for _ in range(3)}
        fields["at"] = T0 + timedelta(microseconds=rng.randrange(10**12))
        want = json.dumps(
            {**fields, "at": utc_stamp(fields["at"])},  # type: ignore[arg-type]
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        assert canonical_json(fields) == want


def test_utc_stamp_is_the_instant_in_utc_with_six_fraction_digits() -> None:
    rng = random.Random(23)
    zero = timezone(timedelta(0), "UTC+0")  # UTC, but not the singleton
    zones = [UTC, zero, timezone(timedelta(hours=-5)), timezone(timedelta(minutes=330))]
    for _ in range(5_000):
        naive = datetime(2, 1, 1) + timedelta(microseconds=rng.randrange(3 * 10**17))
        instant = naive.replace(microsecond=rng.choice((0, naive.microsecond)))
        instant = instant.replace(tzinfo=rng.choice(zones))
        utc = instant.astimezone(UTC).replace(tzinfo=None)
        assert utc_stamp(instant) == utc.isoformat(timespec="microseconds") + "Z"


def test_event_hash_is_sha256_of_prev_and_canonical_json() -> None:
    state = make_state()
    first = emit(state, ctx(), EventKind.SESSION_CREATED, actor="c-17", session_kind="individual")
    second = emit(state, ctx(1), EventKind.SESSION_LOCKED, actor="c-17")
    body = (
        '{"actor":"c-17","at":"2026-11-02T15:01:00.000000Z","attendee":null,"data":{},'
        '"endpoint":null,"kind":"session_locked","node":"n-1","seq":2,"session":"s-test"}'
    )
    assert first.prev == ""
    assert second.prev == first.hash
    assert second.hash == hashlib.sha256((str(first.hash) + body).encode()).hexdigest()
    assert state.ledger_head == second.hash


def test_the_hash_ignores_how_an_instant_is_written() -> None:
    """The same instant in another offset, or after a JSON round trip, hashes the same."""
    state = make_state()
    here = Ctx(now=T0.astimezone(timezone(timedelta(hours=5, minutes=30))), node=NodeId("n-1"))
    event = emit(state, here, EventKind.SESSION_OPENED)
    again = LedgerEvent.model_validate_json(event.model_dump_json())
    in_utc = event.model_copy(update={"at": T0})
    assert event_hash(again, "") == event.hash == event_hash(in_utc, "")


def test_an_emitted_event_carries_the_hash_of_what_was_stored() -> None:
    """emit hashes its arguments before validating them: the stored event, read back, must
    hash the same for every kind of data value (and a kind given as its plain value)."""
    state = make_state()
    data = {"text": 'a\u00e9"', "count": 3, "big": 2**63, "flag": True, "none": None}
    for kind in (EventKind.MODALITY, "unmuted"):
        prev = state.ledger_head
        event = emit(state, ctx(), kind, attendee=P1, endpoint=E1, actor="c-17", **data)  # type: ignore[arg-type]
        stored = LedgerEvent.model_validate_json(event.model_dump_json())
        assert event_hash(stored, prev) == event.hash == state.ledger_head
        assert stored.data == data and stored.kind == kind


# Verification of a session's chain.


def played() -> list[LedgerEvent]:
    """A real ledger: waiting room, admission, mute, shared device, end."""
    state = make_state(SessionKind.COUPLES)
    events = [emit(state, ctx(), EventKind.SESSION_CREATED, actor="c-17")]
    events += membership.join(state, ctx(), E1, C)
    events += membership.join(state, ctx(1), E2, P1)
    events += membership.admit(state, ctx(2), C, P1)
    events += membership.attach(state, ctx(3), E2, P2)
    events += membership.mark(state, ctx(4), C, E2, P2, present=True)
    events += controls.mute(state, ctx(5), C, P1)
    events += lifecycle.end(state, ctx(50), C)
    return [LedgerEvent.model_validate_json(e.model_dump_json()) for e in events]


def test_a_played_ledger_verifies() -> None:
    events = played()
    report = verify_chain(events)
    assert report.ok and report.first_broken is None
    assert report.count == len(events)
    assert report.chain == "s-test"
    assert report.head == events[-1].hash


def test_an_empty_ledger_verifies() -> None:
    assert verify_chain([]).ok


def broken_at(events: list[LedgerEvent]) -> tuple[int, str]:
    report = verify_chain(events)
    assert not report.ok and report.first_broken is not None
    assert report.count == report.first_broken.seq - 1
    return report.first_broken.seq, report.first_broken.reason


def test_a_removed_event_is_a_sequence_gap_at_its_seq() -> None:
    events = played()
    del events[3]
    assert broken_at(events) == (4, SEQUENCE_GAP)


def test_a_duplicated_or_swapped_event_breaks_the_sequence() -> None:
    events = played()
    assert broken_at([*events[:4], events[3], *events[4:]]) == (5, SEQUENCE_GAP)
    events[2], events[3] = events[3], events[2]
    assert broken_at(events) == (3, SEQUENCE_GAP)


def test_changed_content_is_a_hash_mismatch() -> None:
    events = played()
    events[4] = events[4].model_copy(update={"actor": "c-99"})
    assert broken_at(events) == (5, HASH_MISMATCH)


def test_a_relinked_event_is_a_prev_mismatch() -> None:
    """Recomputing a changed event's hash does not help: the next event still links to the
    old one."""
    events = played()
    changed = events[4].model_copy(update={"actor": "c-99"})
    events[4] = changed.model_copy(update={"hash": event_hash(changed, str(changed.prev))})
    assert broken_at(events) == (6, PREV_MISMATCH)


def test_events_without_hashes_are_missing_hashes() -> None:
    """Ledgers written before chaining (or built by hand) verify as broken at their start."""
    bare = LedgerEvent(seq=1, at=T0, session=SessionId("s-1"), kind=EventKind.SESSION_CREATED)
    assert broken_at([bare]) == (1, MISSING_HASH)


def test_an_event_of_another_session_breaks_the_chain() -> None:
    events = played()
    other = SessionState(spec=make_state().spec.model_copy(update={"id": SessionId("s-other")}))
    foreign = [emit(other, ctx(), EventKind.SESSION_CREATED) for _ in range(2)]
    assert broken_at([*events[:1], foreign[1]]) == (2, PREV_MISMATCH)
    forged = foreign[1].model_copy(update={"prev": events[0].hash})
    assert broken_at([events[0], forged]) == (2, HASH_MISMATCH)


# Property: any ledger emit() builds verifies; any single change breaks it at that event.

_ids = st.none() | st.sampled_from(["p-1", "p-2", "c-1", "e-1", "system"])
_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
_offsets = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14))])
_emits = st.lists(
    st.tuples(
        st.sampled_from(list(EventKind)),
        _ids,
        _ids,
        _ids,
        st.dictionaries(st.text("abcdefgh", min_size=1, max_size=4), _scalars, max_size=3),
        st.integers(0, 10**9),
        _offsets,
    ),
    min_size=1,
    max_size=12,
)
_FIELDS = ("seq", "at", "session", "kind", "attendee", "endpoint", "node", "actor", "data")


def emit_all(specs: list[tuple[Any, ...]]) -> tuple[SessionState, list[LedgerEvent]]:
    state = make_state()
    events = []
    for kind, attendee, endpoint, actor, data, micros, offset in specs:
        now = (T0 + timedelta(microseconds=micros)).astimezone(offset)
        here = Ctx(now=now, node=NodeId("n-1"))
        event = emit(
            state,
            here,
            kind,
            attendee=None if attendee is None else AttendeeId(attendee),
            endpoint=None if endpoint is None else EndpointId(endpoint),
            actor=actor,
            **data,
        )
        # Through JSON, as a store keeps it.
        events.append(LedgerEvent.model_validate_json(event.model_dump_json()))
    return state, events


@settings(max_examples=200, deadline=None)
@given(_emits)
def test_any_sequence_of_emits_verifies(specs: list[tuple[Any, ...]]) -> None:
    state, events = emit_all(specs)
    report = verify_chain(events)
    assert report.ok
    assert report.count == len(events) == state.seq
    assert report.head == state.ledger_head


_KINDS = list(EventKind)
#: For each field, a change to a different value (``pick`` varies it).
_CHANGES: dict[str, Callable[[Any, int], Any]] = {
    "seq": lambda v, pick: v + 1 + pick % 5 if pick % 2 else v - 1 - pick % 5,
    "at": lambda v, pick: v + timedelta(microseconds=1 + pick % 1000),
    "session": lambda v, pick: v + "x",
    "kind": lambda v, pick: _KINDS[(_KINDS.index(v) + 1 + pick % 5) % len(_KINDS)],
    "data": lambda v, pick: {**v, "zz": pick},
    "prev": lambda v, pick: "0" * 64 if v != "0" * 64 else "",
    "hash": lambda v, pick: "f" * 64,
}


def mutated(event: LedgerEvent, field: str, pick: int) -> LedgerEvent:
    """``event`` with ``field`` changed to a different value (ids: set, cleared or altered)."""
    value = getattr(event, field)
    if field in _CHANGES:
        new = _CHANGES[field](value, pick)
    else:
        new = "x" if value is None else (None if pick % 2 else value + "x")
    return event.model_copy(update={field: new})


@settings(max_examples=300, deadline=None)
@given(_emits, st.data())
def test_any_single_field_change_breaks_the_chain_at_that_event(
    specs: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    _, events = emit_all(specs)
    index = data.draw(st.integers(0, len(events) - 1))
    field = data.draw(st.sampled_from([*_FIELDS, "prev", "hash"]))
    events[index] = mutated(events[index], field, data.draw(st.integers(0, 10**6)))
    report = verify_chain(events)
    assert not report.ok and report.first_broken is not None
    assert report.first_broken.seq == index + 1
    assert report.count == index


# The staff-action view.


def test_audit_entries_list_staff_actions_only() -> None:
    events = played()
    state = make_state(SessionKind.COUPLES)
    entries = audit_entries(events, state.spec)
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("c-17", "create", None),
        ("c-17", "admit", P1),
        ("c-17", ATTEST, P2),
        ("c-17", "mute", P1),
        ("c-17", "end", None),
    ]
    admit = entries[1]
    source = next(e for e in events if e.seq == admit.seq)
    assert (admit.at, admit.endpoint, admit.hash) == (source.at, E2, source.hash)
    assert entries[3].detail == {"by": "clinician"}


def test_audit_entries_cover_every_control() -> None:
    state = make_state(SessionKind.GROUP, patients=3)
    events = membership.join(state, ctx(), E1, C)
    events += membership.join(state, ctx(1), E2, P1)
    events += membership.join(state, ctx(1), E3, P2)
    events += membership.join(state, ctx(1), EndpointId("e-4"), AttendeeId("p-203"))
    events += membership.admit(state, ctx(2), C, P1)
    events += membership.deny(state, ctx(2), C, P2)
    events += membership.admit(state, ctx(2), C, AttendeeId("p-203"))
    events += controls.lock_mute(state, ctx(3), C, P1, locked=True)
    events += controls.lock_mute(state, ctx(4), C, P1, locked=False)
    events += controls.unmute(state, ctx(4), C, P1)
    events += lifecycle.set_locked(state, ctx(5), C, locked=True)
    events += lifecycle.set_locked(state, ctx(6), C, locked=False)
    events += membership.remove(state, ctx(7), C, AttendeeId("p-203"))
    events += membership.leave(state, ctx(8), E2)  # a patient's own action: not listed
    events += lifecycle.end(state, ctx(9), "system")  # not a clinician's action
    actions = [(e.action, e.target) for e in audit_entries(events, state.spec)]
    assert actions == [
        ("admit", P1),
        ("deny", P2),
        ("admit", AttendeeId("p-203")),
        ("mute", P1),
        ("lock_mute", P1),
        ("unlock_mute", P1),
        ("unmute", P1),
        ("lock", None),
        ("unlock", None),
        ("remove", AttendeeId("p-203")),
    ]


def test_marking_an_attested_partner_present_again_is_not_an_attestation() -> None:
    state = make_state(SessionKind.COUPLES)
    events = membership.join(state, ctx(), E1, C)
    events += membership.join(state, ctx(1), E2, P1)
    events += membership.admit(state, ctx(2), C, P1)
    events += membership.attach(state, ctx(3), E2, P2)
    events += membership.mark(state, ctx(4), C, E2, P2, present=True)
    events += membership.mark(state, ctx(5), C, E2, P2, present=False)
    events += membership.mark(state, ctx(6), C, E2, P2, present=True)
    actions = [e.action for e in audit_entries(events, state.spec)]
    assert actions == ["admit", ATTEST, "mark_absent", "mark_present"]


# The admin audit log's entries.


def admin_log(count: int) -> list[AdminAuditEntry]:
    entries: list[AdminAuditEntry] = []
    for n in range(count):
        last = entries[-1] if entries else None
        entries.append(
            next_admin_entry(
                last.seq if last else 0,
                last.hash if last else "",
                actor="admin-1",
                action=AdminAction.ATTENDANCE_EXPORT,
                detail={"from": "2026-11-01", "to": "2026-11-08", "format": "csv", "n": n},
                at=T0 + timedelta(minutes=n),
            )
        )
    return entries


def test_admin_entries_chain_and_verify() -> None:
    entries = admin_log(4)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev == "" and entries[1].prev == entries[0].hash
    report = verify_admin_chain(entries)
    assert report.ok and report.count == 4 and report.chain == "admin"


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        ({"detail": {"format": "fhir"}}, HASH_MISMATCH),
        ({"actor": "admin-2"}, HASH_MISMATCH),
        ({"at": T0}, HASH_MISMATCH),
        ({"prev": "0" * 64}, PREV_MISMATCH),
        ({"seq": 9}, SEQUENCE_GAP),
    ],
)
def test_a_modified_admin_entry_breaks_the_chain(update: dict[str, Any], reason: str) -> None:
    entries = admin_log(4)
    entries[2] = entries[2].model_copy(update=update)
    report = verify_admin_chain(entries)
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (3, reason)


@pytest.mark.parametrize(
    ("actor", "action"),
    [("someone@clinic.example", "audit.read"), ("admin-1", "Export Everything"), ("", "x")],
)
def test_admin_entries_refuse_non_pseudonymous_actors_and_odd_actions(
    actor: str, action: str
) -> None:
    with pytest.raises(ValidationError):
        next_admin_entry(0, "", actor=actor, action=action, detail={}, at=T0)


def test_admin_entries_round_trip_through_json() -> None:
    entries = [
        AdminAuditEntry.model_validate(json.loads(e.model_dump_json())) for e in admin_log(3)
    ]
    assert verify_admin_chain(entries).ok


# Against a store.


async def test_a_stored_session_verifies_and_lists_its_staff_actions(store: SessionStore) -> None:
    rooms, clock = rooms_on(store)
    sid = await play_session(rooms, clock, local(DAY, 10))
    report = await verify_session(store, sid)
    assert report.ok and report.chain == sid
    assert report.count == (await store.get(sid)).seq
    entries = await session_audit(store, sid)
    assert [e.action for e in entries] == [
        "create",
        "admit",
        ATTEST,
        "mute",
        "lock_mute",
        "unlock_mute",
        "unmute",
        "mark_absent",
        "mark_present",
        "lock",
        "unlock",
        "end",
    ]
    assert {e.actor for e in entries} == {"c-17"}


async def test_an_unknown_session_has_an_empty_chain_and_no_audit(store: SessionStore) -> None:
    report = await verify_session(store, SessionId("s-nobody"))
    assert report.ok and report.count == 0 and report.chain == "s-nobody"
    with pytest.raises(SessionNotFound):
        await session_audit(store, SessionId("s-nobody"))
