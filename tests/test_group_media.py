"""Group sessions through a real Janus (in a namespace) and Homeroom's signaling, with real
aiortc participants: one upload per device, everyone receives everyone, the waiting room gets
nothing, a clinician's mute and removal are enforced by the forwarder."""

from __future__ import annotations

import asyncio
import gc
import inspect
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from media.forwarded import ForwardedMedia
from media.janus.forwarder import JanusForwarder
from media.janus.process import JanusProcess
from media.negotiation import PeerLink
from media.participant import Participant
from media.reception import PeerStats
from media.synthetic import MediaSpec
from rooms.state import SessionState
from rooms.store import MemoryStore
from tests.signaling_harness import Node, create, link

SMALL = MediaSpec(width=160, height=120, fps=10)
#: The participants' modules: tasks running their code are theirs (the forwarder's are not).
PARTICIPANT_CODE = {inspect.getfile(c) for c in (Participant, ForwardedMedia, PeerLink, PeerStats)}
#: Generous: ICE, DTLS and keyframes for several peers on a loaded two-core machine.
DEADLINE = 90.0


async def until(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not check():
        if loop.time() > end:
            pytest.fail(f"not within {deadline} s: {what}")
        await asyncio.sleep(0.05)


async def silence(count: Callable[[], int], what: str, window: float = 2.0) -> None:
    """Wait until ``count`` has not changed for ``window`` seconds (generous deadline)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    last, since = count(), loop.time()
    while loop.time() < end:
        await asyncio.sleep(0.1)
        now = count()
        if now != last:
            last, since = now, loop.time()
        elif loop.time() - since >= window:
            return
    pytest.fail(f"{what} never stopped")


class Group:
    """A Homeroom node whose group sessions go through ``janus``, and its participants."""

    def __init__(self, node: Node, janus: JanusProcess) -> None:
        self.node, self.janus = node, janus
        self.joined: list[Participant] = []

    async def join(self, state: SessionState, attendee: str, **kwargs: bool) -> Participant:
        participant = Participant(self.node.url, token=link(state, attendee), spec=SMALL, **kwargs)
        self.joined.append(participant)
        return await participant.join()

    async def call(
        self, *patients: str, obey: bool = True, roster: tuple[str, ...] = ()
    ) -> tuple[SessionState, list[Participant]]:
        """A group session: clinician c-1 and ``patients``, all admitted (``roster``: more
        patients on the roster, not joined)."""
        everyone = (*patients, *roster)
        state = await create(self.node.rooms, "group", "c-1", *everyone, purpose="therapy_group")
        clinician = await self.join(state, "c-1")
        members = [clinician]
        for patient in patients:
            member = await self.join(state, patient, obey_mute=obey)
            await until(lambda p=patient: _waiting(clinician, p), f"{patient} waits")
            assert (await clinician.admit(patient))["ok"] is True
            members.append(member)
        return state, members


def _waiting(clinician: Participant, attendee: str) -> bool:
    return any(a["attendee"] == attendee for e in clinician.room["waiting"] for a in e["attendees"])


def got(receiver: Participant, sender: Participant) -> PeerStats:
    return receiver.received(sender.endpoint)


def everyone_receives_everyone(members: list[Participant]) -> bool:
    return all(
        got(me, other).video_frames >= 3 and got(me, other).audio_frames >= 3
        for me in members
        for other in members
        if other is not me
    )


@pytest.fixture
async def group(janus: JanusProcess) -> AsyncIterator[Group]:
    forwarder = JanusForwarder(janus.config.url, janus.config.api_secret, secrets.token_bytes(32))
    await forwarder.start(set())
    node = await Node(MemoryStore(), forwarder=forwarder).start()
    crowd = Group(node, janus)
    try:
        yield crowd
    finally:
        for participant in crowd.joined:
            await participant.close()
        await node.stop()
        await forwarder.close()


async def test_group_through_janus_one_upload_each_everyone_receives_everyone(
    group: Group,
) -> None:
    state, members = await group.call("p-1", "p-2", roster=("p-3", "p-4"))
    assert all(m.welcome["target"] == "server" for m in members)
    # p-4 joins on p-2's device (a shared device: two people, one feed).
    shared = members[2]
    assert (await shared.attach(link(state, "p-4")))["ok"] is True
    # A patient still in the waiting room: no media either way.
    waiting = await group.join(state, "p-3")
    await until(everyone_receives_everyone_of(members), "every endpoint receives every other")
    for member in members:
        assert member.forwarded is not None
        assert await member.forwarded.outbound_video_streams() == 1
        # Three devices, four people: each receives the two other devices' feeds.
        assert len(member.stats()) == 2
        # Two connections to the forwarder, whatever the group size; no mesh links.
        assert member.peers == {}
    refused = await waiting.call(
        "media_publish", {"description": {"type": "offer", "sdp": "v=0\r\n"}}
    )
    assert refused["error"] == "not_authorized"
    assert waiting.forwarded is None and waiting.stats() == {}
    assert all(waiting.endpoint not in m.stats() for m in members)


def everyone_receives_everyone_of(members: list[Participant]) -> Callable[[], bool]:
    return lambda: everyone_receives_everyone(members)


async def test_clinician_mute_is_enforced_by_the_forwarder(group: Group) -> None:
    loop = asyncio.get_running_loop()
    # p-1 runs a modified client: it keeps sending audio whatever the room says.
    _, members = await group.call("p-1", "p-2", obey=False)
    clinician, loud, other = members
    await until(everyone_receives_everyone_of(members), "every endpoint receives every other")
    assert (await clinician.call("mute", {"attendee": "p-1"}))["ok"] is True
    muted_at = loop.time()
    for receiver in (clinician, other):
        await silence(lambda r=receiver: got(r, loud).audio_frames, "p-1's audio")
        last = got(receiver, loud).last_audio_at
        assert last is not None and last - muted_at <= 0.5
    # Renegotiating its feed does not undo the mute.
    assert loud.forwarded is not None
    await loud.renegotiate()
    video = got(other, loud).video_frames
    await until(
        lambda: got(other, loud).video_frames > video + 10, "p-1's video after renegotiating"
    )
    await silence(lambda: got(other, loud).audio_frames, "p-1's audio after renegotiating")
    # The room view keeps saying who is muted (the store is the truth).
    views = [a for e in clinician.room["endpoints"] for a in e["attendees"]]
    assert next(a for a in views if a["attendee"] == "p-1")["clinician_muted"] is True
    assert (await clinician.call("unmute", {"attendee": "p-1"}))["ok"] is True
    heard = got(other, loud).audio_frames
    await until(lambda: got(other, loud).audio_frames > heard + 10, "p-1's audio after unmute")


async def test_removed_endpoint_media_stops_both_ways(group: Group) -> None:
    loop = asyncio.get_running_loop()
    _, members = await group.call("p-1", "p-2")
    clinician, removed, stays = members
    await until(everyone_receives_everyone_of(members), "every endpoint receives every other")
    assert (await clinician.call("remove", {"attendee": "p-1"}))["ok"] is True
    removed_at = loop.time()
    await until(lambda: removed.bye_reason == "removed", "the removed endpoint gets its bye")
    pairs = [(clinician, removed), (stays, removed), (removed, clinician), (removed, stays)]
    for receiver, sender in pairs:
        await silence(lambda r=receiver, s=sender: got(r, s).video_frames, "video")
        last = got(receiver, sender).last_video_at
        assert last is not None and last - removed_at <= 1.0
    frames = got(clinician, stays).video_frames
    await until(lambda: got(clinician, stays).video_frames > frames + 10, "the rest go on")


async def test_a_group_ended_mid_negotiation_leaves_no_task_and_no_unseen_failure(
    group: Group,
) -> None:
    """The end of a call races the subscription offers still under way (the benchmark's groups
    end so): once closed, the participants leave no task of theirs running, and no task failed
    without anyone retrieving why (asyncio would report it when the task is collected)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        _, members = await group.call("p-1", "p-2")
        # p-2 was just admitted: the forwarder's offers of its feed are on their way to the
        # others, and theirs to p-2, as the session ends and everyone closes.
        assert (await members[0].call("end"))["ok"] is True
        await asyncio.gather(*(m.close() for m in members))
        group.joined.clear()
        gc.collect()  # a task collected with its failure unretrieved is reported now
        left = [t.get_name() for t in asyncio.all_tasks() if _runs_media_code(t)]
        assert left == []
        assert [str(c.get("message")) for c in reported] == []
    finally:
        loop.set_exception_handler(None)


def _runs_media_code(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and code.co_filename in PARTICIPANT_CODE


async def test_janus_restart_brings_media_back_and_changes_no_attendance(group: Group) -> None:
    state, members = await group.call("p-1", "p-2")
    clinician = members[0]
    await until(everyone_receives_everyone_of(members), "every endpoint receives every other")
    assert (await clinician.call("mute", {"attendee": "p-1"}))["ok"] is True
    ledger = await group.node.rooms.store.events(state.spec.id)
    group.janus.kill()
    await asyncio.to_thread(group.janus.start)
    await asyncio.to_thread(group.janus.wait_listening, 60.0)
    counts = {
        (id(r), id(s)): got(r, s).video_frames for r in members for s in members if r is not s
    }
    await until(
        lambda: all(
            got(r, s).video_frames > counts[(id(r), id(s))] + 10
            for r in members
            for s in members
            if r is not s
        ),
        "video between everyone again after the restart",
    )
    # The mute holds on the new Janus: p-1's audio does not come back.
    await silence(lambda: got(clinician, members[1]).audio_frames, "p-1's audio")
    heard = got(members[1], members[2]).audio_frames
    await until(lambda: got(members[1], members[2]).audio_frames > heard + 10, "others' audio")
    # A media gap is not a leave: the attendance ledger is exactly as before.
    assert await group.node.rooms.store.events(state.spec.id) == ledger


async def test_a_receiving_connection_that_closed_by_itself_is_replaced(group: Group) -> None:
    """aiortc closes a connection itself once every DTLS transport of it closed; the forwarder's
    next offer then meets a closed connection. The endpoint asks for a fresh subscription and
    receives everyone again, without leaving the call."""
    state, members = await group.call("p-1", "p-2")
    lost = members[1]
    await until(everyone_receives_everyone_of(members), "every endpoint receives every other")
    ledger = await group.node.rooms.store.events(state.spec.id)
    assert lost.forwarded is not None and lost.forwarded.subscriber is not None
    await lost.forwarded.subscriber.close()
    others = [m for m in members if m is not lost]
    counts = {id(s): got(lost, s).video_frames for s in others}
    await until(
        lambda: all(got(lost, s).video_frames > counts[id(s)] + 10 for s in others),
        "everyone's video on a fresh receiving connection",
    )
    assert await group.node.rooms.store.events(state.spec.id) == ledger
