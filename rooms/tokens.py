"""Signed, expiring tokens: session links for attendees, bearer tokens for staff.

Pure functions: PyJWT issues and checks the tokens (HS256); the caller passes ``now`` so
validity is deterministic.
A link token and a staff token carry different audiences, so neither passes for the other.
Revocation is not in the token: callers check it against the session's state with
:func:`check_not_revoked` (a removed attendee's link stops working at once).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import jwt
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from rooms.errors import (
    NotOnRoster,
    TokenExpired,
    TokenInvalid,
    TokenNotYetValid,
    TokenRevoked,
    WrongSession,
)
from rooms.ids import AttendeeId, PseudonymStr, SessionId, TokenId, new_token_id
from rooms.kinds import HOST_ROLES, CareFunction, Role
from rooms.roster import RosterEntry
from rooms.session import SessionSpec
from rooms.state import SessionState

ALGORITHM = "HS256"
LINK_AUDIENCE = "homeroom:link"
STAFF_AUDIENCE = "homeroom:staff"
#: Clock skew tolerated between the machine that issued a token and the one checking it.
LEEWAY = timedelta(seconds=5)
_REQUIRED = ["aud", "sub", "exp", "jti"]

_M = TypeVar("_M", bound=BaseModel)


class StaffRole(StrEnum):
    ADMIN = "admin"
    CLINICIAN = "clinician"


class LinkClaims(BaseModel):
    """What a session link proves: this attendee, in this role, may join this session."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session: SessionId
    attendee: AttendeeId
    role: Role
    nbf: AwareDatetime
    exp: AwareDatetime
    jti: TokenId
    #: The standing program link this link was handed out through (rooms.enrollment): it
    #: stops working when that one is withdrawn.
    via: TokenId | None = None


class StaffClaims(BaseModel):
    """What a staff bearer token proves: its subject acts as an admin or a clinician."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: StaffRole
    subject: PseudonymStr
    exp: AwareDatetime
    jti: TokenId


def issue_link_token(
    secret: str,
    spec: SessionSpec,
    entry: RosterEntry,
    lead: timedelta,
    trail: timedelta,
    *,
    via: TokenId | None = None,
) -> str:
    """A link for ``entry``: valid from ``lead`` before the start to ``trail`` after the end
    (``via``: the standing program link it is handed out through)."""
    payload: dict[str, object] = {
        "aud": LINK_AUDIENCE,
        "sid": spec.id,
        "sub": entry.attendee,
        "role": str(entry.role),
        "nbf": _ts(spec.starts_at - lead),
        "exp": _ts(spec.ends_at + trail),
        "jti": new_token_id(),
    }
    if via is not None:
        payload["via"] = via
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


class SessionLink(BaseModel):
    """One roster member's link. The token rides in the fragment, which browsers never send."""

    model_config = ConfigDict(frozen=True)

    attendee: AttendeeId
    role: Role
    function: CareFunction | None
    url: str


def session_links(
    secret: str, spec: SessionSpec, *, base_url: str, lead: timedelta, trail: timedelta
) -> list[SessionLink]:
    """A fresh link per roster member: hosts open ``/host``, everyone else ``/join``."""
    links = []
    for entry in spec.roster:
        page = "host" if entry.role in HOST_ROLES else "join"
        token = issue_link_token(secret, spec, entry, lead, trail)
        url = f"{base_url.rstrip('/')}/{page}#t={token}"
        links.append(
            SessionLink(
                attendee=AttendeeId(entry.attendee),
                role=entry.role,
                function=entry.function,
                url=url,
            )
        )
    return links


def decode_link_token(secret: str, token: str) -> LinkClaims:
    """Check signature, algorithm, audience and shape, but not the time window."""
    raw = _decode(secret, token, LINK_AUDIENCE, ["sid", "role", "nbf"])
    return _parse(
        LinkClaims,
        session=raw["sid"],
        attendee=raw["sub"],
        role=raw["role"],
        nbf=raw["nbf"],
        exp=raw["exp"],
        jti=raw["jti"],
        via=raw.get("via"),
    )


