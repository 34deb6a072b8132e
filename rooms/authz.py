"""Who may do what. Every control is authorized here, on the server, by the actor's role."""

from __future__ import annotations

from rooms.errors import NotAuthorized, NotOnRoster, SessionEnded
from rooms.ids import AttendeeId
from rooms.kinds import HOST_ROLES, Role
from rooms.session import SessionStatus
from rooms.state import SessionState


def require_active(state: SessionState) -> None:
    if state.status is SessionStatus.ENDED:
        raise SessionEnded("the session has ended")


def require_roster(state: SessionState, attendee: AttendeeId) -> Role:
    """The attendee's role; raises NotOnRoster for strangers."""
    role = state.spec.role_of(attendee)
    if role is None:
        raise NotOnRoster(f"{attendee} is not on this session's roster")
    return role


def is_host(state: SessionState, attendee: AttendeeId) -> bool:
    return state.spec.role_of(attendee) in HOST_ROLES


def require_host(state: SessionState, actor: AttendeeId) -> None:
    """The actor must be a clinician of this session who has not been removed."""
    require_active(state)
    if not is_host(state, actor) or state.is_removed(actor):
        raise NotAuthorized("only a clinician of this session may do that")


def require_present_member(state: SessionState, actor: AttendeeId) -> None:
    """The actor must be on the roster, not removed, and admitted to the call."""
    require_active(state)
    if state.spec.role_of(actor) is None or state.is_removed(actor):
        raise NotAuthorized("not a member of this session")
    if not state.is_admitted(actor):
        raise NotAuthorized("not admitted to the call yet")


def require_seated_target(state: SessionState, target: AttendeeId) -> None:
    """Controls act on patients and guests, never on another clinician."""
    role = require_roster(state, target)
    if role in HOST_ROLES:
        raise NotAuthorized("clinicians cannot be the target of this control")
