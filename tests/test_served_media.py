"""Real aiortc peers through real `homeroom serve` processes: a couples call with a shared
device on each store, and a call whose two endpoints sit on two nodes sharing one Redis."""

from __future__ import annotations

from pathlib import Path

from media.participant import Participant
from tests.served import COUPLES, ServedNode, token_of
from tests.signaling_harness import until


def flowing(a: Participant, b: Participant, frames: int = 10) -> bool:
    """Each has decoded at least ``frames`` video and audio frames from the other."""
    for me, them in ((a, b), (b, a)):
        got = me.received(them.endpoint)
        if got.video_frames < frames or got.audio_frames < frames:
            return False
    return True


async def test_couples_on_one_shared_device_see_and_hear_their_clinician(
    served: ServedNode,
) -> None:
    created = await served.create_session(COUPLES)
    host = await Participant(served.url, token=token_of(created, "c-17")).join()
    device = await Participant(served.url, token=token_of(created, "p-201")).join()
    try:
        assert (await host.admit("p-201"))["ok"] is True
        assert (await device.attach(token_of(created, "p-202")))["ok"] is True
        await until(lambda: flowing(host, device), within=30)
        seats = next(e for e in host.room["endpoints"] if e["endpoint"] == device.endpoint)
        assert [a["attendee"] for a in seats["attendees"]] == ["p-201", "p-202"]
        # The clinician mutes the partner: the shared device stops sending audio.
        assert (await host.call("mute", {"attendee": "p-202"}))["ok"] is True
        await until(lambda: any(
            a["clinician_muted"] for e in device.room["endpoints"] for a in e["attendees"]
        ))  # fmt: skip
        heard = host.received(device.endpoint).audio_frames
        seen = host.received(device.endpoint).video_frames
        await until(lambda: host.received(device.endpoint).video_frames > seen + 30, within=30)
        # Two seconds of video later, at most a second of audio that was already in flight.
        assert host.received(device.endpoint).audio_frames - heard < 50
    finally:
        await host.close()
        await device.close()


async def test_a_call_across_two_nodes(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "HOMEROOM_REDIS_PREFIX": redis_prefix}
    a = await ServedNode.start(tmp_path, name="n-a", **env)
    b = await ServedNode.start(tmp_path, name="n-b", **env)
    body = {"kind": "individual", "roster": COUPLES["roster"][:2]}
    created = await a.create_session(body)
    host = await Participant(a.url, token=token_of(created, "c-17")).join()
    patient = await Participant(b.url, token=token_of(created, "p-201")).join()
    try:
        assert (await host.admit("p-201"))["ok"] is True
        await until(lambda: flowing(host, patient), within=30)
    finally:
        await host.close()
        await patient.close()
        for node in (a, b):
            await node.stop()
