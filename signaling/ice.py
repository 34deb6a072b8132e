"""ICE servers handed to each endpoint: the configured list plus, when a TURN secret is set,
short-lived TURN credentials in coturn's REST-API scheme (``use-auth-secret``).

The username is ``<expiry unix time>:<endpoint id>`` and the password the base64 HMAC-SHA1 of
the username under the shared secret, so coturn checks them without asking Homeroom, and a
leaked credential dies on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class TurnConfig:
    urls: tuple[str, ...]
    secret: str
    ttl: timedelta = timedelta(hours=8)


def turn_credentials(turn: TurnConfig, user: str, now: datetime) -> dict[str, Any]:
    """One RTCIceServer entry valid until ``now + ttl``."""
    expiry = int((now + turn.ttl).timestamp())
    username = f"{expiry}:{user}"
    digest = hmac.new(turn.secret.encode(), username.encode(), hashlib.sha1).digest()
    return {
        "urls": list(turn.urls),
        "username": username,
        "credential": base64.b64encode(digest).decode(),
    }


def ice_servers(
    static: list[dict[str, Any]], turn: TurnConfig | None, user: str, now: datetime
) -> list[dict[str, Any]]:
    """What an endpoint puts in ``RTCConfiguration.iceServers``. Empty by default."""
    if turn is None:
        return list(static)
    return [*static, turn_credentials(turn, user, now)]
