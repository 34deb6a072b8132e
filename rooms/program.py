"""The program's front door for a patient's day: the standing link and on-demand check-ins.

Outer layers (REST, CLI) call :class:`Program`; it combines the session store (through
:class:`rooms.service.Rooms`) with the program store (enrollments, the check-in queue).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from rooms import checkins
from rooms.checkins import CheckinId, CheckinRequest, DutyHours, Reason
from rooms.enrollment import (
    CareTeamMember,
    Enrollment,
    check_current,
    decode_program_token,
    issue_program_token,
    require_team,
)
from rooms.errors import (
    NotAuthorized,
    NotEnrolled,
    NotOnRoster,
    SessionEnded,
    SessionNotFound,
    TokenNotYetValid,
    TokenRevoked,
)
from rooms.ids import AttendeeId, EndpointId, SessionId, TokenId, new_session_id
from rooms.kinds import Role, SessionKind
from rooms.ledger import Ctx, EventKind, LedgerEvent, emit
from rooms.roster import RosterEntry, build_roster
from rooms.service import Change, Rooms
from rooms.session import SessionSpec, SessionStatus
from rooms.state import SessionState
from rooms.store.program import ProgramStore
from rooms.tokens import issue_link_token


@dataclass(frozen=True, slots=True)
class ProgramConfig:
    secret: str
    tz: ZoneInfo
    hours: DutyHours
    link_ttl: timedelta
    checkin_minutes: int
    lead: timedelta
    trail: timedelta


class Timing(StrEnum):
    """Where one of today's sessions stands against the clock, as its patient sees it."""

    UPCOMING = "upcoming"  # its waiting room opens later
    OPEN = "open"  # its waiting room is open: from the link's lead before it to the trail after
    PAST = "past"  # ended, or its time (and the trail after it) is over


@dataclass(frozen=True, slots=True)
class DaySession:
    """One of today's sessions on a patient's roster, as the standing link shows it."""

    state: SessionState | None  # None: its live state has expired (long ended)
    spec: SessionSpec

    @property
    def status(self) -> SessionStatus:
        return self.state.status if self.state else SessionStatus.ENDED

    def clinicians(self) -> list[AttendeeId]:
        return [AttendeeId(e.attendee) for e in self.spec.roster if e.role is Role.CLINICIAN]


@dataclass(frozen=True, slots=True)
class SignedOut:
    """A session the patient was signed out of: the change, and the connections to close."""

    state: SessionState
    events: list[LedgerEvent]
    connections: dict[EndpointId, str | None]


