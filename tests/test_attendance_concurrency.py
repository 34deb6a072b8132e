"""Many endpoints joining and leaving at once, on two store clients: the ledger holds exactly one
admission and one leave per attendee interval, and the summaries equal the hand-computed minutes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from rooms import lifecycle, membership
from rooms.attendance.rules import load_rules_file
from rooms.attendance.summary import rows_of, summarize
from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.kinds import GroupPurpose, Role, SessionKind
from rooms.ledger import EventKind
from rooms.roster import RosterEntry
from rooms.service import Change, CreateSession, Rooms
from rooms.store import SessionStore

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
RULES = load_rules_file(Path(__file__).parent.parent / "config" / "billing.toml")
HOST = AttendeeId("c-1")
PATIENTS = [AttendeeId(f"p-{i:02d}") for i in range(12)]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def phase(clock: Clock, minute: float, calls: list[tuple[Rooms, SessionId, Change]]) -> None:
    """Everything in ``calls`` at once, at ``minute`` past the start."""
    clock.now = T0 + timedelta(minutes=minute)
    await asyncio.gather(*(rooms.apply(session, change) for rooms, session, change in calls))


async def test_concurrent_group_attendance_is_exact(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    clock = Clock()
    a = Rooms(store_pair[0], node=NodeId("n-a"), clock=clock)
    b = Rooms(store_pair[1], node=NodeId("n-b"), clock=clock)
    roster = [RosterEntry(attendee=HOST, role=Role.CLINICIAN)]
    roster += [RosterEntry(attendee=p, role=Role.PATIENT) for p in PATIENTS]
    req = CreateSession(
        kind=SessionKind.GROUP,
        roster=roster,
        purpose=GroupPurpose.THERAPY_GROUP,
        planned_minutes=90,
    )
    session = (await a.create_session(req, created_by="admin-1")).spec.id
    node = [a, b]

    def each(make: Callable[[AttendeeId], Change]) -> list[tuple[Rooms, SessionId, Change]]:
        """One change per patient, alternating between the two nodes' store clients."""
        return [(node[i % 2], session, make(p)) for i, p in enumerate(PATIENTS)]

    await phase(
        clock,
        0,
        [(a, session, partial(membership.join, endpoint=EndpointId("e-host"), attendee=HOST))],
    )
    await phase(
        clock,
        1,
        each(lambda p: partial(membership.join, endpoint=EndpointId(f"e-{p}"), attendee=p)),
    )
    await phase(clock, 2, each(lambda p: partial(membership.admit, actor=HOST, attendee=p)))
    # Patient i leaves at 30 + i minutes; then everyone comes back at 70 and stays to the end.
    for i, p in enumerate(PATIENTS):
        await phase(
            clock,
            30 + i,
            [(node[i % 2], session, partial(membership.leave, endpoint=EndpointId(f"e-{p}")))],
        )
    await phase(
        clock,
        70,
        each(lambda p: partial(membership.join, endpoint=EndpointId(f"e2-{p}"), attendee=p)),
    )
    await phase(clock, 71, each(lambda p: partial(membership.admit, actor=HOST, attendee=p)))
    await phase(clock, 90, [(b, session, partial(lifecycle.end, actor=HOST))])

    events = await a.events(session)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    admitted = Counter(e.attendee for e in events if e.kind is EventKind.ADMITTED)
    left = Counter(e.attendee for e in events if e.kind is EventKind.LEFT)
    for p in PATIENTS:
        assert admitted[p] == 2 and left[p] == 2, p  # two intervals each, nothing more
    (summary,) = summarize(
        events, {session: await a.store.spec(session)}, tz="America/New_York", rules=RULES
    )
    rows = {r.attendee: r for r in rows_of([summary])}
    for i, p in enumerate(PATIENTS):
        # Present 2 -> 30+i, then 71 -> 90.
        expected = timedelta(minutes=(30 + i - 2) + (90 - 71))
        assert rows[p].present == expected, p
        assert rows[p].suggested_code == "90853"
