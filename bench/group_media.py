"""Part: group media. Groups of 3 to 13 endpoints forwarded by Janus and driven by Homeroom,
against Janus driven directly (the floor), against the peer-to-peer mesh, and the last joiner's
admission against two aiortc peers connected directly.

Everything runs inside one network namespace made for the part (tests/netns.py): Janus
gathers no loopback candidates, and in the namespace the only other address is the namespace
side of its veth pair, so every media packet goes between processes of the namespace and none
is addressed to the machine's own interfaces. ``run`` (the bench process) makes the namespace
and starts this module inside it (``--inside``); that process writes its rows to a JSON file.

Inside, as in the other parts, the measured servers run on core 0 (Janus and two
`homeroom serve`, one driving Janus, one without a forwarder so that groups use the mesh) and
every endpoint runs in this process on core 1. Publishers send a pre-encoded VP8 clip
(bench/clip.py; no audio: microphones off) and receivers count the encoded frames they
receive without decoding them (bench/counting_decoder.py, installed in this process only).

For each size N (a clinician and N-1 patients):

- *through Homeroom*: headless participants (``media.participant``) join a group session
  through signaling and are admitted one by one; each publishes one feed to Janus and receives
  the others through one subscription. The last joiner's admission is timed: from the
  clinician's ``admit`` to its first frame from anyone, and to frames from all N-1 others;
  after the window it leaves and comes back to be admitted again (5 admissions; quick: 2).
- *floor*: N endpoints in this process that talk to Janus's API themselves (the same
  ``ForwardedMedia`` connections, publish and one subscription each), no Homeroom.
- *mesh*: the same group through the Homeroom without a forwarder: every endpoint connects to
  every other. Once a mesh does not come up in time, no larger one is tried.
- *admission floor*: one aiortc connection to the newcomer carrying N-1 clip tracks,
  negotiated in memory: from the offer to the first frame, and to frames on all N-1 tracks.

In each of the three groups, once everyone receives everyone, a fixed window reads the CPU
time of Janus and of the server (``/proc/<pid>/stat``), the clip bytes each endpoint sent and
the frames the last joiner received. N(N-1) video streams are forwarded in a group of N.
In the largest group through Homeroom, rounds then alternate the receivers between counting
and decoding, for the endpoints' CPU both ways (bench/receiver_cpu.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

from bench import receiver_cpu
from bench.clip import Clip, ClipMedia, encode_clip
from bench.counting_decoder import counting_receivers
from bench.params import FULL, QUICK, Params
from bench.report import Report, Row, cpu_times, machine, percentile, steal_share
from bench.servers import (
    HOMEROOM,
    LOAD_CORE,
    PINNED,
    REPO,
    SERVER_CORE,
    Proc,
    RedisProc,
    Served,
    cpu_seconds,
    create_session,
    free_port,
    homeroom_env,
    pin_self_to_load_core,
)
from media.forwarded import ForwardedMedia
from media.janus.client import JanusConnection
from media.janus.config import JanusConfig
from media.janus.errors import JanusError
from media.janus.forwarder import PUBLISHER_BITRATE
from media.janus.messages import Jsep
from media.janus.process import JanusProcess, find_binary
from media.janus.videoroom import (
    CreateRoom,
    DestroyRoom,
    Feed,
    JoinPublisher,
    JoinSubscriber,
    Publish,
    Start,
)
from media.participant import Participant
from media.reception import PeerStats, count_frames

PART = "group"
SIZES = {"full": (3, 5, 9, 13), "quick": (3, 5)}
#: Seconds of the measuring window, once every endpoint receives every other.
WINDOW = {"full": 10.0, "quick": 3.0}
#: Times the last joiner of each group is admitted (it leaves and comes back between two).
ADMISSIONS = {"full": 5, "quick": 2}
#: Before the window: the last joiner's subscription and the senders' pacing settle.
SETTLE = 2.0
#: A group (or the mesh) that is not up within this is reported as not running.
SETUP_WITHIN = 90.0
#: The whole part; the process inside the namespace is stopped after this.
PART_WITHIN = {"full": 1800.0, "quick": 600.0}
#: Rounds of each mode (counting, decoding) and their seconds, for the endpoints' CPU both ways.
RECEIVER_ROUNDS = {"full": (3, 5.0), "quick": (1, 2.0)}
#: Frames from every other endpoint before a group counts as up.
UP_FRAMES = 5
JANUS_PORT = 8188
#: Janus's answer to a subscription of a feed that is not (yet) publishing.
NO_SUCH_FEED = 428


# --- figures of one group ---------------------------------------------------------------


@dataclass
class Window:
    """What one group did in the measuring window."""

    endpoints: int
    seconds: float
    janus_cpu: float | None  # CPU seconds of Janus in the window
    server_cpu: float | None  # of the `homeroom serve`, when there is one
    load_cpu: float  # of this process (every endpoint)
    uplink: float  # mean clip bytes per second sent by an endpoint
    last_fps: float  # mean frames per second per stream received by the last joiner
    last_fps_min: float
    steal: float | None
    #: Share of each core (``cpu0``...) busy in the window, whatever ran on it.
    busy: dict[str, float] = field(default_factory=dict)

    @property
    def streams(self) -> int:
        return self.endpoints * (self.endpoints - 1)

    def per_stream(self, cpu: float | None) -> float | None:
        """CPU ms per second per forwarded stream."""
        return None if cpu is None else 1000 * cpu / self.seconds / self.streams


@dataclass
class Admission:
    """The last joiner: seconds from its admission to its first frame, and to frames from all."""

    first: float
    every: float


@dataclass
class GroupResult:
    window: Window
    #: The last joiner's admissions, in order.
    admissions: list[Admission] = field(default_factory=list)
    #: What went wrong after the window, if anything.
    trouble: str = ""
    #: The endpoints' CPU with receivers counting and decoding, where it was compared.
    receivers: receiver_cpu.ReceiverCpu | None = None


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# --- the endpoints of a group -------------------------------------------------------------


class Member:
    """One endpoint of a measured group, however it reaches the others."""

    name: str
    media: ClipMedia

    def received(self) -> dict[str, Any]:
        """PeerStats by remote name."""
        raise NotImplementedError


def _frames_from_all(members: list[Any], frames: int) -> bool:
    """Every member received ``frames`` video frames from every other one."""
    for me in members:
        stats = me.received()
        for other in members:
            if other is me:
                continue
            got = stats.get(other.name)
            if got is None or got.video_frames < frames:
                return False
    return True


async def until(check: Callable[[], bool], within: float = SETUP_WITHIN) -> None:
    """Poll: frame counters are plain fields that signal nobody."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - nothing to wait on but the fields themselves
            await asyncio.sleep(0.02)


