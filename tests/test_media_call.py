"""Real aiortc participants in real calls through the signaling server, on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from config.settings import Settings
from media.errors import ProbeFailed
from media.negotiation import LocalMedia, PeerLink, rtc_configuration
from media.participant import Participant
from media.probe import ProbeReport, probe
from media.reception import PeerStats, count_frames
from media.synthetic import MediaSpec
from rooms.clock import utcnow
from rooms.ids import NodeId, SessionId
from rooms.service import Rooms
from rooms.state import SessionState
from rooms.store import SessionStore
from rooms.tokens import StaffRole, issue_staff_token
from tests.redis_server import free_port
from tests.served import ServedNode
from tests.signaling_harness import SECRET, Node, create, link, until
from web.app import create_app

#: Small pictures: up to three endpoints encode and decode on two shared cores.
SMALL = MediaSpec(width=160, height=120, fps=10)
#: Generous: ICE, DTLS and the first keyframe on a loaded machine.
MEDIA_WITHIN = 20.0


class Crowd:
    """Participants of one test, closed at teardown even when the test fails."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.joined: list[Participant] = []

    async def join(self, state: SessionState, attendee: str) -> Participant:
        participant = Participant(self.node.url, token=link(state, attendee), spec=SMALL)
        self.joined.append(participant)
        return await participant.join()

    async def individual_call(self) -> tuple[Participant, Participant]:
        """Clinician c-17 and patient p-201, admitted, media flowing both ways."""
        state = await create(self.node.rooms, "individual", "c-17", "p-201")
        clinician = await self.join(state, "c-17")
        patient = await self.join(state, "p-201")
        await until(lambda: len(clinician.room["waiting"]) == 1)
        assert (await clinician.admit("p-201"))["ok"] is True
        await in_call(clinician, patient)
        return clinician, patient

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.joined))


@pytest.fixture
async def crowd(store: SessionStore) -> AsyncIterator[Crowd]:
    node = await Node(store).start()
    people = Crowd(node)
    yield people
    await people.close()
    await node.stop()


def video_from(receiver: Participant, sender: Participant) -> Callable[[], int]:
    return lambda: receiver.received(sender.endpoint).video_frames


def audio_from(receiver: Participant, sender: Participant) -> Callable[[], int]:
    return lambda: receiver.received(sender.endpoint).audio_frames


async def grows(count: Callable[[], int], by: int = 5, within: float = MEDIA_WITHIN) -> None:
    """``count()`` increases by ``by`` from now: media is flowing, not just flowed once."""
    start = count()
    await until(lambda: count() >= start + by, within=within)


async def settles(count: Callable[[], int], quiet: float = 0.6, within: float = 10.0) -> int:
    """Wait until ``count()`` has not changed for ``quiet`` seconds; return its value."""
    loop = asyncio.get_running_loop()
    last, since = count(), loop.time()

    def steady() -> bool:
        nonlocal last, since
        if count() != last:
            last, since = count(), loop.time()
        return loop.time() - since >= quiet

    await until(steady, within=within)
    return last


async def in_call(a: Participant, b: Participant) -> None:
    """Both directions carry video and audio."""
    for receiver, sender in ((a, b), (b, a)):
        await grows(video_from(receiver, sender))
        await grows(audio_from(receiver, sender), by=10)


async def test_individual_call_waiting_then_media_both_ways(crowd: Crowd) -> None:
    state = await create(crowd.node.rooms, "individual", "c-17", "p-201")
    clinician = await crowd.join(state, "c-17")
    patient = await crowd.join(state, "p-201")
    await until(lambda: len(clinician.room["waiting"]) == 1)
    # Waiting: no peer connection anywhere, nothing received.
    assert patient.peers == {} and clinician.peers == {}
    assert patient.stats() == {} and clinician.stats() == {}
    assert (await clinician.admit("p-201"))["ok"] is True
    await in_call(clinician, patient)
    assert set(clinician.peers) == {patient.endpoint}
    assert set(patient.peers) == {clinician.endpoint}
    # The pair negotiated once, without glare: nobody had to replace a connection.
    assert clinician.peers[patient.endpoint].replaced == 0
    assert patient.peers[clinician.endpoint].replaced == 0
    assert patient.first_video_at is not None and clinician.first_video_at is not None


