"""Janus ids, secrets and pins of Homeroom's rooms, derived from a key that stays on the server.

Derived rather than random-and-remembered: every Homeroom node of a deployment computes the
same room, secret and feed id for a session and endpoint (so any node can moderate or kick),
and a restarted Homeroom can still destroy a room it made before it crashed. Nothing derived
is ever sent to a client; without the key the values are unguessable.
"""

from __future__ import annotations

import hashlib
import hmac

#: Janus's numeric ids travel as JSON numbers: stay within what a double holds exactly.
_ID_BITS = 52
DESCRIPTION_PREFIX = "homeroom "


class RoomNames:
    """Ids, secrets and pins from one key (Homeroom's signing secret, or one per test)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def room(self, session: str) -> int:
        return self._number("room", session)

    def secret(self, session: str) -> str:
        return self._text("secret", session)

    def pin(self, session: str) -> str:
        return self._text("pin", session)

    def feed(self, session: str, endpoint: str) -> int:
        return self._number("feed", f"{session}/{endpoint}")

    @staticmethod
    def description(session: str) -> str:
        """The room's description: how garbage collection recognizes Homeroom's rooms."""
        return DESCRIPTION_PREFIX + session

    @staticmethod
    def session_of(description: str) -> str | None:
        if description.startswith(DESCRIPTION_PREFIX):
            return description.removeprefix(DESCRIPTION_PREFIX)
        return None

    def _digest(self, purpose: str, value: str) -> bytes:
        message = f"homeroom-janus:{purpose}:{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _number(self, purpose: str, value: str) -> int:
        number = int.from_bytes(self._digest(purpose, value)[:8], "big") >> (64 - _ID_BITS)
        return number or 1

    def _text(self, purpose: str, value: str) -> str:
        return self._digest(purpose, value)[:18].hex()