def _core_ticks() -> dict[str, tuple[int, int]]:
    """(busy, total) clock ticks so far of each core (``cpu0``...) from /proc/stat."""
    found = {}
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0].startswith("cpu") and fields[0] != "cpu":
            ticks = [int(f) for f in fields[1:9]]  # user nice system idle iowait irq softirq steal
            found[fields[0]] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))
    return found


async def measure_window(
    members: list[Any], last: Any, seconds: float, janus_pid: int | None, server_pid: int | None
) -> Window:
    """Read CPU, bytes sent and the last joiner's frames over ``seconds``."""
    await asyncio.sleep(SETTLE)
    others = [m.name for m in members if m is not last]

    def frames() -> list[int]:
        got = last.received()
        return [got[name].video_frames if name in got else 0 for name in others]

    def cpu(pid: int | None) -> float | None:
        return None if pid is None else cpu_seconds(pid)

    sent = [m.media.sent_bytes for m in members]
    before = (cpu(janus_pid), cpu(server_pid), cpu_seconds(os.getpid()), frames())
    loop = asyncio.get_running_loop()
    start = loop.time()
    machine_before, cores_before = cpu_times(), _core_ticks()
    await asyncio.sleep(seconds)
    machine_after, cores_after = cpu_times(), _core_ticks()
    took = loop.time() - start
    busy = {
        core: (b[0] - a[0]) / (b[1] - a[1])
        for core, a in cores_before.items()
        if (b := cores_after.get(core)) is not None and b[1] > a[1]
    }
    after = (cpu(janus_pid), cpu(server_pid), cpu_seconds(os.getpid()), frames())
    sent = [m.media.sent_bytes - s for m, s in zip(members, sent, strict=True)]
    fps = [(b - a) / took for a, b in zip(before[3], after[3], strict=True)]

    def spent(i: int) -> float | None:
        a, b = before[i], after[i]
        return None if a is None or b is None else float(b) - float(a)  # type: ignore[arg-type]

    return Window(
        endpoints=len(members),
        seconds=took,
        janus_cpu=spent(0),
        server_cpu=spent(1),
        load_cpu=float(after[2]) - float(before[2]),
        uplink=sum(sent) / len(sent) / took,
        last_fps=sum(fps) / len(fps),
        last_fps_min=min(fps),
        steal=steal_share(machine_before, machine_after),
        busy=busy,
    )


