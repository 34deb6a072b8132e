"""Session kinds, roles and the rules each kind imposes on its roster."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SessionKind(StrEnum):
    INDIVIDUAL = "individual"
    COUPLES = "couples"
    GROUP = "group"


class Role(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"
    #: A family member at a family-education session: attends and is recorded, never billed.
    GUEST = "guest"


class CareFunction(StrEnum):
    """What a clinician does on the care team; billing and authorization may depend on it."""

    INDIVIDUAL_THERAPIST = "individual_therapist"
    COUPLES_THERAPIST = "couples_therapist"
    COUNSELOR = "counselor"
    MEDICAL = "medical"
    FACILITATOR = "facilitator"


class GroupPurpose(StrEnum):
    THERAPY_GROUP = "therapy_group"
    SKILLS_WORKSHOP = "skills_workshop"
    FAMILY_EDUCATION = "family_education"
    PEER_SUPPORT = "peer_support"


#: Roles that host: admitted on join and allowed to run the session's controls.
HOST_ROLES = frozenset({Role.CLINICIAN})
#: Roles that count toward a session's capacity (people, not devices; hosts excluded).
SEATED_ROLES = frozenset({Role.PATIENT, Role.GUEST})


@dataclass(frozen=True, slots=True)
class KindRules:
    """Roster rules of one session kind. Counts are inclusive bounds."""

    kind: SessionKind
    clinicians: tuple[int, int]
    patients: tuple[int, int | None]  # None: bounded by the session's capacity
    clinician_functions: frozenset[CareFunction]
    default_function: CareFunction
    guests_allowed: bool
    server_forwarded: bool


RULES: dict[SessionKind, KindRules] = {
    SessionKind.INDIVIDUAL: KindRules(
        kind=SessionKind.INDIVIDUAL,
        clinicians=(1, 1),
        patients=(1, 1),
        clinician_functions=frozenset(
            {CareFunction.INDIVIDUAL_THERAPIST, CareFunction.COUNSELOR, CareFunction.MEDICAL}
        ),
        default_function=CareFunction.INDIVIDUAL_THERAPIST,
        guests_allowed=False,
        server_forwarded=False,
    ),
    SessionKind.COUPLES: KindRules(
        kind=SessionKind.COUPLES,
        clinicians=(1, 1),
        patients=(2, 2),
        clinician_functions=frozenset({CareFunction.COUPLES_THERAPIST}),
        default_function=CareFunction.COUPLES_THERAPIST,
        guests_allowed=False,
        server_forwarded=False,
    ),
    SessionKind.GROUP: KindRules(
        kind=SessionKind.GROUP,
        clinicians=(1, 2),
        patients=(1, None),
        clinician_functions=frozenset({CareFunction.FACILITATOR}),
        default_function=CareFunction.FACILITATOR,
        guests_allowed=True,  # only for family education; checked with the purpose
        server_forwarded=True,
    ),
}
