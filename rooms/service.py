"""The domain's front door: outer layers call these methods; they run changes in the store."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from rooms.clock import Clock, utcnow
from rooms.errors import InvalidRoster
from rooms.ids import AttendeeId, NodeId, PseudonymStr, SessionId, new_session_id
from rooms.kinds import GroupPurpose, Role, SessionKind
from rooms.ledger import Ctx, EventKind, LedgerEvent, emit
from rooms.ranges import Instant
from rooms.roster import RosterEntry, build_roster, patients
from rooms.session import SessionSpec
from rooms.state import SessionState
from rooms.store.base import SessionStore

#: A domain operation with its arguments bound: changes the state, returns its events.
Change = Callable[[SessionState, Ctx], list[LedgerEvent]]


class CreateSession(BaseModel):
    """A request to schedule a session (CLI and ``POST /api/sessions``)."""

    model_config = ConfigDict(extra="forbid")

    kind: SessionKind
    roster: list[RosterEntry] = Field(min_length=1, max_length=200)
    starts_at: Instant | None = None  # None: now
    planned_minutes: int = Field(default=60, ge=5, le=24 * 60)
    purpose: GroupPurpose | None = None
    capacity: int | None = Field(default=None, ge=1, le=200)
    identified_patient: PseudonymStr | None = None
    #: A deployment check, not care (``SessionSpec.check``).
    check: bool = False


class Rooms:
    """Session operations over a store. Stateless apart from its store, node id and clock."""

    def __init__(
        self,
        store: SessionStore,
        *,
        node: NodeId,
        group_capacity: int = 12,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.node = node
        self.group_capacity = group_capacity
        self.clock = clock

    def ctx(self) -> Ctx:
        return Ctx(now=self.clock(), node=self.node)

    async def create_session(self, req: CreateSession, *, created_by: str) -> SessionState:
        """Validate the roster against the kind's rules and store the new session."""
        ctx = self.ctx()
        capacity = self._capacity(req)
        roster = build_roster(req.kind, req.roster, purpose=req.purpose, capacity=capacity)
        spec = SessionSpec(
            id=new_session_id(),
            kind=req.kind,
            roster=roster,
            starts_at=req.starts_at or ctx.now,
            planned_minutes=req.planned_minutes,
            capacity=capacity,
            purpose=req.purpose,
            identified_patient=self._identified_patient(req, roster),
            created_by=created_by,
            created_at=ctx.now,
            check=req.check,
        )
        state = SessionState(spec=spec)
        event = emit(
            state, ctx, EventKind.SESSION_CREATED, actor=created_by, session_kind=str(req.kind)
        )
        await self.store.create(state, [event])
        return state

    async def apply(
        self, session: SessionId, change: Change
    ) -> tuple[SessionState, list[LedgerEvent]]:
        """Run one domain change (e.g. ``partial(membership.admit, actor=..., ...)``) atomically.

        The change sees one fixed instant even when the store retries it after a race.
        """
        ctx = self.ctx()
        return await self.store.transact(session, lambda state: change(state, ctx))

    def release(self, state: SessionState) -> None:
        """Give back a state :meth:`apply` returned once done with it (never touching it
        again): the session's next change can start from it (``SessionStore.release``)."""
        self.store.release(state)

    async def get_session(self, session: SessionId) -> SessionState:
        return await self.store.get(session)

    async def events(self, session: SessionId, after_seq: int = 0) -> list[LedgerEvent]:
        return await self.store.events(session, after_seq)

    def _capacity(self, req: CreateSession) -> int:
        if req.capacity is not None:
            if req.kind is not SessionKind.GROUP:
                raise InvalidRoster("only group sessions take a capacity")
            return req.capacity
        if req.kind is SessionKind.GROUP:
            return self.group_capacity
        return sum(1 for e in req.roster if e.role is not Role.CLINICIAN) or 1

    @staticmethod
    def _identified_patient(
        req: CreateSession, roster: tuple[RosterEntry, ...]
    ) -> AttendeeId | None:
        if req.kind is not SessionKind.COUPLES:
            if req.identified_patient is not None:
                raise InvalidRoster("only couples sessions name an identified patient")
            return None
        candidates = patients(roster)
        if req.identified_patient is None:
            return candidates[0]
        if req.identified_patient not in candidates:
            raise InvalidRoster("the identified patient must be a patient on the roster")
        return AttendeeId(req.identified_patient)
