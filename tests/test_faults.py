"""Faults under load: two `homeroom serve` nodes on one real redis-server, 64 socket.io endpoints
in 8 group sessions doing what pages do (join, admit, leave, hang up, resume), and then

- Redis restarted for about 3 s, and stopped for about 20 s, while people join, leave and hang up;
- one node killed with SIGKILL while people are in calls: its clients resume on the other node,
  or are closed at its last heartbeat.

Each client notes what it did (tests.fault_model); afterwards every session's ledger must hold
exactly those events (none lost, duplicated or invented, each in its time window), its hash
chain must verify, and what every client sees must agree with the store. No endpoint whose
socket stayed open may be closed by the reaper. The figures of docs/durability.md come from
here: ``pytest -q tests/test_faults.py -s`` prints them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import socketio

from rooms.audit import verify_session
from rooms.ids import SessionId
from rooms.ledger import EventKind
from rooms.state import SessionState
from rooms.store.redis import RedisStore
from tests.fault_model import BEAT_SLACK, HANGUP_SLACK, Expect, Record, Tally
from tests.redis_server import RedisServer
from tests.served import ServedNode, token_of
from tests.signaling_harness import Client, until

SESSIONS = 8
#: Patients in a session's call from the start; one more joins during the fault.
PRESENT = 6
BEAT = 0.5
#: Seconds any one wait for a state may take on a loaded machine before the test fails.
WITHIN = 45.0
RETRY = 0.2
_T = TypeVar("_T")


def now() -> datetime:
    return datetime.now(UTC)


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Person(Client):
    """One page's socket.io connection; ``refusal`` is why the server refused it, if it did."""

    def __init__(self, url: str, session: str, attendee: str) -> None:
        super().__init__(url)
        self.session, self.attendee = session, attendee
        self.refusal: dict[str, Any] | None = None
        self.sio.on("connect_error", self._refused)
        #: Set when the client itself ended the call (left or hung up).
        self.ended = False

    async def _on_delta(self, delta: dict[str, Any]) -> None:
        """As the harness does, except that when the whole view cannot be had at once (the
        store is away, or the delta came before socket.io's connect acknowledgement, when
        python-socketio cannot send yet) it is asked again once it can be, as a page does."""
        try:
            await super()._on_delta(delta)
        except (socketio.exceptions.SocketIOError, KeyError):
            async with asyncio.timeout(WITHIN):
                while not self.sio.connected:
                    if self.ended:
                        return
                    await asyncio.sleep(RETRY)
                while "room" not in (reply := await self.ask("hello")):  # noqa: ASYNC110
                    await asyncio.sleep(RETRY)
            self.rooms.append(reply["room"])

    def _refused(self, data: Any) -> None:
        self.refusal = data.get("data") if isinstance(data, dict) else None

    async def open(self, **auth: Any) -> Person:
        try:
            await self.sio.connect(
                self.url, auth={"v": 1, **auth}, transports=["websocket"], wait_timeout=20
            )
        except socketio.exceptions.ConnectionError:
            code = (self.refusal or {}).get("error", "no_answer")
            raise Refused(code) from None
        await asyncio.wait_for(self._welcomed.wait(), WITHIN)
        await until(lambda: any(r["you"] == self.endpoint for r in self.rooms), within=WITHIN)
        return self

    async def ask(self, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(event, data or {}, timeout=WITHIN)
        return reply

    @property
    def live(self) -> bool:
        return self.sio.connected and not self.ended


async def retrying(attempt: Callable[[], Awaitable[_T]]) -> _T:
    """``attempt()`` until the store answers: a page retries ``store_unavailable``, no more."""
    async with asyncio.timeout(WITHIN):
        while True:
            try:
                return await attempt()
            except Refused as refused:
                if refused.code != "store_unavailable":
                    raise
            await asyncio.sleep(RETRY)


@dataclass
class Seat:
    """A roster member's link, and the connection they hold (if any)."""

    attendee: str
    token: str
    node: ServedNode
    person: Person | None = None


class Clinic:
    """Sessions on two nodes, the people in them, and what each did (``record``)."""

    def __init__(self, nodes: tuple[ServedNode, ServedNode]) -> None:
        self.nodes = nodes
        self.record = Record()
        self.sessions: list[str] = []
        self.seats: dict[str, list[Seat]] = {}  # per session: clinician, then patients

    async def open(self) -> None:
        created = await asyncio.gather(*(self._create(n) for n in range(SESSIONS)))
        for n, body in enumerate(created):
            session = body["session"]
            self.sessions.append(session)
            attendees = [f"c-{n}", *(f"p-{n}-{k}" for k in range(1, PRESENT + 2))]
            # Clinicians alternate between nodes, and each session's patients too.
            self.seats[session] = [
                Seat(a, token_of(body, a), self.nodes[(n + k) % 2]) for k, a in enumerate(attendees)
            ]
        await asyncio.gather(*(self._fill(s) for s in self.sessions))

    async def _create(self, n: int) -> dict[str, Any]:
        roster = [{"attendee": f"c-{n}", "role": "clinician"}]
        roster += [{"attendee": f"p-{n}-{k}", "role": "patient"} for k in range(1, PRESENT + 2)]
        body = {"kind": "group", "purpose": "therapy_group", "roster": roster}
        return await self.nodes[0].create_session(body)

    async def _fill(self, session: str) -> None:
        """The clinician joins, then the first patients; the clinician admits each."""
        host, *patients = self.seats[session][: PRESENT + 1]
        await self.join(session, host)
        await asyncio.gather(*(self.arrive(session, seat) for seat in patients))

    def seat(self, session: str, k: int) -> Seat:
        return self.seats[session][k]

    @property
    def people(self) -> list[Person]:
        return [s.person for seats in self.seats.values() for s in seats if s.person]

    # --- what clients do, each noted as the client saw it ----------------------------------

    async def join(self, session: str, seat: Seat) -> Person:
        async def attempt() -> tuple[datetime, Person]:
            started = now()
            person = Person(seat.node.url, session, seat.attendee)
            return started, await person.open(token=seat.token)

        started, person = await retrying(attempt)
        seat.person, done = person, now()
        expect = [Expect(EventKind.WAITING, seat.attendee, started, done)]
        if seat.attendee.startswith("c-"):  # clinicians are admitted as they arrive
            expect.append(Expect(EventKind.ADMITTED, seat.attendee, started, done, actor="system"))
        self.record.did(session, person.endpoint, tuple(expect), started=started)
        return person

    async def arrive(self, session: str, seat: Seat) -> None:
        """A patient joins and waits; the clinician admits them; they see themselves in."""
        person = await self.join(session, seat)
        await self.admit(session, seat)
        await until(lambda: person.room["admitted"], within=WITHIN)

    async def admit(self, session: str, seat: Seat) -> None:
        host = self.seat(session, 0).person
        assert host is not None and seat.person is not None
        started = now()
        await retrying(lambda: _ok(host.ask("admit", {"attendee": seat.attendee})))
        done = Expect(EventKind.ADMITTED, seat.attendee, started, now(), actor=host.attendee)
        self.record.did(session, seat.person.endpoint, (done,), started=started)

    async def leave(self, session: str, seat: Seat) -> None:
        person = seat.person
        assert person is not None
        started = now()
        await retrying(lambda: _ok(person.ask("leave")))
        person.ended = True
        left = Expect(EventKind.LEFT, seat.attendee, started, now(), actor=seat.attendee)
        self.record.did(session, person.endpoint, (left,), started=started)
        await person.close()

    async def hang_up(self, session: str, seat: Seat) -> None:
        person = seat.person
        assert person is not None
        started = now()
        person.ended = True
        await person.close()
        dropped = Expect(
            EventKind.DISCONNECTED,
            seat.attendee,
            started,
            now() + HANGUP_SLACK,
            (("reason", None),),
        )
        self.record.did(session, person.endpoint, (dropped,), started=started)

    async def resume(
        self, session: str, seat: Seat, node: ServedNode, *, lost: Expect | None = None
    ) -> None:
        """Come back on ``node`` with the last resume credential. ``lost``: the close of this
        endpoint's killed node, which the ledger shows only if the reaper got there first."""
        old = seat.person
        assert old is not None

        async def attempt() -> tuple[datetime, Person]:
            started = now()
            person = Person(node.url, session, seat.attendee)
            return started, await person.open(resume=old.welcome["resume"])

        started, person = await retrying(attempt)
        assert person.endpoint == old.endpoint and person.welcome["resumed"] is True
        seat.person, seat.node, done = person, node, now()
        back = Expect(EventKind.RESUMED, seat.attendee, started, done, (("takeover", False),))
        if lost is None:
            self.record.did(session, person.endpoint, (back,), started=started)
            return
        through = Expect(EventKind.RESUMED, seat.attendee, started, done, (("takeover", True),))
        self.record.did(session, person.endpoint, (lost, back), (through,), started=lost.latest)

    def lost(self, seat: Seat, before: datetime, after: datetime) -> Expect:
        """The close of ``seat``'s endpoint when its node was killed between ``before`` and
        ``after``: at the node's last heartbeat."""
        earliest = before - timedelta(seconds=BEAT_SLACK * BEAT)
        reason = (("reason", "node_lost"),)
        return Expect(EventKind.DISCONNECTED, seat.attendee, earliest, after, reason)

    # --- checks --------------------------------------------------------------------------

    async def settled(self, store: RedisStore) -> None:
        """Wait until the store and every open client agree with what the clients did: the
        live endpoints connected and in the call, nobody else; every live view the same."""
        async with asyncio.timeout(WITHIN):
            while not await self._agrees(store):  # noqa: ASYNC110 -- polled from the store
                await asyncio.sleep(0.1)

    async def _agrees(self, store: RedisStore) -> bool:
        for session in self.sessions:
            live = {s.person.endpoint for s in self.seats[session] if s.person and s.person.live}
            state = await store.get(SessionId(session))
            if _in_call(state) != live:
                return False
            for seat in self.seats[session]:
                person = seat.person
                if person is None or not person.live:
                    continue
                view = person.room
                if not view["admitted"] or view["waiting"]:
                    return False
                if {e["endpoint"] for e in view["endpoints"] if e["connected"]} != live:
                    return False
        return True

    async def check(self, store: RedisStore) -> Tally:
        """Every ledger against what the clients did; every chain verified."""
        total = Tally()
        for session in self.sessions:
            ledger = await store.events(SessionId(session))
            assert [e.seq for e in ledger] == list(range(1, len(ledger) + 1))
            report = await verify_session(store, SessionId(session))
            assert report.ok, report
            tally = self.record.check(session, ledger)
            for name in ("checked", "lost", "duplicated", "invented", "mistimed"):
                setattr(total, name, getattr(total, name) + getattr(tally, name))
            total.problems += tally.problems
        return total


def _in_call(state: SessionState) -> set[str]:
    return {e.id for e in state.endpoints.values() if e.connected and e.in_call()}


async def _ok(reply: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    answer = await reply
    if answer.get("ok") is not True:
        raise Refused(str(answer.get("error")))
    return answer


# --- the cluster ----------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, free to be stopped, started and waited for."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def nodes(
    tmp_path: Path, own_redis: RedisServer
) -> AsyncIterator[tuple[ServedNode, ServedNode]]:
    env = {
        "REDIS_URL": own_redis.url,
        "HOMEROOM_REDIS_PREFIX": "hr-faults",
        "HOMEROOM_HEARTBEAT_SECONDS": str(BEAT),
        "HOMEROOM_GROUP_CAPACITY": "12",
    }
    pair = await asyncio.gather(
        ServedNode.start(tmp_path, name="n-a", **env), ServedNode.start(tmp_path, name="n-b", **env)
    )
    yield pair[0], pair[1]
    for node in pair:
        await node.stop()


@pytest.fixture
async def store(own_redis: RedisServer) -> AsyncIterator[RedisStore]:
    opened = RedisStore.from_url(own_redis.url, prefix="hr-faults")
    yield opened
    await opened.close()


@pytest.fixture
async def clinic(nodes: tuple[ServedNode, ServedNode]) -> AsyncIterator[Clinic]:
    opened = Clinic(nodes)
    try:
        await opened.open()
    except BaseException:
        for node in nodes:
            for line in node.lines:
                if '"warning"' in line or '"error"' in line:
                    print("NODE", line[:400])
        raise
    assert len(opened.people) == SESSIONS * (PRESENT + 1)
    yield opened
    await asyncio.gather(*(p.close() for p in opened.people if p.sio.connected))


def report(name: str, clinic: Clinic, tally: Tally, **figures: Any) -> None:
    endpoints = len({(d.session, d.endpoint) for d in clinic.record.actions})
    line = {"fault": name, "endpoints": endpoints, "events_checked": tally.checked,
            "lost": tally.lost, "duplicated": tally.duplicated, "invented": tally.invented,
            "mistimed": tally.mistimed, **figures}  # fmt: skip
    print("\nFAULT " + json.dumps(line))
    assert tally.exact, "\n".join(tally.problems[:20])


# --- Redis restarted, Redis stopped ---------------------------------------------------------


async def _during_outage(clinic: Clinic, session: str, delay: float) -> None:
    """What one session's people do while the store is away (all of it retried as pages do)."""
    await asyncio.sleep(delay)  # spread the sessions' actions over the outage
    leaver, dropper, blip = (clinic.seat(session, k) for k in (1, 2, 3))
    late = clinic.seat(session, PRESENT + 1)

    async def blip_back() -> None:
        await clinic.hang_up(session, blip)
        await clinic.resume(session, blip, blip.node)

    await asyncio.gather(
        clinic.leave(session, leaver),
        clinic.hang_up(session, dropper),
        blip_back(),
        clinic.arrive(session, late),
    )


async def _after_outage(clinic: Clinic, session: str) -> None:
    await asyncio.gather(
        clinic.leave(session, clinic.seat(session, 4)),
        clinic.hang_up(session, clinic.seat(session, 5)),
    )


async def _outage(clinic: Clinic, redis: RedisServer, store: RedisStore, seconds: float) -> None:
    """Stop Redis for ``seconds`` while every session's people act; check the ledger after."""
    await asyncio.to_thread(redis.stop)
    down = asyncio.get_running_loop().time()
    acting = [
        asyncio.create_task(_during_outage(clinic, s, 0.1 * n))
        for n, s in enumerate(clinic.sessions)
    ]
    await asyncio.sleep(seconds)  # the fault's length, not a wait for some state
    await asyncio.to_thread(redis.start)
    back = asyncio.get_running_loop().time()
    await asyncio.gather(*acting)
    await clinic.settled(store)
    recovered = asyncio.get_running_loop().time() - back
    await asyncio.gather(*(_after_outage(clinic, s) for s in clinic.sessions))
    await clinic.settled(store)
    tally = await clinic.check(store)
    report(
        f"redis stopped {seconds:g} s",
        clinic,
        tally,
        outage_s=round(back - down, 1),
        recovered_s=round(recovered, 1),
    )


async def test_redis_restarted_for_3_s_under_load(
    clinic: Clinic, own_redis: RedisServer, store: RedisStore
) -> None:
    await _outage(clinic, own_redis, store, 3.0)


async def test_redis_stopped_for_20_s_under_load(
    clinic: Clinic, own_redis: RedisServer, store: RedisStore
) -> None:
    await _outage(clinic, own_redis, store, 20.0)


# --- a node killed --------------------------------------------------------------------------


async def test_a_node_killed_in_calls_under_load(clinic: Clinic, store: RedisStore) -> None:
    """Node B dies with SIGKILL. In each session the clinician and one patient on B resume on
    A at once, one patient resumes only after the reaper closed their endpoint, the others
    stay away (closed at B's last heartbeat); on A a patient leaves and a latecomer joins."""
    a, b = clinic.nodes
    on_b = {
        session: [s for s in seats if s.node is b and s.person is not None]
        for session, seats in clinic.seats.items()
    }
    before = now()
    await b.stop(kill=True)
    after = now()
    await until(lambda: not any(s.person and s.person.sio.connected for s in _all(on_b)), WITHIN)
    for seat in _all(on_b):
        assert seat.person is not None
        seat.person.ended = True  # its socket is closed: nobody is there until they resume

    async def session_goes_on(session: str) -> None:
        host, *patients = (
            on_b[session] if on_b[session][0].attendee.startswith("c-") else [None, *on_b[session]]
        )
        early = [p for p in (host, patients[0]) if p is not None]
        late, stayers = patients[1], patients[2:]
        for seat in stayers:
            record_lost(session, seat)
        record_lost(session, late)
        await asyncio.gather(*(clinic.resume(session, s, a, lost=lost(s)) for s in early))
        leaver = next(s for s in clinic.seats[session][1:] if s.node is a and s.person)
        latecomer = clinic.seat(session, PRESENT + 1)
        latecomer.node = a
        await asyncio.gather(
            clinic.leave(session, leaver),
            clinic.arrive(session, latecomer),
            resume_after_reap(session, late),
        )

    def lost(seat: Seat) -> Expect:
        return clinic.lost(seat, before, after)

    def record_lost(session: str, seat: Seat) -> None:
        assert seat.person is not None
        clinic.record.did(session, seat.person.endpoint, (lost(seat),), started=before)

    async def resume_after_reap(session: str, seat: Seat) -> None:
        assert seat.person is not None
        endpoint = seat.person.endpoint
        async with asyncio.timeout(WITHIN):
            while (await store.get(SessionId(session))).endpoints[endpoint].connected:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await clinic.resume(session, seat, a)

    await asyncio.gather(*(session_goes_on(s) for s in clinic.sessions))
    await clinic.settled(store)
    recovered = (now() - after).total_seconds()
    tally = await clinic.check(store)
    killed = {s.person.endpoint for s in _all(on_b) if s.person}
    for session in clinic.sessions:
        for event in await store.events(SessionId(session)):
            if event.data.get("reason") == "node_lost":
                assert event.endpoint in killed, event
    report(
        "node killed",
        clinic,
        tally,
        endpoints_on_killed_node=len(killed),
        recovered_s=round(recovered, 1),
    )


def _all(by_session: dict[str, list[Seat]]) -> list[Seat]:
    return [seat for seats in by_session.values() for seat in seats]
