"""``homeroom probe --kind group``: a real group call of N headless participants, end to end.

Creates a group session through the REST API (a clinician and N-1 patients), joins everyone
through signaling, admits the patients, and waits until every participant receives audio and
video frames from every other one. Reports the forwarder used ("janus" when the server said
``target: server``, "mesh" otherwise) and the frames each received from each peer; ok only if
everyone received everyone. Then ends the session.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from pydantic import BaseModel

from media.errors import JoinRefused
from media.participant import Participant
from media.probe import _create_session, _ms, _until
from media.synthetic import MediaSpec

log = structlog.get_logger("homeroom.probe")

CLINICIAN = "c-probe"
MIN_PARTICIPANTS, MAX_PARTICIPANTS = 2, 14
#: Small pictures: N participants encode once and decode N-1 times each, on one machine.
SPEC = MediaSpec(width=160, height=120, fps=10)


def session_request(participants: int) -> dict[str, Any]:
    patients = [f"p-probe-{i}" for i in range(1, participants)]
    return {
        "kind": "group",
        "purpose": "therapy_group",
        "roster": [
            {"attendee": CLINICIAN, "role": "clinician"},
            *({"attendee": p, "role": "patient"} for p in patients),
        ],
        "planned_minutes": 15,
        # Not care: attendance reports leave it out and nothing in it is billable.
        "check": True,
    }


class Received(BaseModel):
    video_frames: int = 0
    audio_frames: int = 0


class MemberReport(BaseModel):
    """One participant: how fast it joined, and the frames it received from each peer."""

    attendee: str
    endpoint: str | None = None
    connect_ms: float | None = None
    #: Video RTP streams it uploaded (1 through a forwarder, N-1 in a mesh).
    uploads: int | None = None
    received: dict[str, Received] = {}


class GroupProbeReport(BaseModel):
    ok: bool
    url: str
    session: str | None = None
    participants: int
    forwarder: str = "unknown"
    members: list[MemberReport] = []
    detail: str = ""


async def group_probe(
    url: str,
    staff_token: str,
    *,
    participants: int = 3,
    timeout: float = 60.0,  # noqa: ASYNC109 -- the whole run's budget, the CLI's --timeout
    min_frames: int = 5,
) -> GroupProbeReport:
    """Run one group call of ``participants`` endpoints; returns within about ``timeout``."""
    if not MIN_PARTICIPANTS <= participants <= MAX_PARTICIPANTS:
        raise ValueError(f"participants: {MIN_PARTICIPANTS} to {MAX_PARTICIPANTS}")
    base = url.rstrip("/")
    created = await _create_session(base, staff_token, timeout, session_request(participants))
    tokens = {link["attendee"]: link["url"].split("#t=", 1)[1] for link in created["links"]}
    run = _GroupRun(base, created["session"], tokens)
    try:
        async with asyncio.timeout(timeout):
            await run.call(min_frames)
    except TimeoutError:
        run.detail = f"timed out {run.step}"
    except JoinRefused as exc:
        run.detail = f"refused {run.step}: {exc.code}: {exc.detail}"
    report = await run.report()
    await run.finish()
    log.info("probe_done", ok=report.ok, session=report.session, detail=report.detail)
    return report


class _GroupRun:
    def __init__(self, base: str, session: str, tokens: dict[str, str]) -> None:
        self.base, self.session = base, session
        self.members = {
            attendee: Participant(base, token=token, spec=SPEC)
            for attendee, token in sorted(tokens.items())
        }
        self.step, self.detail, self.flowed = "starting", "", False

    async def call(self, min_frames: int) -> None:
        clinician = self.members[CLINICIAN]
        for attendee, member in self.members.items():
            self.step = f"joining {attendee}"
            await member.join()
            if member is clinician:
                continue
            self.step = f"admitting {attendee}"

            def waits(who: str = attendee) -> bool:
                return _waiting(clinician, who)

            await _until(waits)
            reply = await clinician.admit(attendee)
            if not reply.get("ok"):
                raise JoinRefused(reply.get("error", "refused"), reply.get("detail", ""))
        self.step = "waiting for everyone to receive everyone"
        everyone = list(self.members.values())

        def flowing() -> bool:
            refused = next((m.media_refused for m in everyone if m.media_refused), None)
            if refused is not None:
                raise JoinRefused(refused, "the server refused a participant's feed")
            return all(
                me.received(other.endpoint).video_frames >= min_frames
                and me.received(other.endpoint).audio_frames >= min_frames
                for me in everyone
                for other in everyone
                if other is not me
            )

        await _until(flowing)
        self.flowed = True

    async def report(self) -> GroupProbeReport:
        joined = [m for m in self.members.values() if m.welcome]
        target = joined[0].welcome.get("target") if joined else None
        return GroupProbeReport(
            ok=self.flowed,
            url=self.base,
            session=self.session,
            participants=len(self.members),
            forwarder={"server": "janus", "peer": "mesh"}.get(str(target), "unknown"),
            members=[await self._member(a, m) for a, m in self.members.items()],
            detail=self.detail,
        )

    async def _member(self, attendee: str, me: Participant) -> MemberReport:
        if not me.welcome:
            return MemberReport(attendee=attendee)
        received = {
            remote: Received(video_frames=s.video_frames, audio_frames=s.audio_frames)
            for remote, s in me.stats().items()
        }
        uploads = await me.forwarded.outbound_video_streams() if me.forwarded else len(me.peers)
        return MemberReport(
            attendee=attendee,
            endpoint=me.endpoint,
            connect_ms=_ms(me.join_seconds),
            uploads=uploads,
            received=received,
        )

    async def finish(self) -> None:
        clinician = self.members[CLINICIAN]
        try:
            if clinician.welcome and clinician.bye_reason is None:
                await asyncio.wait_for(clinician.call("end"), 5)
        except Exception:  # the verdict is already made; this is tidying
            log.warning("probe_end_failed", session=self.session)
        await asyncio.gather(*(m.close() for m in self.members.values()))


def _waiting(clinician: Participant, attendee: str) -> bool:
    waiting = clinician.room.get("waiting", [])
    return any(a["attendee"] == attendee for e in waiting for a in e["attendees"])
