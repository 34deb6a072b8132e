"""Session endpoints of the REST API: schedule, read, list. Pseudonymous ids only."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from config.settings import Settings
from rooms.authz import require_active
from rooms.errors import InvalidMessage, NotAuthorized, SessionNotFound
from rooms.ids import AttendeeId, SessionId, parse_session_id
from rooms.kinds import CareFunction, GroupPurpose, Role, SessionKind
from rooms.ranges import Day
from rooms.service import CreateSession
from rooms.session import SessionStatus
from rooms.state import SeatStatus, SessionState
from rooms.tokens import SessionLink, StaffRole, session_links
from web.auth import authorize_create, authorize_read, require_staff
from web.errors import parse_body, parse_query
from web.keys import ROOMS, SETTINGS

#: The longest range one listing may cover.
MAX_LIST_DAYS = 92


class SessionCreated(BaseModel):
    """The answer to ``POST /api/sessions`` and ``homeroom session create``."""

    session: SessionId
    kind: SessionKind
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    links: list[SessionLink]


class RosterMember(BaseModel):
    attendee: AttendeeId
    role: Role
    function: CareFunction | None
    #: not_joined | waiting | admitted | absent | left | removed
    admission: str


class SessionSummary(BaseModel):
    """The answer to ``GET /api/sessions/{id}``: pseudonymous ids only."""

    session: SessionId
    kind: SessionKind
    purpose: GroupPurpose | None
    status: SessionStatus
    locked: bool
    starts_at: AwareDatetime
    planned_minutes: int
    capacity: int
    endpoints: int
    roster: list[RosterMember]
    #: A deployment check (``homeroom probe``), not care: never billed.
    check: bool


class SessionList(BaseModel):
    """The answer to ``GET /api/sessions?from=DAY&to=DAY``."""

    sessions: list[SessionSummary]


class ListParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first: Day = Field(alias="from")
    last: Day = Field(alias="to")


def created_body(state: SessionState, settings: Settings) -> SessionCreated:
    """A new session with one fresh link per roster member."""
    links = session_links(
        settings.signing_secret,
        state.spec,
        base_url=settings.public_url,
        lead=timedelta(minutes=settings.link_lead_minutes),
        trail=timedelta(minutes=settings.link_trail_minutes),
    )
    spec = state.spec
    return SessionCreated(
        session=spec.id, kind=spec.kind, starts_at=spec.starts_at, ends_at=spec.ends_at, links=links
    )


def summary(state: SessionState) -> SessionSummary:
    spec = state.spec
    roster = [
        RosterMember(
            attendee=AttendeeId(e.attendee),
            role=e.role,
            function=e.function,
            admission=admission(state, AttendeeId(e.attendee)),
        )
        for e in spec.roster
    ]
    return SessionSummary(
        session=spec.id,
        kind=spec.kind,
        purpose=spec.purpose,
        status=state.status,
        locked=state.locked,
        starts_at=spec.starts_at,
        planned_minutes=spec.planned_minutes,
        capacity=spec.capacity,
        endpoints=len(state.endpoints),
        roster=roster,
        check=spec.check,
    )


def admission(state: SessionState, attendee: AttendeeId) -> str:
    """One word for where an attendee stands, for staff views."""
    person = state.attendees.get(attendee)
    if person is not None and person.removed:
        return "removed"
    statuses = {seat.status for _, seat in state.seats_of(attendee)}
    for status in (SeatStatus.ADMITTED, SeatStatus.ABSENT, SeatStatus.WAITING):
        if status in statuses:
            return str(status)
    return "left" if person is not None and person.ever_admitted else "not_joined"


async def create_session(request: web.Request) -> web.Response:
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    staff = require_staff(request, settings.signing_secret, rooms.clock(), *StaffRole)
    req = await parse_body(request, CreateSession, roster_fields={"kind", "roster"})
    authorize_create(staff, req)
    state = await rooms.create_session(req, created_by=staff.subject)
    return _json(created_body(state, settings), status=201)


async def get_session(request: web.Request) -> web.Response:
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    staff = require_staff(request, settings.signing_secret, rooms.clock())
    state = await rooms.get_session(parse_session_id(request.match_info["session"]))
    authorize_read(staff, state)
    return _json(summary(state))


async def reissue_links(request: web.Request) -> web.Response:
    """``POST /api/sessions/{id}/links``: fresh links for a session that has not ended, for
    everyone not removed from it (earlier links keep working until they expire)."""
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    staff = require_staff(request, settings.signing_secret, rooms.clock())
    state = await rooms.get_session(parse_session_id(request.match_info["session"]))
    authorize_read(staff, state)
    require_active(state)
    body = created_body(state, settings)
    body.links = [link for link in body.links if not state.is_removed(link.attendee)]
    return _json(body)


async def list_sessions(request: web.Request) -> web.Response:
    """Sessions scheduled on program days ``from``..``to``: all for admins, a clinician's own
    otherwise. Sessions whose state has expired are left out."""
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    staff = require_staff(request, settings.signing_secret, rooms.clock())
    params = parse_query(request, ListParams)
    if not 0 <= (params.last - params.first).days < MAX_LIST_DAYS:
        raise InvalidMessage(f"from..to: a range of 1 to {MAX_LIST_DAYS} days")
    zone = ZoneInfo(settings.timezone)
    since = datetime.combine(params.first, time(), zone)
    until = datetime.combine(params.last + timedelta(days=1), time(), zone)
    found = []
    for session in await rooms.store.sessions_starting(since, until):
        try:
            state = await rooms.get_session(session)
            authorize_read(staff, state)
        except (SessionNotFound, NotAuthorized):
            continue
        found.append(summary(state))
    return _json(SessionList(sessions=found))


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)
