"""``homeroom probe``: prove a deployment carries a call, end to end, from the outside.

Creates an individual session through the REST API, joins a clinician and a patient
participant through signaling, admits the patient, and waits until audio and video flow both
ways. Then ends the session. Operators run it against a live deployment; it uses only the
public API and the wire protocol, so it checks what a browser depends on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
from pydantic import BaseModel

from media.errors import JoinRefused, ProbeFailed
from media.participant import Participant
from media.synthetic import MediaSpec

log = structlog.get_logger("homeroom.probe")

CLINICIAN, PATIENT = "c-probe", "p-probe"
SESSION_REQUEST = {
    "kind": "individual",
    "roster": [
        {"attendee": CLINICIAN, "role": "clinician"},
        {"attendee": PATIENT, "role": "patient"},
    ],
    "planned_minutes": 15,
    # Not care: attendance reports leave it out and nothing in it is billable.
    "check": True,
}


class SideReport(BaseModel):
    """One participant: how fast it joined, and what it received from the other one."""

    attendee: str
    #: Socket connect until the server's ``welcome``.
    connect_ms: float | None = None
    #: From the clinician's ``admit`` to the first video frame decoded from the other side.
    first_video_ms: float | None = None
    video_frames: int = 0
    audio_frames: int = 0


class ProbeReport(BaseModel):
    """The probe's verdict; ``ok`` only if video and audio flowed both ways."""

    ok: bool
    url: str
    session: str | None = None
    clinician: SideReport
    patient: SideReport
    #: Why not ok: the step that failed or timed out.
    detail: str = ""


async def probe(
    url: str,
    staff_token: str,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 -- the whole run's budget, the CLI's --timeout
    min_video_frames: int = 10,
    min_audio_frames: int = 25,
    spec: MediaSpec | None = None,
    relay_only: bool = False,
) -> ProbeReport:
    """Run one probe call against the Homeroom at ``url``; returns within about ``timeout``.

    Raises :class:`ProbeFailed` when no session could be created (server unreachable, token
    refused); every later failure is a report with ``ok=False`` and a ``detail``.
    ``relay_only`` sends the media through the deployment's TURN relays alone.
    """
    base = url.rstrip("/")
    created = await _create_session(base, staff_token, timeout)
    tokens = {link["attendee"]: link["url"].split("#t=", 1)[1] for link in created["links"]}
    run = _Run(base, created["session"], tokens, spec, relay_only)
    try:
        async with asyncio.timeout(timeout):
            await run.call(min_video_frames, min_audio_frames)
    except TimeoutError:
        run.detail = f"timed out {run.step}"
    except JoinRefused as exc:
        run.detail = f"refused {run.step}: {exc.code}: {exc.detail}"
    finally:
        await run.finish()
    report = run.report()
    log.info("probe_done", ok=report.ok, session=report.session, detail=report.detail)
    return report


class _Run:
    """One probe call's participants and measurements."""

    def __init__(
        self,
        base: str,
        session: str,
        tokens: dict[str, str],
        spec: MediaSpec | None,
        relay_only: bool = False,
    ) -> None:
        self.base, self.session = base, session
        self.relay_only = relay_only
        self.clinician = Participant(
            base, token=tokens[CLINICIAN], spec=spec, relay_only=relay_only
        )
        self.patient = Participant(base, token=tokens[PATIENT], spec=spec, relay_only=relay_only)
        self.step = "starting"
        self.detail = ""
        self.admitted_at: float | None = None
        self.flowed = False

    async def call(self, min_video: int, min_audio: int) -> None:
        self.step = "joining the clinician"
        await self.clinician.join()
        self.step = "joining the patient"
        await self.patient.join()
        if self.relay_only and not any(
            "turn" in str(s.get("urls")) for s in self.patient.welcome["ice_servers"]
        ):
            raise JoinRefused("no_turn", "the server hands out no TURN server (HOMEROOM_TURN_URLS)")
        self.step = "waiting for the patient in the waiting room"
        await _until(lambda: bool(self.clinician.room["waiting"]))
        self.step = "admitting the patient"
        self.admitted_at = asyncio.get_running_loop().time()
        reply = await self.clinician.admit(PATIENT)
        if not reply.get("ok"):
            raise JoinRefused(reply.get("error", "refused"), reply.get("detail", ""))
        self.step = "waiting for media both ways"
        pairs = [(self.clinician, self.patient), (self.patient, self.clinician)]

        def flowing() -> bool:
            got = [r.received(s.endpoint) for r, s in pairs]
            return all(g.video_frames >= min_video and g.audio_frames >= min_audio for g in got)

        await _until(flowing)
        self.flowed = True

    async def finish(self) -> None:
        """End the session for everyone, then close both participants, whatever happened."""
        try:
            if self.clinician.welcome and self.clinician.bye_reason is None:
                await asyncio.wait_for(self.clinician.call("end"), 5)
        except Exception:  # the verdict is already made; this is tidying
            log.warning("probe_end_failed", session=self.session)
        await asyncio.gather(self.clinician.close(), self.patient.close())

    def report(self) -> ProbeReport:
        return ProbeReport(
            ok=self.flowed,
            url=self.base,
            session=self.session,
            clinician=self._side(CLINICIAN, self.clinician, self.patient),
            patient=self._side(PATIENT, self.patient, self.clinician),
            detail=self.detail,
        )

    def _side(self, attendee: str, me: Participant, other: Participant) -> SideReport:
        got = me.received(other.endpoint) if other.welcome else None
        first = got.first_video_at if got else None
        return SideReport(
            attendee=attendee,
            connect_ms=_ms(me.join_seconds),
            first_video_ms=_ms(first - self.admitted_at)
            if first is not None and self.admitted_at is not None
            else None,
            video_frames=got.video_frames if got else 0,
            audio_frames=got.audio_frames if got else 0,
        )


async def _create_session(
    base: str, staff_token: str, seconds: float, request: dict[str, Any] | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {staff_token}"}
    body_out = request or SESSION_REQUEST
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as http,
            http.post(f"{base}/api/sessions", json=body_out, headers=headers) as resp,
        ):
            body = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ProbeFailed(
            "unreachable", f"{base}/api/sessions: {exc or type(exc).__name__}"
        ) from None
    if status != 201 or not isinstance(body, dict):
        error = body if isinstance(body, dict) else {}
        raise ProbeFailed(
            str(error.get("error", f"http_{status}")),
            str(error.get("detail", "the server refused to create the probe session")),
        )
    return body


async def _until(predicate: Callable[[], bool]) -> None:
    """Poll; the caller's ``asyncio.timeout`` bounds the wait."""
    # Frames are counted in aiortc's tasks: polling beats one event per counter.
    while not predicate():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