# --- through Homeroom (Janus or the mesh) ------------------------------------------------


class Person(Member):
    """A headless participant joining through Homeroom's signaling."""

    def __init__(self, url: str, attendee: str, token: str, clip: Clip) -> None:
        self.attendee = attendee
        self.media = ClipMedia(clip)
        self.participant = Participant(url, token=token, media=self.media, timeout=30.0)
        self.participant.set_microphone(False)
        self.name = ""

    async def join(self) -> None:
        await self.participant.join()
        self.name = self.participant.endpoint

    def received(self) -> dict[str, Any]:
        return self.participant.stats()


def _waiting(host: Person, guest: Person) -> bool:
    waiting = host.participant.room.get("waiting", [])
    return any(e["endpoint"] == guest.name for e in waiting)


async def through_homeroom(
    served: Served,
    n: int,
    clip: Clip,
    seconds: float,
    admissions: int,
    tag: str,
    janus_pid: int | None,
    receiver_rounds: tuple[int, float] | None = None,
) -> GroupResult:
    """A group of ``n`` through ``served``; the last joiner is admitted ``admissions`` times
    (it leaves and joins again between two). With ``receiver_rounds`` (rounds of each mode,
    seconds), the endpoints' CPU with receivers counting and decoding, after the window."""
    clinician = f"c-{tag}-{n}"
    patients = [f"p-{tag}-{n}-{k}" for k in range(1, n)]
    body = {
        "kind": "group",
        "purpose": "therapy_group",
        "roster": [
            {"attendee": clinician, "role": "clinician"},
            *({"attendee": p, "role": "patient"} for p in patients),
        ],
        "planned_minutes": 30,
        "check": True,
    }
    async with aiohttp.ClientSession() as http:
        tokens = await create_session(http, served.url, body)
    people = [Person(served.url, a, tokens[a], clip) for a in [clinician, *patients]]
    host = people[0]
    timed: list[Admission] = []

    async def enter(guest: Person, last: bool) -> None:
        await guest.join()
        await until(lambda: _waiting(host, guest))
        if last:  # everyone else is up: the last joiner's admission is timed alone
            await until(lambda: _frames_from_all(people[:-1], UP_FRAMES))
        admitted = asyncio.get_running_loop().time()
        reply = await host.participant.admit(guest.attendee)
        if not reply.get("ok"):
            raise RuntimeError(f"admit refused: {reply}")
        if last:
            await until(lambda: len(_first_frames(guest)) == n - 1)
            firsts = _first_frames(guest)
            timed.append(Admission(min(firsts) - admitted, max(firsts) - admitted))

    step = "starting"
    try:
        try:
            async with asyncio.timeout(SETUP_WITHIN):
                step = "joining"
                await host.join()
                for k, guest in enumerate(people[1:], 1):
                    step = f"admitting member {k}"
                    await enter(guest, guest is people[-1])
                step = "waiting for everyone to receive everyone"
                await until(lambda: _frames_from_all(people, UP_FRAMES))
        except TimeoutError:
            raise NotUp(f"{step}; {_missing(people)}") from None
        window = await measure_window(people, people[-1], seconds, janus_pid, served.proc.pid)
        result = GroupResult(window, timed)
        if receiver_rounds is not None:
            result.receivers = await receiver_cpu.compare(
                people, lambda: _all_frames(people), *receiver_rounds
            )
        for k in range(1, admissions):
            try:
                async with asyncio.timeout(SETUP_WITHIN):
                    gone = people.pop()
                    await gone.participant.call("leave")
                    await gone.participant.close()
                    await asyncio.sleep(1.0)  # the others' subscriptions drop its feed
                    people.append(Person(served.url, gone.attendee, tokens[gone.attendee], clip))
                    await enter(people[-1], last=True)
            except TimeoutError:
                result.trouble = (
                    f"admission {k + 1} of the last joiner not done within {SETUP_WITHIN:.0f} s "
                    f"({_missing(people)})"
                )
                break
        return result
    finally:
        await _end(host, people)


