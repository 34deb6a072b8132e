"""Typed identifiers. All are opaque strings; attendee ids are pseudonyms chosen by the clinic."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, NewType

from pydantic import StringConstraints

from rooms.errors import InvalidMessage

SessionId = NewType("SessionId", str)
AttendeeId = NewType("AttendeeId", str)
EndpointId = NewType("EndpointId", str)
TokenId = NewType("TokenId", str)
NodeId = NewType("NodeId", str)

# Opaque pseudonyms: letters, digits and . _ - only, so an e-mail address or a
# "+1 555 ..." phone number cannot be used as an id by accident.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)

PseudonymStr = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


def is_valid_id(value: str) -> bool:
    """True when ``value`` is an acceptable opaque id."""
    return bool(_ID_RE.match(value))


def parse_session_id(value: str) -> SessionId:
    """``value`` as a session id, checked against :data:`ID_PATTERN` before it can reach the
    store: an id holding ``:`` would name another of the session's keys (its ledger stream
    ``...:ev``, its spec ``...:spec``)."""
    if not _ID_RE.match(value):
        raise InvalidMessage("session: not a session id")
    return SessionId(value)


def new_session_id() -> SessionId:
    return SessionId("s-" + secrets.token_urlsafe(9))


def new_endpoint_id() -> EndpointId:
    return EndpointId("e-" + secrets.token_urlsafe(9))


def new_token_id() -> TokenId:
    return TokenId(secrets.token_urlsafe(12))
