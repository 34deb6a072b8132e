"""Typed domain errors, each with a stable wire code; outer layers map them, never invent codes."""

from __future__ import annotations

from typing import ClassVar


class HomeroomError(Exception):
    """Base of every error a client may see. ``code`` is stable; ``detail`` is for humans."""

    code: ClassVar[str] = "error"
    #: HTTP status the web layer uses for this error.
    http_status: ClassVar[int] = 400

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code

    def to_wire(self) -> dict[str, str]:
        return {"error": self.code, "detail": self.detail}


class InvalidMessage(HomeroomError):
    code = "invalid_message"


class InvalidRoster(HomeroomError):
    code = "invalid_roster"


class NotAuthorized(HomeroomError):
    code = "not_authorized"
    http_status = 403


class NotAuthenticated(HomeroomError):
    code = "not_authenticated"
    http_status = 401


class NotOnRoster(HomeroomError):
    code = "not_on_roster"
    http_status = 403


class SessionNotFound(HomeroomError):
    code = "session_not_found"
    http_status = 404


class SessionExists(HomeroomError):
    code = "session_exists"
    http_status = 409


class SessionLocked(HomeroomError):
    code = "session_locked"
    http_status = 409


class SessionFull(HomeroomError):
    code = "session_full"
    http_status = 409


class SessionEnded(HomeroomError):
    code = "session_ended"
    http_status = 410


class InvalidTransition(HomeroomError):
    code = "invalid_transition"
    http_status = 409


class EndpointNotFound(HomeroomError):
    code = "endpoint_not_found"
    http_status = 404


class DeviceFull(HomeroomError):
    code = "device_full"
    http_status = 409


class MuteLocked(HomeroomError):
    code = "mute_locked"
    http_status = 409


class TokenInvalid(HomeroomError):
    code = "token_invalid"
    http_status = 401


class TokenExpired(HomeroomError):
    code = "token_expired"
    http_status = 401


class TokenNotYetValid(HomeroomError):
    code = "token_not_yet_valid"
    http_status = 401


class TokenRevoked(HomeroomError):
    code = "token_revoked"
    http_status = 401


class WrongSession(HomeroomError):
    code = "wrong_session"
    http_status = 403


class ResumeExpired(HomeroomError):
    """The reconnect grace window has passed (or the endpoint is gone): join again."""

    code = "resume_expired"
    http_status = 409


class StoreUnavailable(HomeroomError):
    code = "store_unavailable"
    http_status = 503


class StoreConflict(HomeroomError):
    """A transaction kept losing optimistic-concurrency races; the caller may retry."""

    code = "busy"
    http_status = 503


ALL_ERRORS: tuple[type[HomeroomError], ...] = (
    InvalidMessage,
    InvalidRoster,
    NotAuthorized,
    NotAuthenticated,
    NotOnRoster,
    SessionNotFound,
    SessionExists,
    SessionLocked,
    SessionFull,
    SessionEnded,
    InvalidTransition,
    EndpointNotFound,
    DeviceFull,
    MuteLocked,
    TokenInvalid,
    TokenExpired,
    TokenNotYetValid,
    TokenRevoked,
    WrongSession,
    StoreUnavailable,
    StoreConflict,
)