async def test_couples_shared_device_is_one_endpoint_with_two_attendees(crowd: Crowd) -> None:
    state = await create(crowd.node.rooms, "couples", "c-17", "p-201", "p-202")
    clinician = await crowd.join(state, "c-17")
    device = await crowd.join(state, "p-201")
    await until(lambda: len(clinician.room["waiting"]) == 1)
    assert (await clinician.admit("p-201"))["ok"] is True
    assert (await device.attach(link(state, "p-202")))["ok"] is True

    def on_device() -> list[str]:
        views = [e for e in clinician.room["endpoints"] if e["endpoint"] == device.endpoint]
        return [a["attendee"] for a in views[0]["attendees"]] if views else []

    await until(lambda: on_device() == ["p-201", "p-202"])
    assert len(clinician.room["endpoints"]) == 2
    await in_call(clinician, device)
    assert set(clinician.peers) == {device.endpoint}


async def test_three_endpoints_form_a_mesh(crowd: Crowd) -> None:
    state = await create(crowd.node.rooms, "couples", "c-17", "p-201", "p-202")
    clinician = await crowd.join(state, "c-17")
    partners = [await crowd.join(state, p) for p in ("p-201", "p-202")]
    await until(lambda: len(clinician.room["waiting"]) == 2)
    for attendee in ("p-201", "p-202"):
        assert (await clinician.admit(attendee))["ok"] is True
    everyone = [clinician, *partners]
    for receiver in everyone:
        for sender in everyone:
            if sender is not receiver:
                await grows(video_from(receiver, sender))
    for receiver in everyone:
        assert len(receiver.peers) == 2
        assert all(link.replaced == 0 for link in receiver.peers.values())


