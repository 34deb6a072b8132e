"""ICE servers handed to each endpoint: the configured list plus, when a TURN secret is set,
short-lived TURN credentials in coturn's REST-API scheme (``use-auth-secret``).

The username is ``<expiry unix time>:<pseudonym>`` and the password the base64 HMAC-SHA1 of
the username under the shared secret, so coturn checks them without asking Homeroom, and a
leaked credential dies on its own: at the session's planned end plus a margin (or a margin
after joining, for a session running late), not hours later.

coturn logs usernames next to client addresses, so the pseudonym says nothing a TURN log
should not: an HMAC of session and attendee under Homeroom's own signing secret (which the
TURN server does not hold), the same for an attendee throughout a session (a resume keeps
it), different across sessions, and never the attendee id itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: Hex digits of the pseudonym: 64 bits, enough that two attendees never share one.
PSEUDONYM_HEX = 16


@dataclass(frozen=True, slots=True)
class TurnConfig:
    urls: tuple[str, ...]
    secret: str
    #: How long after the session's planned end (or after joining, if later) a credential works.
    ttl: timedelta = timedelta(hours=1)
    #: Keys the pseudonyms; Homeroom's signing secret, never the TURN secret.
    pseudonym_key: bytes = field(default=b"", repr=False)


def turn_pseudonym(turn: TurnConfig, session: str, attendee: str) -> str:
    """The name an attendee's TURN credentials carry in this session."""
    message = f"turn\x00{session}\x00{attendee}".encode()
    digest = hmac.new(turn.pseudonym_key, message, hashlib.sha256).hexdigest()
    return "t" + digest[:PSEUDONYM_HEX]


def turn_expiry(turn: TurnConfig, session_ends: datetime, now: datetime) -> datetime:
    """When credentials handed out at ``now`` for a session planned to end then stop working."""
    return max(session_ends, now) + turn.ttl


def turn_credentials(turn: TurnConfig, pseudonym: str, expires: datetime) -> dict[str, Any]:
    """One RTCIceServer entry valid until ``expires``."""
    username = f"{int(expires.timestamp())}:{pseudonym}"
    digest = hmac.new(turn.secret.encode(), username.encode(), hashlib.sha1).digest()
    return {
        "urls": list(turn.urls),
        "username": username,
        "credential": base64.b64encode(digest).decode(),
    }


@dataclass(frozen=True, slots=True)
class IceRequest:
    """Who asks for ICE servers, and when."""

    session: str
    attendee: str
    session_ends: datetime
    now: datetime


def ice_servers(
    static: list[dict[str, Any]], turn: TurnConfig | None, who: IceRequest
) -> list[dict[str, Any]]:
    """What an endpoint puts in ``RTCConfiguration.iceServers``. Empty by default."""
    if turn is None:
        return list(static)
    pseudonym = turn_pseudonym(turn, who.session, who.attendee)
    expires = turn_expiry(turn, who.session_ends, who.now)
    return [*static, turn_credentials(turn, pseudonym, expires)]