def check_link_time(claims: LinkClaims, now: datetime) -> None:
    """Raise TokenNotYetValid before the link opens and TokenExpired after it closes."""
    if now + LEEWAY < claims.nbf:
        raise TokenNotYetValid(f"this link opens at {claims.nbf.isoformat()}")
    _check_expiry(claims.exp, now, "this link has expired")


def verify_link_token(secret: str, token: str, now: datetime) -> LinkClaims:
    """The claims of a genuine link token valid at ``now``; raises a Token* error otherwise."""
    claims = decode_link_token(secret, token)
    check_link_time(claims, now)
    return claims


def check_not_revoked(state: SessionState, claims: LinkClaims) -> None:
    """Raise unless the link still admits its attendee to the session in ``state``."""
    if claims.session != state.spec.id:
        raise WrongSession("this link belongs to a different session")
    entry = state.spec.entry(claims.attendee)
    if entry is None:
        raise NotOnRoster(f"{claims.attendee} is not on this session's roster")
    if entry.role is not claims.role:
        raise TokenInvalid("the link's role does not match the roster")
    person = state.attendees.get(claims.attendee)
    if person is not None and person.removed:
        raise TokenRevoked("this link was withdrawn by the clinician")


def issue_staff_token(
    secret: str, role: StaffRole, subject: str, now: datetime, ttl: timedelta
) -> str:
    """A bearer token for ``subject`` acting as ``role``, valid for ``ttl`` from ``now``."""
    payload = {
        "aud": STAFF_AUDIENCE,
        "sub": subject,
        "role": str(role),
        "iat": _ts(now),
        "exp": _ts(now + ttl),
        "jti": new_token_id(),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_staff_token(secret: str, token: str) -> StaffClaims:
    """The claims of a genuine staff token, expired or not (to revoke one); TokenInvalid."""
    raw = _decode(secret, token, STAFF_AUDIENCE, ["role"])
    return _parse(StaffClaims, role=raw["role"], subject=raw["sub"], exp=raw["exp"], jti=raw["jti"])


def verify_staff_token(secret: str, token: str, now: datetime) -> StaffClaims:
    """The claims of a genuine, unexpired staff token; raises TokenInvalid or TokenExpired.
    Revocation is in the store: callers check ``SessionStore.token_revoked(claims.jti)``."""
    claims = decode_staff_token(secret, token)
    _check_expiry(claims.exp, now, "this staff token has expired")
    return claims


def verify_hs256(secret: str, token: str) -> dict[str, Any]:
    """The claims of an HS256 token signed with ``secret``; ``jwt.InvalidTokenError``
    otherwise (a bad signature, another algorithm, a payload that is not a JSON object).
    PyJWT checks the signature and the algorithm only: a token's times are checked against
    the caller's ``now`` (not the wall clock), its audience and claims by the callers."""
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                 "verify_aud": False},
    )  # fmt: skip
    return claims


def _decode(secret: str, token: str, audience: str, required: list[str]) -> dict[str, Any]:
    try:
        raw = verify_hs256(secret, token)
    except jwt.InvalidTokenError:
        # One message whatever failed: a forger learns nothing about which check caught them.
        raise TokenInvalid("this link or token is not valid") from None
    # Time is checked against the caller's ``now`` (not the wall clock), by the caller.
    if raw.get("aud") != audience or any(claim not in raw for claim in _REQUIRED + required):
        raise TokenInvalid("this link or token is not valid")
    return raw


def _parse(model: type[_M], **fields: Any) -> _M:
    try:
        return model.model_validate(fields)
    except ValidationError:
        raise TokenInvalid("this link or token is not valid") from None


def _check_expiry(exp: datetime, now: datetime, message: str) -> None:
    if now - LEEWAY >= exp:
        raise TokenExpired(message)


def _ts(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())