async def test_mute_and_camera_off_stop_what_the_other_side_receives(crowd: Crowd) -> None:
    clinician, patient = await crowd.individual_call()

    assert (await clinician.call("mute", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: _me(patient)["clinician_muted"])
    # The patient's page (here: the participant) silences its microphone; video goes on.
    await settles(audio_from(clinician, patient))
    await grows(video_from(clinician, patient))
    assert (await clinician.call("unmute", {"attendee": "p-201"}))["ok"] is True
    await grows(audio_from(clinician, patient), by=10)

    assert (await patient.set_camera(False))["ok"] is True
    await settles(video_from(clinician, patient))
    await grows(audio_from(clinician, patient), by=10)
    assert (await patient.set_camera(True))["ok"] is True
    await grows(video_from(clinician, patient))


async def test_removed_patient_gets_bye_and_its_connection_closes(crowd: Crowd) -> None:
    clinician, patient = await crowd.individual_call()
    links = [patient.peers[clinician.endpoint], clinician.peers[patient.endpoint]]

    assert (await clinician.call("remove", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: patient.bye_reason == "removed")
    await until(lambda: patient.peers == {} and clinician.peers == {})
    await until(lambda: all(link.connection_state == "closed" for link in links))


async def test_end_sends_everyone_bye_ended(crowd: Crowd) -> None:
    state = await create(crowd.node.rooms, "couples", "c-17", "p-201", "p-202")
    clinician = await crowd.join(state, "c-17")
    partners = [await crowd.join(state, p) for p in ("p-201", "p-202")]
    await until(lambda: len(clinician.room["waiting"]) == 2)
    await clinician.admit("p-201")
    await clinician.admit("p-202")
    await grows(video_from(partners[0], partners[1]))

    assert (await clinician.call("end"))["ok"] is True
    everyone = [clinician, *partners]
    await until(lambda: all(p.bye_reason == "ended" for p in everyone))
    await until(lambda: all(p.peers == {} for p in everyone))


async def test_signaling_resume_keeps_the_media(crowd: Crowd) -> None:
    clinician, patient = await crowd.individual_call()
    before = patient.endpoint

    await patient.resume()
    assert patient.welcome["resumed"] is True and patient.endpoint == before
    assert patient.room["admitted"] is True  # no second trip through the waiting room
    await in_call(clinician, patient)
    assert clinician.peers[patient.endpoint].replaced == 0


def _me(participant: Participant) -> dict[str, Any]:
    """The participant's own (first) attendee as its newest room view shows it."""
    room = participant.room
    mine = next(e for e in room["endpoints"] if e["endpoint"] == room["you"])
    attendee: dict[str, Any] = mine["attendees"][0]
    return attendee


# --- negotiation between two links, no server: glare, renegotiation, restart -----------------


class Pair:
    """Two PeerLinks wired to each other as the relay would wire them, counting media."""

    def __init__(self, lose: set[str] | None = None) -> None:
        self.stats = {"e-aaaa": PeerStats(), "e-bbbb": PeerStats()}
        self.counters: list[asyncio.Task[None]] = []
        #: Senders whose next signal is lost, as on a socket that just dropped.
        self.lose = lose or set()
        media = LocalMedia(SMALL)
        config = rtc_configuration([])
        # e-aaaa sorts first: it is the polite one, and talks to e-bbbb.
        self.polite = PeerLink(
            "e-bbbb", polite=True, config=config, media=media,
            send=self._sender("e-aaaa"), on_track=self._count("e-aaaa"),
        )  # fmt: skip
        self.impolite = PeerLink(
            "e-aaaa", polite=False, config=config, media=media,
            send=self._sender("e-bbbb"), on_track=self._count("e-bbbb"),
        )  # fmt: skip

    def _sender(self, me: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def send(data: dict[str, Any]) -> None:
            if me in self.lose:
                self.lose.discard(me)
                return
            other = self.impolite if me == "e-aaaa" else self.polite
            other.deliver({"from": me, **{k: v for k, v in data.items() if k != "to"}})

        return send

    def _count(self, me: str) -> Callable[[str, Any], None]:
        def on_track(remote: str, track: Any) -> None:
            self.counters.append(asyncio.create_task(count_frames(track, self.stats[me])))

        return on_track

    def video(self, receiver: str) -> Callable[[], int]:
        return lambda: self.stats[receiver].video_frames

    async def flowing(self) -> None:
        for receiver in self.stats:
            await grows(self.video(receiver))

    async def close(self) -> None:
        await asyncio.gather(self.polite.close(), self.impolite.close())
        await asyncio.gather(*self.counters)


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    wired = Pair()
    yield wired
    await wired.close()


async def test_glare_resolves_with_the_polite_peer_giving_way(pair: Pair) -> None:
    # Both offer at once (the impolite one offers on creation, as always).
    pair.polite.negotiate()
    await pair.flowing()
    # The impolite side ignored the colliding offer; the polite side dropped its own.
    assert pair.polite.replaced == 1 and pair.impolite.replaced == 0


async def test_renegotiation_and_ice_restart_keep_media_flowing(pair: Pair) -> None:
    await pair.flowing()
    pair.polite.negotiate()  # same ICE credentials: a plain renegotiation
    await pair.flowing()
    assert pair.polite.replaced == 0 and pair.impolite.replaced == 0
    pair.impolite.restart()  # new ICE credentials: both sides need a fresh connection
    await pair.flowing()
    assert pair.polite.replaced == 1 and pair.impolite.replaced == 1


# --- the probe, against the REST API and signaling on one port -----------------------------


@pytest.fixture
async def homeroom(store: SessionStore, tmp_path: Path) -> AsyncIterator[Homeroom]:
    """The web app (REST API and signaling on one port) in this process, on each store."""
    settings = Settings(
        _env_file=None,
        secret=SECRET,
        public_url="http://homeroom.test:8080",  # links name it; the probe must not follow
        var_dir=tmp_path,
        node_id="n-probe",
    )
    runner = web.AppRunner(create_app(settings, store))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield Homeroom(f"http://127.0.0.1:{port}", Rooms(store, node=NodeId("n-test")))
    await runner.cleanup()


@dataclass
class Homeroom:
    url: str
    rooms: Rooms  # a second client of the app's store, to check what the probe left

    def staff_token(self, role: StaffRole = StaffRole.ADMIN, subject: str = "a-ops") -> str:
        return issue_staff_token(SECRET, role, subject, utcnow(), timedelta(hours=1))


async def test_probe_reports_media_both_ways_and_ends_its_session(homeroom: Homeroom) -> None:
    report = await probe(homeroom.url, homeroom.staff_token(), spec=SMALL)
    assert report.ok, report
    assert report.detail == "" and report.session is not None
    for side in (report.clinician, report.patient):
        assert side.video_frames >= 10 and side.audio_frames >= 25
        assert side.connect_ms is not None and side.first_video_ms is not None
        assert 0 < side.first_video_ms < 30_000
    state = await homeroom.rooms.get_session(SessionId(report.session))
    assert str(state.status) == "ended" and state.spec.check
    assert ProbeReport.model_validate_json(report.model_dump_json()) == report


async def test_probe_refused_or_unreachable_raises_with_a_code(homeroom: Homeroom) -> None:
    with pytest.raises(ProbeFailed) as refused:
        await probe(homeroom.url, "not-a-token", timeout=5)
    assert refused.value.code == "token_invalid"
    with pytest.raises(ProbeFailed) as unreachable:
        await probe(f"http://127.0.0.1:{free_port()}", homeroom.staff_token(), timeout=5)
    assert unreachable.value.code == "unreachable"


async def test_probe_that_runs_out_of_time_says_where(homeroom: Homeroom) -> None:
    # Ten frames at 10 fps take a second: half a second cannot be enough.
    report = await probe(homeroom.url, homeroom.staff_token(), timeout=0.5, spec=SMALL)
    assert report.ok is False and report.detail.startswith("timed out "), report
    assert report.session is not None


async def test_an_offer_lost_while_signaling_was_down_is_made_again() -> None:
    pair = Pair(lose={"e-bbbb"})  # the impolite side's first offer goes nowhere
    try:
        await until(lambda: not pair.lose)
        assert pair.impolite.connection_state == "new"
        pair.impolite.signaling_restored()
        await pair.flowing()
        assert pair.impolite.replaced == 1
    finally:
        await pair.close()


async def test_probe_against_a_real_homeroom_serve(tmp_path: Path) -> None:
    """What an operator runs against a fresh `make run`: default settings, embedded store."""
    served = await ServedNode.start(tmp_path, name="n-1")
    try:
        token = issue_staff_token(SECRET, StaffRole.ADMIN, "a-ops", utcnow(), timedelta(hours=1))
        report = await probe(served.url, token, spec=SMALL)
        assert report.ok, (report, "".join(served.lines[-20:]))
    finally:
        await served.stop()


async def test_trickled_candidates_from_a_browser_are_added_and_garbage_is_refused(
    pair: Pair,
) -> None:
    await pair.flowing()
    browser_like = {
        "candidate": "candidate:842163049 1 udp 1677729535 192.0.2.77 50001 typ srflx "
        "raddr 0.0.0.0 rport 0 generation 0",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    with capture_logs() as logs:
        pair.polite.deliver({"from": "e-bbbb", "candidate": browser_like})
        pair.polite.deliver({"from": "e-bbbb", "candidate": {"candidate": "candidate:nonsense"}})
        pair.polite.deliver({"from": "e-bbbb", "candidate": {"candidate": ""}})  # end of them
        await until(lambda: any(e["event"] == "candidate_rejected" for e in logs))
        await pair.flowing()
    assert [e["event"] for e in logs if e["log_level"] in ("warning", "error")] == [
        "candidate_rejected"
    ]


def test_no_ice_servers_means_none_at_all_not_aiortc_public_default() -> None:
    assert rtc_configuration([]).iceServers == []
    turn = {"urls": ["turn:turn.example.org"], "username": "u", "credential": "c"}
    servers = rtc_configuration([turn]).iceServers
    assert servers is not None and len(servers) == 1
    server = servers[0]
    assert (server.urls, server.username, server.credential) == (turn["urls"], "u", "c")
