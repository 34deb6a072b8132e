"""Enrollment in the program: a patient's care team and their one standing program link.

A standing link is a long-lived signed token (its own audience, so it never passes for a
session link or a staff token) naming the patient and a link id. The enrollment records the
id of the one link that works; issuing a new link or revoking it makes every older one
refused at once, whatever its expiry says. Session links handed out through a standing link
carry its id (``via``), so revoking it also closes the connections opened with them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from rooms.errors import NoCareTeam, TokenExpired, TokenInvalid, TokenRevoked
from rooms.ids import AttendeeId, PseudonymStr, TokenId, new_token_id
from rooms.kinds import RULES, CareFunction, SessionKind
from rooms.tokens import verify_hs256

PROGRAM_AUDIENCE = "homeroom:program"
#: Clock skew tolerated between the issuing and the checking machine, as for session links.
LEEWAY = timedelta(seconds=5)

#: What a patient page shows for a clinician: printable text, no control characters.
DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f<>]+$")
]


class CareTeamMember(BaseModel):
    """A clinician on a patient's care team. The display name is shown to the patient only:
    it never goes into logs, the ledger or the audit trail."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clinician: PseudonymStr
    function: CareFunction
    display_name: DisplayName | None = None


class Enrollment(BaseModel):
    """One patient's place in the program. ``link`` is the id of the standing link that
    works now (None: revoked, or never issued)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient: PseudonymStr
    #: A couples partner who may ask for a check-in together with this patient.
    partner: PseudonymStr | None = None
    care_team: tuple[CareTeamMember, ...] = Field(default=(), max_length=20)
    link: TokenId | None = None
    link_issued_at: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None

    def clinicians_for(self, kind: SessionKind) -> list[AttendeeId]:
        """The care team's clinicians whose function may hold a session of ``kind``."""
        allowed = RULES[kind].clinician_functions
        return [AttendeeId(m.clinician) for m in self.care_team if m.function in allowed]

    def display_name(self, clinician: str) -> str | None:
        for member in self.care_team:
            if member.clinician == clinician:
                return member.display_name
        return None


class ProgramClaims(BaseModel):
    """What a standing link proves: this enrolled patient holds link ``jti``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient: AttendeeId
    jti: TokenId
    exp: AwareDatetime


def issue_program_token(
    secret: str, patient: str, now: datetime, ttl: timedelta
) -> tuple[TokenId, str]:
    """A new standing link token for ``patient``: its id (to record) and the token."""
    jti = new_token_id()
    payload = {
        "aud": PROGRAM_AUDIENCE,
        "sub": patient,
        "iat": _ts(now),
        "exp": _ts(now + ttl),
        "jti": jti,
    }
    return jti, jwt.encode(payload, secret, algorithm="HS256")


def decode_program_token(secret: str, token: str, now: datetime) -> ProgramClaims:
    """The claims of a genuine, unexpired standing link; revocation is checked by
    :func:`check_current` against the enrollment."""
    try:
        raw = verify_hs256(secret, token)
    except jwt.InvalidTokenError:
        raise TokenInvalid("this program link is not valid") from None
    if raw.get("aud") != PROGRAM_AUDIENCE or not all(k in raw for k in ("sub", "exp", "jti")):
        raise TokenInvalid("this program link is not valid")
    try:
        claims = ProgramClaims(patient=raw["sub"], jti=raw["jti"], exp=raw["exp"])
    except ValueError:
        raise TokenInvalid("this program link is not valid") from None
    if now - LEEWAY >= claims.exp:
        raise TokenExpired("this program link has expired: ask your care team for a new one")
    return claims


def check_current(enrollment: Enrollment | None, claims: ProgramClaims) -> Enrollment:
    """The enrollment, when ``claims`` are of the link that works now; TokenRevoked otherwise."""
    if enrollment is None or enrollment.link != claims.jti:
        raise TokenRevoked("this program link was withdrawn: ask your care team for a new one")
    return enrollment


def require_team(enrollment: Enrollment, kind: SessionKind) -> list[AttendeeId]:
    """The clinicians who may pick up a ``kind`` check-in of this patient; NoCareTeam if none."""
    team = enrollment.clinicians_for(kind)
    if not team:
        what = "couples therapist" if kind is SessionKind.COUPLES else "clinician"
        raise NoCareTeam(f"no {what} on this patient's care team can take a check-in")
    return team


def _ts(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())
