"""Races through the real stores: capacity and "one admission per attendee" hold under load.

Every test runs on the embedded store and on real Redis with two independent clients (two
nodes' worth of connections and caches), with many coroutines at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial

from rooms import membership
from rooms.errors import HomeroomError, InvalidTransition, SessionFull
from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.kinds import GroupPurpose, Role, SessionKind
from rooms.ledger import EventKind
from rooms.roster import RosterEntry
from rooms.service import Change, CreateSession, Rooms
from rooms.store import SessionStore

PATIENTS = [AttendeeId(f"p-{i:03d}") for i in range(20)]
CLINICIANS = [AttendeeId("c-1"), AttendeeId("c-2")]


async def group_session(rooms: Rooms, capacity: int) -> SessionId:
    roster = [RosterEntry(attendee=c, role=Role.CLINICIAN) for c in CLINICIANS]
    roster += [RosterEntry(attendee=p, role=Role.PATIENT) for p in PATIENTS]
    req = CreateSession(
        kind=SessionKind.GROUP, roster=roster, purpose=GroupPurpose.THERAPY_GROUP, capacity=capacity
    )
    state = await rooms.create_session(req, created_by="c-1")
    return state.spec.id


def two_nodes(pair: tuple[SessionStore, SessionStore]) -> tuple[Rooms, Rooms]:
    return Rooms(pair[0], node=NodeId("n-a")), Rooms(pair[1], node=NodeId("n-b"))


async def run_all(calls: list[tuple[Rooms, Change]], session: SessionId) -> list[object]:
    return await asyncio.gather(
        *(rooms.apply(session, change) for rooms, change in calls), return_exceptions=True
    )


async def test_concurrent_joins_all_land_in_the_waiting_room(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    a, b = two_nodes(store_pair)
    session = await group_session(a, capacity=12)
    calls: list[tuple[Rooms, Change]] = [
        ((a, b)[i % 2], partial(membership.join, endpoint=EndpointId(f"e-{p}"), attendee=p))
        for i, p in enumerate(PATIENTS)
    ]
    results = await run_all(calls, session)
    assert not [r for r in results if isinstance(r, BaseException)]
    events = await a.events(session)
    counts = Counter(e.kind for e in events)
    assert counts[EventKind.WAITING] == 20 and counts[EventKind.SESSION_OPENED] == 1
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    state = await b.get_session(session)
    assert len(state.endpoints) == 20 and state.version == 20


async def test_capacity_holds_when_admissions_race(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    a, b = two_nodes(store_pair)
    session = await group_session(a, capacity=12)
    for p in PATIENTS:
        await a.apply(session, partial(membership.join, endpoint=EndpointId(f"e-{p}"), attendee=p))
    calls: list[tuple[Rooms, Change]] = [
        ((a, b)[i % 2], partial(membership.admit, actor=CLINICIANS[i % 2], attendee=p))
        for i, p in enumerate(PATIENTS)
    ]
    results = await run_all(calls, session)
    ok = [r for r in results if not isinstance(r, BaseException)]
    full = [r for r in results if isinstance(r, SessionFull)]
    assert len(ok) == 12 and len(full) == 8, results
    state = await a.get_session(session)
    assert state.seated_count() == 12
    admitted = [e.attendee for e in await b.events(session) if e.kind is EventKind.ADMITTED]
    assert len(admitted) == 12 and len(set(admitted)) == 12


async def test_one_admission_per_attendee_when_clinicians_race(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    a, b = two_nodes(store_pair)
    session = await group_session(a, capacity=12)
    target = PATIENTS[0]
    await a.apply(session, partial(membership.join, endpoint=EndpointId("e-x"), attendee=target))
    calls: list[tuple[Rooms, Change]] = [
        ((a, b)[i % 2], partial(membership.admit, actor=CLINICIANS[i % 2], attendee=target))
        for i in range(16)
    ]
    results = await run_all(calls, session)
    errors = [r for r in results if isinstance(r, HomeroomError)]
    assert len(errors) == 15 and all(isinstance(r, InvalidTransition) for r in errors)
    admitted = [e for e in await a.events(session) if e.kind is EventKind.ADMITTED]
    assert len(admitted) == 1 and admitted[0].attendee == target
