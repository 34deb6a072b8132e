"""The program store's contract (enrollments, the check-in queue and its log), run against the
embedded store and a real Redis alike, with two clients of one Redis for the races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from rooms import checkins
from rooms.checkins import (
    CheckinAction,
    CheckinId,
    CheckinRequest,
    CheckinStatus,
    Reason,
    new_checkin_id,
)
from rooms.enrollment import CareTeamMember, Enrollment
from rooms.errors import CheckinCancelled, CheckinNotFound, CheckinTaken, NotAuthorized
from rooms.ids import AttendeeId, SessionId, new_session_id
from rooms.kinds import CareFunction, SessionKind
from rooms.store.program import MemoryProgramStore, ProgramStore
from rooms.store.program_redis import RedisProgramStore
from tests.conftest import _delete_prefix

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
C1, C2 = AttendeeId("c-1"), AttendeeId("c-2")


@pytest.fixture(params=["memory", "redis"])
async def pair(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[tuple[ProgramStore, ProgramStore]]:
    """Two clients of one program store (the embedded one: the same object twice)."""
    if request.param == "memory":
        memory = MemoryProgramStore()
        yield memory, memory
        return
    url: str = request.getfixturevalue("redis_url")
    stores = [RedisProgramStore.from_url(url, prefix=redis_prefix) for _ in range(2)]
    try:
        yield stores[0], stores[1]
    finally:
        for opened in stores:
            await opened.close()
        await _delete_prefix(url, redis_prefix)


def a_request(
    patient: str = "p-1", *, at: datetime = T0, partner: str | None = None
) -> CheckinRequest:
    return CheckinRequest(
        id=new_checkin_id(),
        patient=AttendeeId(patient),
        partner=AttendeeId(partner) if partner else None,
        kind=SessionKind.COUPLES if partner else SessionKind.INDIVIDUAL,
        reason=Reason.CHECK_IN,
        team=(C1, C2),
        requested_at=at,
    )


async def queued(store: ProgramStore, req: CheckinRequest) -> CheckinRequest:
    return await store.add_request(req, checkins.requested(req))


async def test_enrollments_are_stored_replaced_and_listed(
    pair: tuple[ProgramStore, ProgramStore],
) -> None:
    one, two = pair
    assert await one.enrollment(AttendeeId("p-1")) is None
    team = (CareTeamMember(clinician="c-1", function=CareFunction.COUNSELOR, display_name="Dr. R"),)
    await one.put_enrollment(Enrollment(patient="p-1", care_team=team))
    await one.put_enrollment(Enrollment(patient="p-2", care_team=team))
    await one.put_enrollment(Enrollment(patient="p-1", care_team=team, link="abc"))
    found = await two.enrollment(AttendeeId("p-1"))
    assert found is not None and found.link == "abc" and found.care_team == team
    assert [e.patient for e in await two.enrollments()] == ["p-1", "p-2"]


async def test_a_request_is_queued_once_per_person(pair: tuple[ProgramStore, ProgramStore]) -> None:
    one, two = pair
    first = await queued(one, a_request("p-1", partner="p-2"))
    # The partner (or a second tap) asks again: the same request, nothing new recorded.
    again = await queued(two, a_request("p-2", at=T0 + timedelta(seconds=1)))
    assert again == first
    other = await queued(two, a_request("p-3", at=T0 + timedelta(seconds=2)))
    assert [r.id for r in await one.waiting()] == [first.id, other.id]
    assert (await two.open_request(AttendeeId("p-2"))) == first
    records = await one.records()
    assert [(r.seq, r.action, r.request) for r in records] == [
        (1, CheckinAction.REQUESTED, first.id),
        (2, CheckinAction.REQUESTED, other.id),
    ]


async def test_two_clinicians_picking_at_the_same_instant_exactly_one_wins(
    pair: tuple[ProgramStore, ProgramStore],
) -> None:
    one, two = pair
    for round_ in range(10):
        req = await queued(one, a_request(f"p-{round_}"))
        sessions = {C1: new_session_id(), C2: new_session_id()}

        results = await asyncio.gather(
            pick(one, req.id, C1, sessions[C1]), pick(two, req.id, C2, sessions[C2])
        )
        won = [r for r in results if isinstance(r, CheckinRequest)]
        assert len(won) == 1 and results.count("checkin_taken") == 1, results
        stored = await two.request(req.id)
        assert stored == won[0] and stored.status is CheckinStatus.TAKEN
        assert stored.session == sessions[AttendeeId(stored.taken_by or "")]
    taken = [r for r in await one.records() if r.action is CheckinAction.TAKEN]
    assert len(taken) == 10  # one pick-up recorded per request, never two
    assert all(r.wait_ms == 120_000 for r in taken)
    assert await one.waiting() == []


async def pick(
    store: ProgramStore, checkin: CheckinId, who: AttendeeId, session: SessionId
) -> CheckinRequest | str:
    """``who`` picks the request up into ``session``: the request, or the refusal's code."""
    try:
        return await store.move(
            checkin, lambda r: checkins.take(r, who, session, T0 + timedelta(minutes=2))
        )
    except CheckinTaken as exc:
        return exc.code


async def test_a_cancelled_request_picked_up_late_is_refused_and_recorded_once(
    pair: tuple[ProgramStore, ProgramStore],
) -> None:
    one, two = pair
    req = await queued(one, a_request())
    at = T0 + timedelta(seconds=30)
    cancelled = await one.move(req.id, lambda r: checkins.cancel(r, "p-1", at))
    assert cancelled.status is CheckinStatus.CANCELLED and await one.waiting() == []
    assert await two.open_request(AttendeeId("p-1")) is None
    with pytest.raises(CheckinCancelled):
        await two.move(req.id, lambda r: checkins.take(r, C1, SessionId("s-x"), at))
    with pytest.raises(CheckinCancelled):
        await two.move(req.id, lambda r: checkins.cancel(r, "p-1", at))
    assert [r.action for r in await one.records()] == [
        CheckinAction.REQUESTED,
        CheckinAction.CANCELLED,
    ]
    assert (await one.records())[-1].wait_ms == 30_000


async def test_refused_moves_change_nothing(pair: tuple[ProgramStore, ProgramStore]) -> None:
    one, _ = pair
    req = await queued(one, a_request())
    with pytest.raises(NotAuthorized):  # not on the care team
        await one.move(req.id, lambda r: checkins.take(r, AttendeeId("c-9"), SessionId("s"), T0))
    with pytest.raises(NotAuthorized):  # someone else's request
        await one.move(req.id, lambda r: checkins.cancel(r, "p-9", T0))
    with pytest.raises(CheckinNotFound):
        await one.move(new_checkin_id(), lambda r: checkins.cancel(r, "p-1", T0))
    assert await one.request(req.id) == req
    assert len(await one.records()) == 1


async def test_requests_between_reads_a_range_of_days(
    pair: tuple[ProgramStore, ProgramStore],
) -> None:
    one, two = pair
    early = await queued(one, a_request("p-1", at=T0))
    late = await queued(one, a_request("p-2", at=T0 + timedelta(days=1)))
    assert await two.requests_between(T0, T0 + timedelta(days=1)) == [early]
    assert await two.requests_between(T0, T0 + timedelta(days=2)) == [early, late]
