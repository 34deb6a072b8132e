"""Hang-ups while Redis is unreachable: the node keeps them, in order, and writes each once the
store is back, at the time it happened, exactly once.

A real signaling node on a real redis-server of each test's own (stopped and started here,
never a shared one), with socket.io clients as the pages are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rooms.errors import StoreUnavailable
from rooms.hangups import Hangups
from rooms.ids import SessionId
from rooms.ledger import EventKind, LedgerEvent
from rooms.service import Rooms
from rooms.state import SessionState
from rooms.store.base import Mutation
from rooms.store.redis import RedisStore
from tests.redis_server import RedisServer
from tests.signaling_harness import Client, Node, connect_error, create, link, until


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


class LostReplies(RedisStore):
    """The real Redis store, except that the next ``lose`` transactions are committed and
    then fail as if the reply had been lost on the way back."""

    lose = 0

    async def transact(
        self, session: SessionId, change: Mutation
    ) -> tuple[SessionState, list[LedgerEvent]]:
        committed = await super().transact(session, change)
        if self.lose:
            self.lose -= 1
            raise StoreUnavailable("redis is unreachable")
        return committed


@pytest.fixture
async def node(own_redis: RedisServer) -> AsyncIterator[Node]:
    store = LostReplies.from_url(own_redis.url, timeout=2.0)
    started = await Node(store).start()
    yield started
    await started.stop()
    await started.server.hangups.close()
    await store.close()


async def _in_call(node: Node, *patients: str) -> tuple[SessionId, Client, list[Client]]:
    state = await create(
        node.rooms, "couples" if len(patients) > 1 else "individual", "c-17", *patients
    )
    host = await Client(node.url).connect(token=link(state, "c-17"))
    clients = [await Client(node.url).connect(token=link(state, p)) for p in patients]
    for patient in patients:
        assert (await host.call("admit", {"attendee": patient}))["ok"] is True
    await until(lambda: all(c.room["admitted"] for c in clients))
    return state.spec.id, host, clients


def _now() -> datetime:
    return datetime.now(UTC)


async def _hang_up(client: Client) -> tuple[datetime, datetime]:
    """Close ``client``'s connection; the instants just before and after."""
    before = _now()
    await client.sio.disconnect()
    return before, _now()


def _drops(events: list[LedgerEvent]) -> list[LedgerEvent]:
    return [e for e in events if e.kind is EventKind.DISCONNECTED]


async def _ledger_until(rooms: Rooms, session: SessionId, done: object) -> list[LedgerEvent]:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        try:
            events = await rooms.events(session)
            if done(events):  # type: ignore[operator]
                return events
        except StoreUnavailable:
            pass
        assert asyncio.get_running_loop().time() < deadline, "the ledger never got there"
        await asyncio.sleep(0.05)


async def test_hang_ups_during_an_outage_are_written_after_it_in_order_at_their_time(
    node: Node, own_redis: RedisServer
) -> None:
    session, host, (p1, p2) = await _in_call(node, "p-201", "p-202")
    own_redis.stop()
    first = await _hang_up(p1)
    await until(lambda: node.server.hangups.kept == 1, within=30)
    second = await _hang_up(p2)
    await until(lambda: node.server.hangups.kept == 2, within=30)
    await asyncio.to_thread(own_redis.start)
    back = _now()

    events = await _ledger_until(node.rooms, session, lambda ev: len(_drops(ev)) == 2)
    drops = _drops(events)
    assert [e.attendee for e in drops] == ["p-201", "p-202"]
    assert first[0] <= drops[0].at <= first[1] < back
    assert second[0] <= drops[1].at <= second[1] < back
    assert node.server.hangups.kept == 0
    state = await node.rooms.get_session(session)
    assert not any(state.endpoints[e].connected for e in (p1.endpoint, p2.endpoint))  # type: ignore[index]
    await until(
        lambda: (
            not any(
                e["connected"] for e in host.room["endpoints"] if e["endpoint"] != host.endpoint
            )
        ),
        within=10,
    )
    assert len(_drops(await node.rooms.events(session))) == 2
    await host.close()


async def test_a_resume_after_the_outage_records_the_drop_before_it(
    node: Node, own_redis: RedisServer
) -> None:
    session, host, (patient,) = await _in_call(node, "p-201")
    node.server.hangups = Hangups(node.server._write_hangup, retry=3600, max_retry=3600)
    own_redis.stop()
    dropped = await _hang_up(patient)
    await until(lambda: node.server.hangups.kept == 1, within=30)
    await asyncio.to_thread(own_redis.start)

    again = await Client(node.url).connect(resume=patient.welcome["resume"])
    assert again.room["admitted"] is True and node.server.hangups.kept == 0
    events = [e for e in await node.rooms.events(session) if e.attendee == "p-201"]
    drop, back = events[-2:]
    assert (drop.kind, back.kind) == (EventKind.DISCONNECTED, EventKind.RESUMED)
    assert dropped[0] <= drop.at <= dropped[1] and back.data["takeover"] is False
    await node.server.hangups.close()
    for client in (host, again):
        await client.close()


async def test_a_hang_up_whose_reply_was_lost_is_recorded_once(node: Node) -> None:
    session, host, (patient,) = await _in_call(node, "p-201")
    store = node.rooms.store
    assert isinstance(store, LostReplies)
    store.lose = 1
    await _hang_up(patient)
    await until(lambda: store.lose == 0 and node.server.hangups.kept == 0, within=30)

    events = await node.rooms.events(session)
    assert len(_drops(events)) == 1
    assert (await node.rooms.get_session(session)).version == (await store.get(session)).version
    await host.close()


async def test_a_join_whose_reply_was_lost_leaves_no_one_connected(node: Node) -> None:
    """The join committed, the store's reply was lost and the page was refused: nobody holds
    that connection, so its endpoint is closed as a hang-up, not left connected (a ghost the
    clinician could admit and the ledger would credit)."""
    state = await create(node.rooms, "individual", "c-17", "p-201")
    session = state.spec.id
    store = node.rooms.store
    assert isinstance(store, LostReplies)
    store.lose = 1
    before = _now()
    refusal = await connect_error(node.url, token=link(state, "p-201"))
    assert refusal["error"] == "store_unavailable"

    events = await _ledger_until(node.rooms, session, lambda ev: len(_drops(ev)) == 1)
    after = _now()
    waiting, dropped = [e for e in events if e.attendee == "p-201"]
    assert (waiting.kind, dropped.kind) == (EventKind.WAITING, EventKind.DISCONNECTED)
    assert before <= waiting.at <= dropped.at <= after
    assert not any(e.connected for e in (await node.rooms.get_session(session)).endpoints.values())
    # The page tries again and simply joins: no "already joined" from the one it never had.
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    assert patient.room["admitted"] is False
    await patient.close()


async def test_a_join_refused_before_it_committed_records_nothing_more(
    node: Node, own_redis: RedisServer
) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    own_redis.stop()
    refusal = await connect_error(node.url, token=link(state, "p-201"))
    assert refusal["error"] == "store_unavailable"
    await asyncio.to_thread(own_redis.start)
    await until(lambda: node.server.hangups.kept == 0, within=30)
    events = await node.rooms.events(state.spec.id)
    assert [e.kind for e in events if e.attendee is not None] == []
