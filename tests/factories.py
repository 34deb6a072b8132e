"""Builders for domain tests: sessions of each kind and a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.kinds import GroupPurpose, Role, SessionKind
from rooms.ledger import Ctx, LedgerEvent
from rooms.roster import RosterEntry, build_roster
from rooms.session import SessionSpec
from rooms.state import SessionState

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
C = AttendeeId("c-17")
C2 = AttendeeId("c-18")
P1 = AttendeeId("p-201")
P2 = AttendeeId("p-202")
E1, E2, E3 = EndpointId("e-1"), EndpointId("e-2"), EndpointId("e-3")


def ctx(minutes: float = 0, node: str = "n-1") -> Ctx:
    return Ctx(now=T0 + timedelta(minutes=minutes), node=NodeId(node))


def entry(attendee: str, role: Role) -> RosterEntry:
    return RosterEntry(attendee=attendee, role=role)


def make_state(
    kind: SessionKind = SessionKind.INDIVIDUAL,
    *,
    patients: int | None = None,
    clinicians: int = 1,
    capacity: int | None = None,
    guests: int = 0,
    purpose: GroupPurpose | None = None,
) -> SessionState:
    """A stored-shape session with clinicians c-17, c-18 and patients p-201, p-202, ..."""
    n_patients = patients or {SessionKind.INDIVIDUAL: 1, SessionKind.COUPLES: 2}.get(kind, 3)
    roster = [entry(f"c-{17 + i}", Role.CLINICIAN) for i in range(clinicians)]
    roster += [entry(f"p-{201 + i}", Role.PATIENT) for i in range(n_patients)]
    roster += [entry(f"g-{301 + i}", Role.GUEST) for i in range(guests)]
    if kind is SessionKind.GROUP and purpose is None:
        purpose = GroupPurpose.THERAPY_GROUP if not guests else GroupPurpose.FAMILY_EDUCATION
    cap = capacity or (12 if kind is SessionKind.GROUP else n_patients)
    spec = SessionSpec(
        id=SessionId("s-test"),
        kind=kind,
        roster=build_roster(kind, roster, purpose=purpose, capacity=cap),
        starts_at=T0,
        planned_minutes=60,
        capacity=cap,
        purpose=purpose,
        identified_patient=P1 if kind is SessionKind.COUPLES else None,
        created_by="c-17",
        created_at=T0,
    )
    return SessionState(spec=spec)


def kinds(events: list[LedgerEvent]) -> list[str]:
    return [str(e.kind) for e in events]
