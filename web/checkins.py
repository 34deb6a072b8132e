"""The staff side of the program: standing links (admins) and the check-in queue (clinicians).

Bearer staff tokens, pseudonymous ids only; issuing and withdrawing a standing link is
recorded in the admin audit log.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rooms.checkin_report import report
from rooms.checkins import CheckinId, CheckinRequest, CheckinStatus, Reason
from rooms.enrollment import CareTeamMember, Enrollment
from rooms.errors import InvalidMessage, NotAuthorized
from rooms.ids import AttendeeId, PseudonymStr, SessionId, is_valid_id
from rooms.kinds import SessionKind
from rooms.tokens import StaffRole, session_links
from web.auth import require_staff
from web.errors import parse_body, parse_query
from web.keys import PROGRAM, ROOMS, SETTINGS, SIGNALING

MAX_REPORT_DAYS = 92
#: How long a request that left the queue is still shown to the consoles (taken, cancelled).
RECENT = timedelta(minutes=10)


class IssueLink(BaseModel):
    """The body of ``POST /api/patients/{patient}/link``."""

    model_config = ConfigDict(extra="forbid")

    care_team: list[CareTeamMember] = Field(min_length=1, max_length=20)
    partner: PseudonymStr | None = None


class PatientLink(BaseModel):
    patient: AttendeeId
    url: str
    care_team: list[CareTeamMember]
    partner: AttendeeId | None


class QueueItem(BaseModel):
    id: CheckinId
    patient: AttendeeId
    partner: AttendeeId | None
    kind: SessionKind
    reason: Reason | None
    requested_at: AwareDatetime
    waited_seconds: float


class Settled(BaseModel):
    """A request of the caller's teams that left the queue lately: who picked it up, or
    that the patient cancelled it (so every console can say it was taken)."""

    id: CheckinId
    patient: AttendeeId
    status: CheckinStatus
    taken_by: AttendeeId | None
    at: AwareDatetime


class Queue(BaseModel):
    """``GET /api/checkins``: the waiting requests this caller may pick up, and those that
    left the queue in the last ``RECENT`` minutes."""

    on_duty: bool
    requests: list[QueueItem]
    recent: list[Settled]


class Taken(BaseModel):
    checkin: CheckinId
    session: SessionId
    #: The clinician's link into the session (their host page).
    url: str


class ReportParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first: date = Field(alias="from")
    last: date = Field(alias="to")


async def issue_link(request: web.Request) -> web.Response:
    settings, program = request.app[SETTINGS], request.app[PROGRAM]
    staff = require_staff(request, settings.signing_secret, program.rooms.clock(), StaffRole.ADMIN)
    patient = _patient(request)
    body = await parse_body(request, IssueLink)
    if body.partner == patient:
        raise InvalidMessage("a patient cannot be their own partner")
    enrollment, token = await program.issue_link(patient, tuple(body.care_team), body.partner)
    await _audit(request, staff.subject, "program_link_issued", patient)
    url = f"{settings.public_url.rstrip('/')}/program#t={token}"
    answer = PatientLink(
        patient=patient, url=url, care_team=list(enrollment.care_team), partner=body.partner
    )
    return web.json_response(text=answer.model_dump_json(), status=201)


async def revoke_link(request: web.Request) -> web.Response:
    """Withdraw the standing link: refused from now on, and its connections closed."""
    settings, program = request.app[SETTINGS], request.app[PROGRAM]
    staff = require_staff(request, settings.signing_secret, program.rooms.clock(), StaffRole.ADMIN)
    patient = _patient(request)
    enrollment, changes = await program.revoke(patient)
    await _audit(request, staff.subject, "program_link_revoked", patient)
    for done in changes:
        await request.app[SIGNALING].publish_change(done.state, done.events, done.connections)
    return web.json_response(
        {
            "patient": patient,
            "revoked_at": enrollment.revoked_at.isoformat() if enrollment.revoked_at else None,
            "signed_out_sessions": len(changes),
        }
    )


async def list_patients(request: web.Request) -> web.Response:
    settings, program = request.app[SETTINGS], request.app[PROGRAM]
    require_staff(request, settings.signing_secret, program.rooms.clock(), StaffRole.ADMIN)
    found = [_patient_row(e) for e in await program.store.enrollments()]
    return web.json_response({"patients": found})


async def queue(request: web.Request) -> web.Response:
    settings, program = request.app[SETTINGS], request.app[PROGRAM]
    staff = require_staff(request, settings.signing_secret, program.rooms.clock())
    who = None if staff.role is StaffRole.ADMIN else AttendeeId(staff.subject)
    now = program.rooms.clock()
    items = [_queue_item(r, now) for r in await program.queue(who)]
    since = now - RECENT
    lately = await program.store.requests_between(
        now - timedelta(days=1), now + timedelta(minutes=1)
    )
    recent = [
        Settled(id=r.id, patient=r.patient, status=r.status, taken_by=r.taken_by, at=at)
        for r in lately
        if (at := r.taken_at or r.cancelled_at) is not None
        and at >= since
        and (who is None or who in r.team)
    ]
    body = Queue(on_duty=program.on_duty(), requests=items, recent=recent)
    return web.json_response(text=body.model_dump_json())


async def take(request: web.Request) -> web.Response:
    """Pick a request up (clinicians of the patient's care team): exactly one wins."""
    settings, program = request.app[SETTINGS], request.app[PROGRAM]
    staff = require_staff(request, settings.signing_secret, program.rooms.clock())
    if staff.role is not StaffRole.CLINICIAN:
        raise NotAuthorized("only a clinician can pick up a check-in")
    checkin = CheckinId(request.match_info["checkin"])
    taken, state = await program.take(AttendeeId(staff.subject), checkin)
    links = session_links(
        settings.signing_secret, state.spec, base_url="",
        lead=program.config.lead, trail=program.config.trail,
    )  # fmt: skip
    mine = next(link.url for link in links if link.attendee == staff.subject)
    body = Taken(checkin=taken.id, session=state.spec.id, url=mine)
    return web.json_response(text=body.model_dump_json(), status=201)


async def get_report(request: web.Request) -> web.Response:
    settings, program = request.app[SETTINGS], request.app[PROGRAM]
    require_staff(request, settings.signing_secret, program.rooms.clock(), StaffRole.ADMIN)
    params = parse_query(request, ReportParams)
    if not 0 <= (params.last - params.first).days < MAX_REPORT_DAYS:
        raise InvalidMessage(f"from..to: a range of 1 to {MAX_REPORT_DAYS} days")
    tz = program.config.tz
    since = datetime.combine(params.first, time(), tz)
    until = datetime.combine(params.last + timedelta(days=1), time(), tz)
    found = await program.store.requests_between(since, until)
    body = report(found, params.first, params.last, tz, program.rooms.clock())
    return web.json_response(text=body.model_dump_json())


def _patient(request: web.Request) -> AttendeeId:
    patient = request.match_info["patient"]
    if not is_valid_id(patient):
        raise InvalidMessage("a patient id is letters, digits and . _ - only")
    return AttendeeId(patient)


async def _audit(request: web.Request, actor: str, action: str, patient: str) -> None:
    rooms = request.app[ROOMS]
    await rooms.store.append_admin_audit(actor, action, {"patient": patient}, rooms.clock())


def _patient_row(e: Enrollment) -> dict[str, object]:
    return {
        "patient": e.patient,
        "partner": e.partner,
        "care_team": [m.model_dump(mode="json") for m in e.care_team],
        "link_active": e.link is not None,
        "link_issued_at": e.link_issued_at.isoformat() if e.link_issued_at else None,
        "revoked_at": e.revoked_at.isoformat() if e.revoked_at else None,
        "can_take": {
            str(k): bool(e.clinicians_for(k)) for k in (SessionKind.INDIVIDUAL, SessionKind.COUPLES)
        },
    }


def _queue_item(r: CheckinRequest, now: datetime) -> QueueItem:
    return QueueItem(
        id=r.id,
        patient=r.patient,
        partner=r.partner,
        kind=r.kind,
        reason=r.reason,
        requested_at=r.requested_at,
        waited_seconds=round(r.waited(now).total_seconds(), 1),
    )
