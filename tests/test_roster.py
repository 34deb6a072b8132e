"""Roster rules of every session kind."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rooms.errors import InvalidRoster
from rooms.kinds import CareFunction, GroupPurpose, Role, SessionKind
from rooms.roster import RosterEntry, build_roster
from tests.factories import entry

CLIN = entry("c-1", Role.CLINICIAN)


def pats(n: int) -> list[RosterEntry]:
    return [entry(f"p-{i}", Role.PATIENT) for i in range(n)]


@pytest.mark.parametrize(
    ("kind", "roster", "purpose"),
    [
        (SessionKind.INDIVIDUAL, [CLIN, *pats(1)], None),
        (SessionKind.COUPLES, [CLIN, *pats(2)], None),
        (SessionKind.GROUP, [CLIN, *pats(12)], GroupPurpose.THERAPY_GROUP),
        (
            SessionKind.GROUP,
            [CLIN, entry("c-2", Role.CLINICIAN), *pats(1)],
            GroupPurpose.PEER_SUPPORT,
        ),
        (
            SessionKind.GROUP,
            [CLIN, *pats(2), entry("g-1", Role.GUEST)],
            GroupPurpose.FAMILY_EDUCATION,
        ),
    ],
)
def test_valid_rosters(
    kind: SessionKind, roster: list[RosterEntry], purpose: GroupPurpose | None
) -> None:
    built = build_roster(kind, roster, purpose=purpose, capacity=12)
    assert [e.attendee for e in built] == [e.attendee for e in roster]


def test_default_clinician_function_per_kind() -> None:
    expected = {
        SessionKind.INDIVIDUAL: CareFunction.INDIVIDUAL_THERAPIST,
        SessionKind.COUPLES: CareFunction.COUPLES_THERAPIST,
        SessionKind.GROUP: CareFunction.FACILITATOR,
    }
    for kind, function in expected.items():
        n = 2 if kind is SessionKind.COUPLES else 1
        purpose = GroupPurpose.THERAPY_GROUP if kind is SessionKind.GROUP else None
        built = build_roster(kind, [CLIN, *pats(n)], purpose=purpose, capacity=12)
        assert built[0].function is function


@pytest.mark.parametrize(
    ("kind", "roster", "purpose", "message"),
    [
        (SessionKind.INDIVIDUAL, pats(1), None, "clinician"),
        (SessionKind.INDIVIDUAL, [CLIN, *pats(2)], None, "patient"),
        (SessionKind.INDIVIDUAL, [CLIN, entry("c-2", Role.CLINICIAN), *pats(1)], None, "clinician"),
        (SessionKind.INDIVIDUAL, [CLIN], None, "patient"),
        (SessionKind.COUPLES, [CLIN, *pats(1)], None, "patient"),
        (SessionKind.COUPLES, [CLIN, *pats(3)], None, "patient"),
        (SessionKind.COUPLES, [CLIN, *pats(1), entry("g-1", Role.GUEST)], None, "patient"),
        (SessionKind.GROUP, [CLIN, *pats(2)], None, "purpose"),
        (SessionKind.GROUP, [*pats(3)], GroupPurpose.THERAPY_GROUP, "clinician"),
        (
            SessionKind.GROUP,
            [CLIN, entry("c-2", Role.CLINICIAN), entry("c-3", Role.CLINICIAN), *pats(1)],
            GroupPurpose.THERAPY_GROUP,
            "clinician",
        ),
        (SessionKind.GROUP, [CLIN], GroupPurpose.THERAPY_GROUP, "patient"),
        (
            SessionKind.GROUP,
            [CLIN, *pats(1), entry("g-1", Role.GUEST)],
            GroupPurpose.THERAPY_GROUP,
            "guests",
        ),
        (SessionKind.INDIVIDUAL, [CLIN, *pats(1)], GroupPurpose.THERAPY_GROUP, "purpose"),
        (SessionKind.INDIVIDUAL, [CLIN, entry("c-1", Role.PATIENT)], None, "more than once"),
    ],
)
def test_roster_rules_refuse(
    kind: SessionKind, roster: list[RosterEntry], purpose: GroupPurpose | None, message: str
) -> None:
    with pytest.raises(InvalidRoster, match=message) as caught:
        build_roster(kind, roster, purpose=purpose, capacity=12)
    assert caught.value.code == "invalid_roster"


def test_clinician_function_must_fit_kind() -> None:
    wrong = RosterEntry(attendee="c-1", role=Role.CLINICIAN, function=CareFunction.FACILITATOR)
    with pytest.raises(InvalidRoster, match="clinicians must be one of"):
        build_roster(SessionKind.COUPLES, [wrong, *pats(2)], purpose=None, capacity=2)
    counselor = RosterEntry(attendee="c-1", role=Role.CLINICIAN, function=CareFunction.COUNSELOR)
    built = build_roster(SessionKind.INDIVIDUAL, [counselor, *pats(1)], purpose=None, capacity=1)
    assert built[0].function is CareFunction.COUNSELOR


def test_only_clinicians_carry_a_function() -> None:
    odd = RosterEntry(attendee="p-1", role=Role.PATIENT, function=CareFunction.MEDICAL)
    with pytest.raises(InvalidRoster, match="only clinicians"):
        build_roster(SessionKind.INDIVIDUAL, [CLIN, odd], purpose=None, capacity=1)


@pytest.mark.parametrize("bad", ["jane@example.org", "+1 555 0100", "Jane Doe", "", "-x", "a" * 65])
def test_attendee_ids_are_opaque_pseudonyms(bad: str) -> None:
    with pytest.raises(ValidationError):
        RosterEntry(attendee=bad, role=Role.PATIENT)
