"""Roster: who is expected at a session, with which role, and its validation per kind."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from rooms.errors import InvalidRoster
from rooms.ids import AttendeeId, PseudonymStr
from rooms.kinds import RULES, CareFunction, GroupPurpose, Role, SessionKind


class RosterEntry(BaseModel):
    """One expected attendee. ``attendee`` is an opaque pseudonym, never a name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attendee: PseudonymStr
    role: Role
    function: CareFunction | None = None


def build_roster(
    kind: SessionKind,
    entries: Iterable[RosterEntry],
    *,
    purpose: GroupPurpose | None,
    capacity: int,
) -> tuple[RosterEntry, ...]:
    """Validate ``entries`` against the kind's rules and fill in default clinician functions.

    Raises :class:`InvalidRoster` naming the first rule broken.
    """
    rules = RULES[kind]
    filled = tuple(_with_default_function(e, rules.default_function) for e in entries)
    dupes = [a for a, n in Counter(e.attendee for e in filled).items() if n > 1]
    if dupes:
        raise InvalidRoster(f"attendee {dupes[0]} appears more than once")
    counts = Counter(e.role for e in filled)
    _check_count("clinician", counts[Role.CLINICIAN], rules.clinicians, kind)
    patient_max = rules.patients[1]
    _check_count("patient", counts[Role.PATIENT], (rules.patients[0], patient_max), kind)
    if counts[Role.GUEST] and (
        not rules.guests_allowed or purpose is not GroupPurpose.FAMILY_EDUCATION
    ):
        raise InvalidRoster("guests attend family-education group sessions only")
    for entry in filled:
        if entry.role is Role.CLINICIAN and entry.function not in rules.clinician_functions:
            allowed = ", ".join(sorted(rules.clinician_functions))
            raise InvalidRoster(f"{_a(kind)} session's clinicians must be one of: {allowed}")
        if entry.role is not Role.CLINICIAN and entry.function is not None:
            raise InvalidRoster("only clinicians carry a care-team function")
    if kind is SessionKind.GROUP and purpose is None:
        raise InvalidRoster("a group session needs a purpose")
    if kind is not SessionKind.GROUP and purpose is not None:
        raise InvalidRoster("only group sessions carry a purpose")
    if capacity < 1:
        raise InvalidRoster("capacity must be at least 1")
    return filled


def patients(roster: Iterable[RosterEntry]) -> list[AttendeeId]:
    return [AttendeeId(e.attendee) for e in roster if e.role is Role.PATIENT]


def _with_default_function(entry: RosterEntry, default: CareFunction) -> RosterEntry:
    if entry.role is Role.CLINICIAN and entry.function is None:
        return entry.model_copy(update={"function": default})
    return entry


def _check_count(what: str, n: int, bounds: tuple[int, int | None], kind: SessionKind) -> None:
    low, high = bounds
    if n < low or (high is not None and n > high):
        if low == high:
            expected = _counted(low, what)
        elif high is None:
            expected = "at least " + _counted(low, what)
        else:
            expected = f"{low} to {_counted(high, what)}"
        raise InvalidRoster(f"{_a(kind)} session needs {expected}; the roster has {n}")


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _a(kind: SessionKind) -> str:
    """ "an individual", "a couples", "a group": the kind with its article."""
    return ("an " if str(kind)[:1] in "aeiou" else "a ") + str(kind)
