"""A clinician's deny sticks to the person until a clinician admits them: no other device, no
partner's shared device and no auto-readmit lets them in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import pytest

from rooms import lifecycle, membership
from rooms.ids import AttendeeId, EndpointId
from rooms.ledger import EventKind, LedgerEvent
from rooms.store import SessionStore
from tests.signaling_harness import Client, Node, create, link, until

C, P1, P2 = "c-17", "p-201", "p-202"


@pytest.fixture
async def node(store: SessionStore) -> AsyncIterator[Node]:
    started = await Node(store).start()
    yield started
    await started.stop()


def admitted(events: list[LedgerEvent], who: str) -> list[LedgerEvent]:
    return [e for e in events if e.kind is EventKind.ADMITTED and e.attendee == who]


async def test_a_denied_partner_is_not_let_in_through_the_other_partners_device(
    node: Node,
) -> None:
    state = await create(node.rooms, "couples", C, P1, P2)
    session = state.spec.id
    host = await Client(node.url).connect(token=link(state, C))
    device = await Client(node.url).connect(token=link(state, P1))
    assert (await host.call("admit", {"attendee": P1}))["ok"] is True
    phone = await Client(node.url).connect(token=link(state, P2))
    assert (await host.call("deny", {"attendee": P2}))["ok"] is True
    await until(lambda: phone.byes == [{"reason": "denied", "detail": ""}])

    # P1's device, in the call, adds P2 by P2's own link: P2 waits there for the clinician.
    assert (await device.call("attach", {"token": link(state, P2)}))["ok"] is True
    after = await node.rooms.get_session(session)
    seat = after.endpoints[EndpointId(device.endpoint)].seats[AttendeeId(P2)]
    assert seat.status == "waiting" and not after.is_admitted(AttendeeId(P2))
    present = {"attendee": P2, "present": True}
    assert (await device.call("mark", present))["error"] == "invalid_transition"
    assert not admitted(await node.rooms.events(session), P2)
    await until(
        lambda: any(
            a["attendee"] == P2 and a["status"] == "waiting"
            for e in host.room["endpoints"]
            for a in e["attendees"]
        )
    )

    # A clinician's admit lifts it.
    assert (await host.call("admit", {"attendee": P2}))["ok"] is True
    (event,) = admitted(await node.rooms.events(session), P2)
    assert event.actor == C and event.endpoint == device.endpoint
    for client in (host, device):
        await client.close()


async def test_auto_readmit_does_not_readmit_a_denied_person(node: Node) -> None:
    rooms = node.rooms
    state = await create(rooms, "individual", C, P1)
    sid = state.spec.id
    e_c, e_1, e_2, e_3 = (EndpointId(f"e-{n}xyz") for n in "c123")
    await rooms.apply(sid, partial(membership.join, endpoint=e_c, attendee=C))
    await rooms.apply(sid, partial(membership.join, endpoint=e_1, attendee=P1))
    await rooms.apply(sid, partial(membership.admit, actor=C, attendee=P1))
    await rooms.apply(sid, partial(membership.leave, endpoint=e_1))
    await rooms.apply(sid, partial(membership.join, endpoint=e_2, attendee=P1))
    await rooms.apply(sid, partial(membership.deny, actor=C, attendee=P1))
    await rooms.apply(sid, partial(lifecycle.set_auto_readmit, actor=C, enabled=True))

    state, events = await rooms.apply(sid, partial(membership.join, endpoint=e_3, attendee=P1))
    assert [e.kind for e in events] == [EventKind.WAITING]
    assert not state.is_admitted(AttendeeId(P1))
    _, events = await rooms.apply(sid, partial(membership.admit, actor=C, attendee=P1))
    assert [e.kind for e in events] == [EventKind.ADMITTED]