class NotUp(Exception):
    """A group that did not come up in time, and how far it got."""


def _missing(members: list[Any]) -> str:
    """Who lacks frames from whom (members by their order of joining: 0 joined first)."""
    lacking = []
    for k, me in enumerate(members):
        got = me.received()
        short = [
            str(j)
            for j, other in enumerate(members)
            if other is not me and (other.name not in got or got[other.name].video_frames < 1)
        ]
        if short:
            lacking.append(f"{k} has no frame from {','.join(short)}")
    return "; ".join(lacking) or "every member has frames from every other"


async def _end(host: Person, people: list[Person]) -> None:
    """End the session and wait for everyone's ``bye`` (their media closes with it)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(host.participant.call("end"), 10)
        await until(lambda: all(p.participant.bye_reason for p in people), within=10)
    await asyncio.gather(*(p.participant.close() for p in people), return_exceptions=True)


def _all_frames(members: list[Any]) -> int:
    """Video frames received so far by all ``members`` together."""
    return sum(s.video_frames for m in members for s in m.received().values())


def _first_frames(member: Member) -> list[float]:
    return [s.first_video_at for s in member.received().values() if s.first_video_at is not None]


# --- the floor: Janus driven directly -----------------------------------------------------


class DirectEndpoint(Member):
    """An endpoint that publishes to and subscribes from Janus's API itself."""

    def __init__(self, session: Any, room: int, pin: str, feed: int, clip: Clip) -> None:
        self._session, self._room, self._pin, self.feed = session, room, pin, feed
        self.name = f"feed-{feed}"
        self.media = ClipMedia(clip)
        self.forwarded = ForwardedMedia(
            RTCConfiguration(iceServers=[]),
            self.media,
            send_offer=self._publish_offer,
            send_answer=self._answer,
        )
        self._publisher: Any = None
        self._subscriber: Any = None

    def received(self) -> dict[str, Any]:
        return {k: dataclasses.replace(v) for k, v in self.forwarded.received.items()}

    async def publish(self) -> None:
        self._publisher = await self._session.attach()
        join = JoinPublisher(room=self._room, pin=self._pin, id=self.feed, display=self.name)
        await self._publisher.send_async(join.body())
        await self.forwarded.publish()

    async def _publish_offer(self, sdp: str) -> str:
        reply = await self._publisher.send_async(Publish().body(), Jsep(type="offer", sdp=sdp))
        if reply.jsep is None:
            raise RuntimeError("janus answered the publish without an SDP")
        return str(reply.jsep.sdp)

    async def subscribe(self, feeds: list[int]) -> None:
        self._subscriber = await self._session.attach()
        join = JoinSubscriber(room=self._room, pin=self._pin, streams=[Feed(feed=f) for f in feeds])
        while True:
            try:
                reply = await self._subscriber.send_async(join.body())
                break
            except JanusError as error:
                if error.status != NO_SUCH_FEED:
                    raise
            # A feed is there to subscribe to once its publisher's connection is up.
            await asyncio.sleep(0.05)
        if reply.jsep is None:
            raise RuntimeError("janus offered no subscription")
        streams = [
            {"mid": s["mid"], "endpoint": s["feed_display"]}
            for s in reply.plugin_data.get("streams", [])
            if s.get("active", True) and s.get("feed_display") and s.get("type") != "data"
        ]
        await self.forwarded.on_offer(reply.jsep.sdp, streams)

    async def _answer(self, sdp: str) -> None:
        await self._subscriber.send_async(Start().body(), Jsep(type="answer", sdp=sdp))

    async def close(self) -> None:
        await self.forwarded.close()
        for handle in (self._subscriber, self._publisher):
            if handle is not None:
                await handle.detach()


