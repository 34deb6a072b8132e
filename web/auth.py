"""Staff bearer authentication and the API's role checks."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from rooms.errors import NotAuthenticated, NotAuthorized
from rooms.ids import AttendeeId
from rooms.kinds import Role
from rooms.service import CreateSession
from rooms.state import SessionState
from rooms.tokens import StaffClaims, StaffRole, verify_staff_token

_SCHEME = "bearer "


def bearer_token(request: web.Request) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; NotAuthenticated without one."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith(_SCHEME) or not header[len(_SCHEME) :].strip():
        raise NotAuthenticated("send a staff token as 'Authorization: Bearer <token>'")
    return header[len(_SCHEME) :].strip()


def require_staff(
    request: web.Request, secret: str, now: datetime, *roles: StaffRole
) -> StaffClaims:
    """Authenticate the caller as staff holding one of ``roles`` (any staff role when empty).

    A patient's link token is refused here: it carries the link audience, not the staff one.
    """
    claims = verify_staff_token(secret, bearer_token(request), now)
    if roles and claims.role not in roles:
        allowed = " or ".join(sorted(roles))
        raise NotAuthorized(f"this needs a staff token with role {allowed}")
    return claims


def authorize_create(staff: StaffClaims, req: CreateSession) -> None:
    """Admins schedule any session; a clinician only sessions they host themselves."""
    if staff.role is StaffRole.ADMIN:
        return
    hosts = {e.attendee for e in req.roster if e.role is Role.CLINICIAN}
    if staff.subject not in hosts:
        raise NotAuthorized("a clinician may only create sessions they are a clinician of")


def authorize_read(staff: StaffClaims, state: SessionState) -> None:
    """Admins read every session; a clinician only those they are a clinician of.

    By role or roster only: who created a session (``spec.created_by``) is a record, not a
    grant. A staff subject is just an id, and a clinician's token may carry any id an admin
    or the CLI also uses."""
    if staff.role is StaffRole.ADMIN:
        return
    if state.spec.role_of(AttendeeId(staff.subject)) is not Role.CLINICIAN:
        raise NotAuthorized("a clinician may only read sessions they are a clinician of")
