"""The patient's side of the program: the standing link's page data and check-in requests.

Every endpoint here takes the standing link token as ``Authorization: Bearer``: the page
reads it from the fragment, so it never reaches a server log. Answers carry no names but
the care team's display names, which the patient sees anyway.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rooms.checkins import REASON_WORDS, CheckinId, CheckinRequest, CheckinStatus, Reason
from rooms.enrollment import Enrollment
from rooms.errors import CheckinNotFound
from rooms.ids import AttendeeId, SessionId
from rooms.kinds import GroupPurpose, SessionKind
from rooms.program import DaySession, Program, Timing
from rooms.session import SessionStatus
from web.auth import bearer_token
from web.errors import parse_body, parse_query
from web.keys import PROGRAM, SETTINGS

#: The longest a patient's page waits on one request for news, and how often it rechecks.
MAX_WAIT_SECONDS = 25.0
RECHECK_SECONDS = 0.5


class DayItem(BaseModel):
    session: SessionId
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    kind: SessionKind
    purpose: GroupPurpose | None
    status: SessionStatus
    clinician: str | None
    #: upcoming | open | past, by the server's clock (see Program.timing).
    timing: Timing
    #: True when the waiting room can be entered now (the session to join).
    joinable: bool


class CheckinView(BaseModel):
    id: CheckinId
    status: CheckinStatus
    kind: SessionKind
    reason: Reason | None
    requested_at: AwareDatetime
    waited_seconds: float
    #: Place in the care team's queue (1: next), while waiting.
    place: int | None
    session: SessionId | None
    #: The session's link (a path with the token in its fragment), once picked up.
    url: str | None = None


class ProgramDay(BaseModel):
    """``GET /api/program``: everything the standing link's page shows."""

    patient: AttendeeId
    timezone: str
    today: list[DayItem]
    on_duty: bool
    hours: str
    crisis_line: str
    reasons: dict[str, str]
    can_ask_together: bool
    checkin: CheckinView | None


class AskCheckin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None
    together: bool = False


async def program_day(request: web.Request) -> web.Response:
    program, settings = request.app[PROGRAM], request.app[SETTINGS]
    enrollment = await program.authenticate(bearer_token(request))
    patient = AttendeeId(enrollment.patient)
    days = await program.today(patient)
    # One look at the clock for the whole day: the session to join is one of those open.
    timings = [program.timing(d) for d in days]
    open_now = _joinable(days, timings)
    current = await program.store.open_request(patient)
    body = ProgramDay(
        patient=patient,
        timezone=settings.timezone,
        today=[_item(enrollment, d, t, d is open_now) for d, t in zip(days, timings, strict=True)],
        on_duty=program.on_duty(),
        hours=settings.checkin_hours,
        crisis_line=settings.crisis_line,
        reasons={str(k): v for k, v in REASON_WORDS.items()},
        can_ask_together=enrollment.partner is not None,
        checkin=await _view(program, current, patient) if current else None,
    )
    return _json(body)


async def session_link(request: web.Request) -> web.Response:
    """``POST /api/program/sessions/{session}/link``: the way into one of today's sessions."""
    program = request.app[PROGRAM]
    enrollment = await program.authenticate(bearer_token(request))
    token = await program.session_link(enrollment, SessionId(request.match_info["session"]))
    return web.json_response({"url": f"/join#t={token}"})


async def ask(request: web.Request) -> web.Response:
    program = request.app[PROGRAM]
    enrollment = await program.authenticate(bearer_token(request))
    body = await parse_body(request, AskCheckin)
    req = await program.request_checkin(enrollment, body.reason, body.together)
    return _json(await _view(program, req, AttendeeId(enrollment.patient)), status=201)


class ShowParams(BaseModel):
    """``?wait=S&place=N``: answer once the request is no longer waiting at place ``N``, or
    after ``S`` seconds (a long poll: the page hears of a pick-up at once)."""

    model_config = ConfigDict(extra="forbid")

    wait: float = Field(default=0, ge=0, le=MAX_WAIT_SECONDS)
    place: int | None = Field(default=None, ge=1)


async def show(request: web.Request) -> web.Response:
    program = request.app[PROGRAM]
    params = parse_query(request, ShowParams)
    enrollment, req = await _mine(request)
    patient = AttendeeId(enrollment.patient)
    deadline = asyncio.get_running_loop().time() + params.wait
    view = await _view(program, req, patient)
    while view.status is CheckinStatus.WAITING and view.place == params.place:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        # Changes made here wake it at once; other nodes' are read every RECHECK seconds.
        await program.queue_changed(min(left, RECHECK_SECONDS))
        view = await _view(program, await program.store.request(req.id), patient)
    return _json(view)


async def cancel(request: web.Request) -> web.Response:
    program = request.app[PROGRAM]
    enrollment, req = await _mine(request)
    patient = AttendeeId(enrollment.patient)
    return _json(await _view(program, await program.cancel(patient, req.id), patient))


async def _mine(request: web.Request) -> tuple[Enrollment, CheckinRequest]:
    program = request.app[PROGRAM]
    enrollment = await program.authenticate(bearer_token(request))
    req = await program.store.request(CheckinId(request.match_info["checkin"]))
    if enrollment.patient not in req.people():
        raise CheckinNotFound("no such check-in request")  # not saying whose it is
    return enrollment, req


async def _view(program: Program, req: CheckinRequest, patient: AttendeeId) -> CheckinView:
    now = program.rooms.clock()
    place = None
    if req.status is CheckinStatus.WAITING:
        ahead = [r for r in await program.store.waiting() if set(r.team) & set(req.team)]
        place = next((i + 1 for i, r in enumerate(ahead) if r.id == req.id), None)
    url = None
    if req.status is CheckinStatus.TAKEN:
        url = f"/join#t={await program.patient_link(req, patient)}"
    return CheckinView(
        id=req.id,
        status=req.status,
        kind=req.kind,
        reason=req.reason,
        requested_at=req.requested_at,
        waited_seconds=round(req.waited(now).total_seconds(), 1),
        place=place,
        session=req.session,
        url=url,
    )


def _joinable(days: list[DaySession], timings: list[Timing]) -> DaySession | None:
    """The session to join now: the latest-starting one whose waiting room is open."""
    open_now = [d for d, t in zip(days, timings, strict=True) if t is Timing.OPEN]
    return max(open_now, key=lambda d: d.spec.starts_at, default=None)


def _item(enrollment: Enrollment, day: DaySession, timing: Timing, joinable: bool) -> DayItem:
    clinicians = day.clinicians()
    names = [enrollment.display_name(c) for c in clinicians]
    shown = next((n for n in names if n), None)
    return DayItem(
        session=day.spec.id,
        starts_at=day.spec.starts_at,
        ends_at=day.spec.ends_at,
        kind=day.spec.kind,
        purpose=day.spec.purpose,
        status=day.status,
        clinician=shown,
        timing=timing,
        joinable=joinable,
    )


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)