async def direct_janus(
    url: str, api_secret: str, n: int, clip: Clip, seconds: float, pid: int
) -> GroupResult:
    connection = JanusConnection(url, api_secret)
    await connection.connect()
    session = await connection.create_session()
    members: list[DirectEndpoint] = []
    control = await session.attach()
    room, secret, pin = random.randrange(1, 2**52), secrets.token_hex(16), secrets.token_hex(8)
    create = CreateRoom(
        room=room,
        description="bench-direct",
        secret=secret,
        pin=pin,
        admin_key=api_secret,
        publishers=n,
        bitrate=PUBLISHER_BITRATE,
    )
    try:
        await control.send(create.body())
        members = [DirectEndpoint(session, room, pin, k + 1, clip) for k in range(n)]
        async with asyncio.timeout(SETUP_WITHIN):
            for member in members:
                await member.publish()
            for member in members:
                await member.subscribe([m.feed for m in members if m is not member])
            await until(lambda: _frames_from_all(members, UP_FRAMES))
        window = await measure_window(members, members[-1], seconds, pid, None)
        return GroupResult(window)
    finally:
        await asyncio.gather(*(m.close() for m in members), return_exceptions=True)
        with contextlib.suppress(Exception):
            await control.send(DestroyRoom(room=room, secret=secret).body())
        await session.destroy()
        await connection.close()


# --- the admission floor: aiortc to aiortc, in memory -------------------------------------


async def direct_first_frames(tracks: int, clip: Clip) -> Admission:
    """One connection carrying ``tracks`` clip tracks to a newcomer: from the offer to the
    first frame, and to a frame on every track."""
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    sender, receiver = RTCPeerConnection(config), RTCPeerConnection(config)
    media = ClipMedia(clip)
    for _ in range(tracks):
        sender.addTransceiver(media.track("video"), direction="sendonly")
    stats: list[PeerStats] = []
    counters: list[asyncio.Task[None]] = []

    def on_track(track: Any) -> None:
        stats.append(PeerStats())
        counters.append(asyncio.create_task(count_frames(track, stats[-1])))

    receiver.on("track", on_track)
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)

        def firsts() -> list[float]:
            return [s.first_video_at for s in stats if s.first_video_at is not None]

        await until(lambda: len(firsts()) == tracks)
        return Admission(min(firsts()) - start, max(firsts()) - start)
    finally:
        await asyncio.gather(sender.close(), receiver.close(), return_exceptions=True)
        for task in counters:
            task.cancel()
        await asyncio.gather(*counters, return_exceptions=True)


# --- inside the namespace -----------------------------------------------------------------


def _pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if PINNED else []


async def _serve(out: Path, redis_url: str, prefix: str, extra: dict[str, str]) -> Served:
    port = free_port()
    env = {**homeroom_env(out, port, redis_url, prefix), "HOMEROOM_EVENT_RATE": "0", **extra}
    argv = [*_pinned(SERVER_CORE), str(HOMEROOM), "serve"]
    proc = Proc("homeroom serve", argv, out / f"{prefix}.log", env, cwd=out)
    served = Served(proc, f"http://127.0.0.1:{port}")
    await served.ready("/readyz")
    return served


