"""Part 2: from admission to the first remote video frame, Homeroom against direct aiortc peers.

Homeroom: a real `homeroom serve` (Redis mode, pinned) and headless participants
(``media.participant.Participant``) in this process. Everyone joins and waits (outside the
timing); the clock starts when the clinician sends ``admit`` and stops when every endpoint has
decoded a video frame from every other one (individual: 2 endpoints; couples: clinician and
both partners on their own devices, a mesh of 3). The floor: the same number of aiortc peers
in this process with the same synthetic tracks, offer and answer handed over in memory.
Calls of the two alternate, so a busy moment of the machine hits both alike.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.params import Params
from bench.report import Report, Row, percentile
from bench.servers import RedisProc, Served, create_session, start_homeroom

PART = "media"
#: ICE, DTLS and a first keyframe on a loaded machine; a call slower than this is an error.
WITHIN = 30.0
_KINDS = {"individual": 1, "couples": 2}


async def until(check: Callable[[], bool], within: float = WITHIN) -> None:
    """Poll: frame counters and room views are plain fields that signal nobody."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - nothing to wait on but the fields themselves
            await asyncio.sleep(0.005)


async def homeroom_call(http: aiohttp.ClientSession, served: Served, kind: str, n: int) -> float:
    from media.participant import Participant

    clinician = f"c-{kind}-{n}"
    patients = [f"p-{kind}-{n}-{k}" for k in range(_KINDS[kind])]
    roster = [{"attendee": clinician, "role": "clinician"}]
    roster += [{"attendee": p, "role": "patient"} for p in patients]
    tokens = await create_session(http, served.url, {"kind": kind, "roster": roster})
    people = [Participant(served.url, token=tokens[a]) for a in [clinician, *patients]]
    try:
        for person in people:
            await person.join()
        host, guests = people[0], people[1:]
        waiting = {g.endpoint for g in guests}
        await until(lambda: waiting <= {e["endpoint"] for e in host.room.get("waiting", [])})
        loop = asyncio.get_running_loop()
        start = loop.time()
        for attendee in patients:
            answer = await host.admit(attendee)
            if not answer.get("ok"):
                raise RuntimeError(f"admit refused: {answer}")
        await until(lambda: _all_video(people))
        return max(_first_video(people)) - start
    finally:
        await asyncio.gather(*(p.close() for p in people), return_exceptions=True)


def _all_video(people: list[Any]) -> bool:
    return all(
        len(stats := person.stats()) == len(people) - 1
        and all(s.first_video_at is not None for s in stats.values())
        for person in people
    )


def _first_video(people: list[Any]) -> list[float]:
    return [s.first_video_at for p in people for s in p.stats().values()]


async def direct_call(peers: int) -> float:
    """The floor: ``peers`` aiortc endpoints in a full mesh, negotiated in memory."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    from media.negotiation import LocalMedia
    from media.reception import PeerStats
    from media.reception import count_frames as count
    from media.synthetic import MediaSpec

    media = LocalMedia(MediaSpec())
    stats: list[PeerStats] = []
    counters: list[asyncio.Task[None]] = []
    pcs: list[Any] = []

    def connection() -> Any:
        # An explicit empty ICE list: aiortc's default is a public STUN server.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for kind in ("audio", "video"):
            pc.addTransceiver(media.track(kind), direction="sendrecv")
        received = PeerStats()
        stats.append(received)
        pc.on("track", lambda track: counters.append(asyncio.create_task(count(track, received))))
        pcs.append(pc)
        return pc

    async def negotiate(offerer: Any, answerer: Any) -> None:
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)

    pairs = [(connection(), connection()) for _ in itertools.combinations(range(peers), 2)]
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        await asyncio.gather(*(negotiate(a, b) for a, b in pairs))
        await until(lambda: all(s.first_video_at is not None for s in stats))
        return max(s.first_video_at or 0.0 for s in stats) - start
    finally:
        await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)
        for task in counters:
            task.cancel()
        await asyncio.gather(*counters, return_exceptions=True)


async def run(p: Params, out: Path, report: Report) -> None:
    try:
        import media.participant  # noqa: F401
    except ImportError as exc:
        report.notes.append(f"media start skipped: media.participant is missing ({exc})")
        return
    redis = RedisProc(out / "redis-media")
    results: dict[str, tuple[list[float], list[float]]] = {}
    try:
        served = await start_homeroom(out, redis.url, "bench-media")
        try:
            async with aiohttp.ClientSession() as http:
                for kind, patients in _KINDS.items():
                    home, floor = results.setdefault(kind, ([], []))
                    for n in range(p.media_runs):
                        home.append(await homeroom_call(http, served, kind, n))
                        floor.append(await direct_call(patients + 1))
        finally:
            served.proc.stop()
    finally:
        redis.stop()
    for kind, (home, floor) in results.items():
        for q in (50, 95):
            report.add(
                Row(
                    PART,
                    f"admission to first video, {kind}, p{q} of {len(home)}",
                    "ms",
                    _ms(percentile(home, q)),
                    _ms(percentile(floor, q)),
                )
            )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds
