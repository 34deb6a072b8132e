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
    """The message is malformed, unknown, too large or fails validation."""

    code = "invalid_message"


class InvalidRoster(HomeroomError):
    """The roster breaks the session kind's rules."""

    code = "invalid_roster"


class NotAuthorized(HomeroomError):
    """The actor's role does not allow this action."""

    code = "not_authorized"
    http_status = 403


class NotAuthenticated(HomeroomError):
    """No valid credential was presented."""

    code = "not_authenticated"
    http_status = 401


class NotOnRoster(HomeroomError):
    """The attendee is not on this session's roster."""

    code = "not_on_roster"
    http_status = 403


class SessionNotFound(HomeroomError):
    """No such session (or its state has expired)."""

    code = "session_not_found"
    http_status = 404


class SessionExists(HomeroomError):
    """A session with this id already exists."""

    code = "session_exists"
    http_status = 409


class SessionLocked(HomeroomError):
    """The clinician locked the session: no new entries."""

    code = "session_locked"
    http_status = 409


class SessionFull(HomeroomError):
    """Admitting this person would exceed the session's capacity."""

    code = "session_full"
    http_status = 409


class SessionEnded(HomeroomError):
    """The session has ended."""

    code = "session_ended"
    http_status = 410


class InvalidTransition(HomeroomError):
    """Out of order: the action does not apply in the current state."""

    code = "invalid_transition"
    http_status = 409


class EndpointNotFound(HomeroomError):
    """The endpoint is not (or no longer) part of the session."""

    code = "endpoint_not_found"
    http_status = 404


class DeviceFull(HomeroomError):
    """A device already carries two attendees."""

    code = "device_full"
    http_status = 409


class MuteLocked(HomeroomError):
    """The clinician locked this attendee's mute."""

    code = "mute_locked"
    http_status = 409


class TokenInvalid(HomeroomError):
    """The link, token or credential is forged, damaged or of the wrong kind."""

    code = "token_invalid"
    http_status = 401


class TokenExpired(HomeroomError):
    """The link or token has expired."""

    code = "token_expired"
    http_status = 401


class TokenNotYetValid(HomeroomError):
    """The link opens later, shortly before the session starts."""

    code = "token_not_yet_valid"
    http_status = 401


class TokenRevoked(HomeroomError):
    """The link was withdrawn (the attendee was removed)."""

    code = "token_revoked"
    http_status = 401


class WrongSession(HomeroomError):
    """The link belongs to a different session."""

    code = "wrong_session"
    http_status = 403


class ResumeExpired(HomeroomError):
    """The reconnect grace window has passed (or the endpoint is gone): join again."""

    code = "resume_expired"
    http_status = 409


class AlreadyJoined(HomeroomError):
    """The person is connected in another window or device: join with takeover to move here."""

    code = "already_joined"
    http_status = 409


class RateLimited(HomeroomError):
    """Too many requests or bytes from this sender: wait ``retry_after`` seconds and retry."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, detail: str = "", *, retry_after: float = 1.0) -> None:
        super().__init__(detail or "too many requests: slow down and try again")
        #: Seconds until a retry can succeed (HTTP ``Retry-After``, rounded up).
        self.retry_after = retry_after


class StoreUnavailable(HomeroomError):
    """The state store cannot be reached."""

    code = "store_unavailable"
    http_status = 503


class StoreConflict(HomeroomError):
    """A transaction kept losing optimistic-concurrency races; the caller may retry."""

    code = "busy"
    http_status = 503


class NotEnrolled(HomeroomError):
    """The patient has no enrollment (no standing program link was ever issued)."""

    code = "not_enrolled"
    http_status = 404


class NoCareTeam(HomeroomError):
    """A check-in needs a care-team clinician who can see the patient, and there is none."""

    code = "no_care_team"
    http_status = 409


class NotOnDuty(HomeroomError):
    """Outside the program's check-in hours nobody can pick a request up."""

    code = "not_on_duty"
    http_status = 409


class CheckinNotFound(HomeroomError):
    """No such check-in request."""

    code = "checkin_not_found"
    http_status = 404


class CheckinTaken(HomeroomError):
    """The check-in request was already picked up (by this or another clinician)."""

    code = "checkin_taken"
    http_status = 409


class CheckinCancelled(HomeroomError):
    """The check-in request was cancelled before anyone picked it up."""

    code = "checkin_cancelled"
    http_status = 409


class ForwarderUnavailable(HomeroomError):
    """Group media: the forwarding unit cannot be reached or lost this endpoint; publish again."""

    code = "forwarder_unavailable"
    http_status = 503


class ForwarderRejected(HomeroomError):
    """Group media: the forwarding unit refused the request (answer an offer it has not sent)."""

    code = "forwarder_rejected"
    http_status = 409


class InvalidMedia(HomeroomError):
    """Group media: the forwarding unit could not use this SDP or candidate."""

    code = "invalid_media"
    http_status = 400


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
    ResumeExpired,
    AlreadyJoined,
    RateLimited,
    StoreUnavailable,
    StoreConflict,
    NotEnrolled,
    NoCareTeam,
    NotOnDuty,
    CheckinNotFound,
    CheckinTaken,
    CheckinCancelled,
    ForwarderUnavailable,
    ForwarderRejected,
    InvalidMedia,
)