async def measure(address: str, mode: str, out: Path, sizes: tuple[int, ...]) -> Results:
    """Every figure of the part, inside the namespace whose veth side holds ``address``."""
    admissions = ADMISSIONS[mode]
    failed = _count_task_failures()
    results = Results()
    seconds = WINDOW[mode]
    started = time.perf_counter()
    clip = encode_clip()
    frame = sum(len(f) for f in clip.frames) / len(clip.frames)
    results.notes.append(
        f"{PART}: clip {clip.spec.width}x{clip.spec.height} VP8, {clip.spec.fps} fps, every "
        f"frame a keyframe, {frame:,.0f} B per frame, {clip.bytes_per_second / 1000:.1f} kB/s "
        f"(encoded in {time.perf_counter() - started:.1f} s); no audio"
    )
    redis = RedisProc(out / "redis-group")
    low = random.randrange(20000, 59000, 1000)
    config = JanusConfig(
        ws_ip=address,
        ws_port=JANUS_PORT,
        ice_enforce=(address,),
        rtp_port_range=f"{low}-{low + 999}",
    )
    janus = JanusProcess(config, out / "janus-group", prefix=_pinned(SERVER_CORE))
    servers: list[Served] = []
    try:
        janus.start()
        janus.wait_listening(timeout=60.0)
        assert janus.pid is not None
        forwarded = await _serve(
            out,
            redis.url,
            "bench-group",
            {"HOMEROOM_JANUS_URLS": config.url, "HOMEROOM_JANUS_API_SECRET": config.api_secret},
        )
        servers.append(forwarded)
        no_forwarder = {"HOMEROOM_JANUS_EMBEDDED": "false"}
        meshed = await _serve(out, redis.url, "bench-group-mesh", no_forwarder)
        servers.append(meshed)
        idle = cpu_seconds(janus.pid)
        await asyncio.sleep(seconds)
        idle = cpu_seconds(janus.pid) - idle
        results.notes.append(
            f"{PART}: Janus with no room (Homeroom connected): {100 * idle / seconds:.2f}% of a "
            f"core over {seconds:.0f} s; the per-stream figures include this share"
        )
        mesh_failed: int | None = None
        for n in sizes:
            print(f"== group of {n}", file=sys.stderr, flush=True)
            compared = RECEIVER_ROUNDS[mode] if n == max(sizes) else None
            home = await _attempt(
                results, f"{n} through Homeroom",
                through_homeroom(forwarded, n, clip, seconds, admissions, "j", janus.pid,
                                 compared),
            )  # fmt: skip
            floor = await _attempt(
                results, f"{n} on Janus directly",
                direct_janus(config.url, config.api_secret, n, clip, seconds, janus.pid),
            )  # fmt: skip
            mesh = None
            if mesh_failed is None:
                mesh = await _attempt(
                    results, f"{n} in a mesh",
                    through_homeroom(meshed, n, clip, seconds, admissions, "m", None),
                    failure_is_error=False,
                )  # fmt: skip
                if mesh is None:
                    mesh_failed = n
            else:
                results.notes.append(
                    f"{PART}: the mesh of {n} was not run (the mesh of {mesh_failed} did not "
                    "come up)"
                )
            direct: list[Admission] = []
            for _ in range(admissions):
                one = await _attempt(
                    results, f"{n} admission floor", direct_first_frames(n - 1, clip)
                )
                if one is not None:
                    direct.append(one)
            _rows(results, n, home, floor, mesh, direct)
            for name, group in (("through Homeroom", home), ("in a mesh", mesh)):
                if group is not None and group.trouble:
                    results.errors.append(f"{PART}: group of {n} {name}: {group.trouble}")
    finally:
        for served in servers:
            served.proc.stop()
        janus.stop()
        redis.stop()
    if failed:
        counted = ", ".join(f"{count} {name}" for name, count in sorted(failed.items()))
        results.notes.append(
            f"{PART}: exceptions that no task of the endpoints retrieved: {counted}"
        )
    return results


def _count_task_failures() -> dict[str, int]:
    """Count the exceptions no task retrieved (by type) instead of printing each; the
    participants' offers that race a group's end are such."""
    failed: dict[str, int] = {}

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if error is None:
            loop.default_exception_handler(context)
            return
        name = type(error).__name__
        failed[name] = failed.get(name, 0) + 1

    asyncio.get_running_loop().set_exception_handler(handler)
    return failed