class Program:
    """Enrollments, standing links and check-ins over a session store and a program store."""

    def __init__(self, rooms: Rooms, store: ProgramStore, config: ProgramConfig) -> None:
        self.rooms = rooms
        self.store = store
        self.config = config
        #: Set (and replaced) whenever this process changes the queue, so a patient's page
        #: waiting on its request hears of a pick-up at once (other nodes' changes are found
        #: by reading the store again, see :meth:`queue_changed`).
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        done, self._changed = self._changed, asyncio.Event()
        done.set()

    async def queue_changed(self, within: float) -> None:
        """Return when this process next changes the queue, or after ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within)

    # --- the standing link ------------------------------------------------------------

    async def issue_link(
        self, patient: str, care_team: tuple[CareTeamMember, ...], partner: str | None
    ) -> tuple[Enrollment, str]:
        """Enroll (or update) the patient and give them a new standing link: the one before,
        if any, stops working."""
        now = self.rooms.clock()
        jti, token = issue_program_token(self.config.secret, patient, now, self.config.link_ttl)
        enrollment = Enrollment(
            patient=patient, partner=partner, care_team=care_team, link=jti, link_issued_at=now
        )
        await self.store.put_enrollment(enrollment)
        return enrollment, token

    async def revoke(self, patient: AttendeeId) -> tuple[Enrollment, list[SignedOut]]:
        """Withdraw the patient's standing link, and sign out the endpoints they have in
        today's sessions (the changes, for the caller to push to the endpoints)."""
        found = await self.store.enrollment(patient)
        if found is None:
            raise NotEnrolled(f"{patient} has no program link")
        revoked = found.model_copy(update={"link": None, "revoked_at": self.rooms.clock()})
        await self.store.put_enrollment(revoked)
        changes = []
        for day in await self.today(patient):
            if day.state is not None and day.state.seats_of(patient):
                closed: dict[EndpointId, str | None] = {}
                state, events = await self.rooms.apply(day.spec.id, _sign_out(patient, closed))
                changes.append(SignedOut(state, events, closed))
        return revoked, changes

    async def authenticate(self, token: str) -> Enrollment:
        """The enrollment a standing link token stands for; Token* errors otherwise."""
        claims = decode_program_token(self.config.secret, token, self.rooms.clock())
        return check_current(await self.store.enrollment(claims.patient), claims)

    async def check_via(self, patient: AttendeeId, via: TokenId) -> None:
        """Refuse a session link handed out through a standing link that was withdrawn."""
        found = await self.store.enrollment(patient)
        if found is None or found.link != via:
            raise TokenRevoked("this link was withdrawn: ask your care team for a new one")

    async def today(self, patient: AttendeeId) -> list[DaySession]:
        """The patient's sessions starting today (program time zone), by start time."""
        start = datetime.combine(self._today(), time(0), self.config.tz)
        found = []
        for sid in await self.rooms.store.sessions_starting(start, start + timedelta(days=1)):
            spec = await self.rooms.store.spec(sid)
            if spec.role_of(patient) is None or spec.check:
                continue
            try:
                state: SessionState | None = await self.rooms.get_session(sid)
            except SessionNotFound:
                state = None
            found.append(DaySession(state, spec))
        return found

    def timing(self, day: DaySession) -> Timing:
        """Whether ``day`` is still to come, open to join now, or over. A session nobody
        ended is over once its link would have expired (its end plus the trail)."""
        now = self.rooms.clock()
        if day.status is SessionStatus.ENDED or now >= day.spec.ends_at + self.config.trail:
            return Timing.PAST
        if now < day.spec.starts_at - self.config.lead:
            return Timing.UPCOMING
        return Timing.OPEN

    async def session_link(self, enrollment: Enrollment, session: SessionId) -> str:
        """A link token to one of today's sessions, handed out through the standing link."""
        patient = AttendeeId(enrollment.patient)
        day = next((d for d in await self.today(patient) if d.spec.id == session), None)
        if day is None:
            raise NotOnRoster("this session is not one of yours today")
        timing = self.timing(day)
        if timing is Timing.PAST:
            raise SessionEnded("this session has ended")
        if timing is Timing.UPCOMING:
            raise TokenNotYetValid("this session's waiting room is not open yet")
        entry = day.spec.entry(patient)
        assert entry is not None and enrollment.link is not None
        return issue_link_token(
            self.config.secret, day.spec, entry, self.config.lead, self.config.trail,
            via=enrollment.link,
        )  # fmt: skip

    # --- check-ins --------------------------------------------------------------------

    def on_duty(self) -> bool:
        return self.config.hours.on_duty(self.rooms.clock(), self.config.tz)

    async def request_checkin(
        self, enrollment: Enrollment, reason: Reason | None, together: bool
    ) -> CheckinRequest:
        """Queue a request to the care team (the one already waiting, if any)."""
        checkins.require_on_duty(self.config.hours, self.rooms.clock(), self.config.tz)
        kind = SessionKind.COUPLES if together else SessionKind.INDIVIDUAL
        if together and enrollment.partner is None:
            raise NotAuthorized("no partner is enrolled with this patient")
        req = CheckinRequest(
            id=checkins.new_checkin_id(),
            patient=AttendeeId(enrollment.patient),
            partner=AttendeeId(enrollment.partner) if together and enrollment.partner else None,
            kind=kind,
            reason=reason,
            team=tuple(require_team(enrollment, kind)),
            requested_at=self.rooms.clock(),
        )
        queued = await self.store.add_request(req, checkins.requested(req))
        self._notify()
        return queued

    async def cancel(self, patient: AttendeeId, checkin: CheckinId) -> CheckinRequest:
        now = self.rooms.clock()
        cancelled = await self.store.move(checkin, lambda r: checkins.cancel(r, patient, now))
        self._notify()
        return cancelled

    async def queue(self, clinician: AttendeeId | None) -> list[CheckinRequest]:
        """Waiting requests a clinician may take (every one for an admin: None)."""
        waiting = await self.store.waiting()
        return [r for r in waiting if clinician is None or clinician in r.team]

    async def take(
        self, clinician: AttendeeId, checkin: CheckinId
    ) -> tuple[CheckinRequest, SessionState]:
        """Pick a request up: exactly one clinician wins it, and gets its session, opened now
        with the patient admitted as soon as they connect."""
        checkins.require_on_duty(self.config.hours, self.rooms.clock(), self.config.tz)
        session, now = new_session_id(), self.rooms.clock()
        taken = await self.store.move(checkin, lambda r: checkins.take(r, clinician, session, now))
        state = await self._open_session(taken, session)
        self._notify()  # after the session exists: the patient's link must work at once
        return taken, state

    async def patient_link(self, req: CheckinRequest, patient: AttendeeId) -> str:
        """The link of one of the request's people to its session, once taken."""
        assert req.session is not None
        spec = await self.rooms.store.spec(req.session)
        entry = spec.entry(patient)
        if entry is None:
            raise NotOnRoster("this check-in is not yours")
        enrollment = await self.store.enrollment(patient)
        via = enrollment.link if enrollment else None
        return issue_link_token(
            self.config.secret, spec, entry, self.config.lead, self.config.trail, via=via
        )

    async def _open_session(self, req: CheckinRequest, session: SessionId) -> SessionState:
        assert req.taken_by is not None
        enrollment = await self.store.enrollment(req.patient)
        team = enrollment.care_team if enrollment else ()
        # None (the care team changed since): the kind's default function.
        function = next((m.function for m in team if m.clinician == req.taken_by), None)
        entries = [RosterEntry(attendee=req.taken_by, role=Role.CLINICIAN, function=function)]
        entries += [RosterEntry(attendee=p, role=Role.PATIENT) for p in req.people()]
        roster = build_roster(req.kind, entries, purpose=None, capacity=len(req.people()))
        ctx = Ctx(now=req.taken_at or self.rooms.clock(), node=self.rooms.node)
        spec = SessionSpec(
            id=session,
            kind=req.kind,
            roster=roster,
            starts_at=ctx.now,
            planned_minutes=self.config.checkin_minutes,
            capacity=len(req.people()),
            identified_patient=req.patient if req.kind is SessionKind.COUPLES else None,
            created_by=req.taken_by,
            created_at=ctx.now,
            checkin=req.id,
        )
        # Admitted from the request: the clinician chose this patient by picking it up, so
        # the patient's arrival is admitted at once (membership.join's returning-attendee rule).
        state = SessionState(spec=spec, auto_readmit=True)
        for person in req.people():
            state.attendee(person).ever_admitted = True
        event = emit(
            state, ctx, EventKind.SESSION_CREATED, actor=req.taken_by,
            session_kind=str(req.kind), checkin=req.id,
        )  # fmt: skip
        await self.rooms.store.create(state, [event])
        return state

    def _today(self) -> date:
        return self.rooms.clock().astimezone(self.config.tz).date()


def _sign_out(patient: AttendeeId, closed: dict[EndpointId, str | None]) -> Change:
    """A change that takes every endpoint carrying ``patient`` out of the session (their
    standing link was withdrawn): recorded as a leave, closed with a ``revoked`` bye.
    ``closed`` gets the connections of the endpoints it took out, to close them."""

    def change(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
        events = []
        closed.clear()  # a change may run again after a lost race
        for endpoint, _ in state.seats_of(patient):
            closed[endpoint.id] = endpoint.connection
            for person, seat in endpoint.seats.items():
                events.append(
                    emit(
                        state,
                        ctx,
                        EventKind.LEFT,
                        attendee=person,
                        endpoint=endpoint.id,
                        actor="system",
                        was=str(seat.status),
                        reason="link_revoked",
                    )
                )
            del state.endpoints[endpoint.id]
        return events

    return change