async def _attempt(results: Results, what: str, work: Any, failure_is_error: bool = True) -> Any:
    # The connections of the step before are still closing: let them go first.
    await asyncio.sleep(SETTLE)
    try:
        return await work
    except TimeoutError:
        message = f"{PART}: group of {what}: not up within {SETUP_WITHIN:.0f} s"
    except NotUp as exc:
        message = f"{PART}: group of {what}: not up within {SETUP_WITHIN:.0f} s, {exc}"
    except Exception as exc:
        message = f"{PART}: group of {what}: {type(exc).__name__}: {exc}"
    (results.errors if failure_is_error else results.notes).append(message)
    return None


def _rows(
    results: Results,
    n: int,
    home: GroupResult | None,
    floor: GroupResult | None,
    mesh: GroupResult | None,
    direct: list[Admission],
) -> None:
    hw = home.window if home else None
    fw = floor.window if floor else None
    mw = mesh.window if mesh else None
    timed = home.admissions if home else []

    def add(figure: str, unit: str, value: float | None, base: float | None) -> None:
        results.rows.append(Row(PART, f"{n} endpoints, {figure}", unit, value, base))

    def janus(w: Window | None, server: bool = False) -> float | None:
        if w is None or w.janus_cpu is None:
            return None
        return w.per_stream(w.janus_cpu + (w.server_cpu or 0.0 if server else 0.0))

    def of(w: Window | None, get: Callable[[Window], float]) -> float | None:
        return None if w is None else get(w)

    def uplink(w: Window) -> float:
        return w.uplink / 1000

    def fps(w: Window) -> float:
        return w.last_fps

    def p50(samples: list[Admission], get: Callable[[Admission], float]) -> float | None:
        found = percentile([get(a) for a in samples], 50)
        return None if found is None else 1000 * found

    def one(a: Admission) -> float:
        return a.first

    def every(a: Admission) -> float:
        return a.every

    add("Janus CPU per forwarded stream", "ms/s", janus(hw), janus(fw))
    add("Janus + server CPU per forwarded stream", "ms/s", janus(hw, server=True), janus(fw))
    add("video uplink per endpoint", "kB/s", of(hw, uplink), of(fw, uplink))
    add("last joiner's frames per second per stream", "1/s", of(hw, fps), of(fw, fps))
    k = len(timed)
    add(f"admission to last joiner's first frame, p50 of {k}", "ms",
        p50(timed, one), p50(direct, one))  # fmt: skip
    add(f"admission to frames from all {n - 1}, p50 of {k}", "ms",
        p50(timed, every), p50(direct, every))  # fmt: skip
    if home is not None and home.receivers is not None:
        compared = home.receivers

        def per_stream(decoding: bool) -> float:
            return 1000 * compared.cpu(decoding) / compared.streams

        if min(compared.fps(False), compared.fps(True)) > 0:  # else it compares idle receivers
            add("endpoints' CPU per received stream, receivers counting / decoding", "ms/s",
                per_stream(False), per_stream(True))  # fmt: skip
        results.notes.append(receiver_cpu.describe(compared, n))
    if mw is not None and mesh is not None:
        add("mesh / Janus: video uplink per endpoint", "kB/s", of(mw, uplink), of(hw, uplink))
        add("mesh / Janus: last joiner's frames per second per stream", "1/s",
            of(mw, fps), of(hw, fps))  # fmt: skip
        add(f"mesh / Janus: admission to frames from all {n - 1}, p50", "ms",
            p50(mesh.admissions, every), p50(timed, every))  # fmt: skip

    def listed(samples: list[Admission]) -> str:
        return ", ".join(f"{1000 * a.first:.0f}/{1000 * a.every:.0f}" for a in samples)

    results.notes.append(
        f"{PART}: {n} admissions, ms to the first frame/to frames from all: through Homeroom "
        f"{listed(timed)}; mesh {listed(mesh.admissions if mesh else [])}; direct aiortc "
        f"{listed(direct)}"
    )
    for name, w in (("through Homeroom", hw), ("Janus directly", fw), ("mesh", mw)):
        if w is None:
            continue
        ours = {f"cpu{SERVER_CORE}": (w.janus_cpu or 0.0) + (w.server_cpu or 0.0),
                f"cpu{LOAD_CORE}": w.load_cpu}  # fmt: skip
        cores = ", ".join(
            f"{core} busy {100 * share:.0f}% (this group's processes "
            f"{100 * ours.get(core, 0.0) / w.seconds:.0f}%)"
            for core, share in sorted(w.busy.items())
        )
        steal = "" if w.steal is None else f", {100 * w.steal:.1f}% stolen"
        server = "" if w.server_cpu is None else f", server {100 * w.server_cpu / w.seconds:.1f}%"
        spent = "" if w.janus_cpu is None else f"Janus {100 * w.janus_cpu / w.seconds:.1f}%, "
        results.notes.append(
            f"{PART}: {n} {name}: {spent}endpoints {100 * w.load_cpu / w.seconds:.0f}% of a core"
            f"{server}; {cores}{steal}; slowest stream at the last joiner "
            f"{w.last_fps_min:.1f} fps"
        )


def inside(argv: list[str]) -> int:
    """The part inside the namespace: measure, write the rows as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--inside", required=True, help="the namespace side's address")
    parser.add_argument("--mode", choices=list(SIZES), default="full")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--sizes", default="")
    args = parser.parse_args(argv)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    pin_self_to_load_core()
    signal.signal(signal.SIGTERM, _exit_on_term)
    sizes = tuple(int(s) for s in args.sizes.split(",") if s) or SIZES[args.mode]
    args.out.mkdir(parents=True, exist_ok=True)
    # Every receiver of this process is the benchmark's: they count, and decode only in the
    # rounds that compare both.
    with counting_receivers():
        results = asyncio.run(measure(args.inside, args.mode, args.out, sizes))
    data = {
        "rows": [dataclasses.asdict(r) for r in results.rows],
        "notes": results.notes,
        "errors": results.errors,
    }
    args.result.write_text(json.dumps(data, indent=2) + "\n")
    return 0


def _exit_on_term(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")


# --- in the bench process -----------------------------------------------------------------


async def run(p: Params, out: Path, report: Report, sizes: tuple[int, ...] = ()) -> None:
    from tests.netns import unavailable_reason

    reason = unavailable_reason()
    if reason is None and find_binary() is None:
        reason = "janus is not installed (make check-janus installs it)"
    if reason is not None:
        report.notes.append(f"{PART} skipped: {reason}")
        return
    mode = "quick" if report.mode == "quick" else "full"
    result = out / "group-results.json"
    stopped = await asyncio.to_thread(_in_namespace, mode, out, result, sizes)
    if stopped is not None:
        report.errors.append(stopped)
    if not result.exists():
        report.errors.append(f"{PART}: the measuring process gave no results")
        return
    data = json.loads(result.read_text())
    for row in data["rows"]:
        report.add(Row(**row))
    report.notes.extend(data["notes"])
    report.errors.extend(data["errors"])


def _in_namespace(mode: str, out: Path, result: Path, sizes: tuple[int, ...]) -> str | None:
    """Run the part in a namespace of its own; an error message if it had to be stopped."""
    from tests.netns import network_namespace

    result.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    with network_namespace() as namespace:
        argv = [
            *namespace.prefix, sys.executable, "-m", "bench.group_media",
            "--inside", namespace.inner_address, "--mode", mode,
            "--out", str(out.resolve()), "--result", str(result.resolve()),
            "--sizes", ",".join(map(str, sizes)),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(argv, env=env, cwd=REPO)
        try:
            proc.wait(PART_WITHIN[mode])
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # it stops its servers and Janus on the way out
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return f"{PART}: stopped after {PART_WITHIN[mode]:.0f} s"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--inside" in argv:
        return inside(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.group_media", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="groups of 3 and 5, short windows")
    parser.add_argument("--sizes", default="", help="group sizes, e.g. 3,5,9,13")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args(argv)
    report = Report(mode="quick" if args.quick else "full")
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    asyncio.run(run(QUICK if args.quick else FULL, args.out, report, sizes))
    info = machine()
    print(f"\nGroup media ({report.mode}), {info['cores']} cores, {info['cpu']}")
    print(report.table())
    for note in report.notes:
        print(f"note: {note}")
    for error in report.errors:
        print(f"ERROR: {error}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
