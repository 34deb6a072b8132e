"""Checking an HS256 JSON Web Token (compact JWS), strictly and cheaply.

Every connect checks a link token, so the check is on the hot path of every join; PyJWT's
general decoder spends about 100 microseconds on it (it supports every algorithm, header and
option), this about a quarter of that. Tokens are still issued by PyJWT; this accepts exactly
what Homeroom issues and refuses the rest:

- three base64url segments (no padding, no character outside the alphabet, and the canonical
  encoding: trailing bits must be zero, so one signature has exactly one spelling);
- a header that is a JSON object with ``alg`` ``HS256`` and at most ``typ`` ``JWT`` beside it
  (no ``none``, no other algorithm, no ``crit`` or key hints to follow);
- an HMAC-SHA256 over ``header.payload`` equal, in constant time, to the signature;
- a payload that is a JSON object.

Claims (audience, times, shape) are the caller's to check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_HEADERS = ({"alg": "HS256"}, {"alg": "HS256", "typ": "JWT"})
#: Header segments already found acceptable (Homeroom issues one or two spellings).
_GOOD_HEADERS: set[str] = set()
#: HMAC states with the key already absorbed, by secret (one or two secrets per process).
_KEYED: dict[str, Any] = {}


class BadToken(Exception):
    """The token is not an HS256 JWS signed with the secret; deliberately without detail."""


def verify(secret: str, token: str) -> dict[str, Any]:
    """The payload of ``token`` if it is an HS256 JWS signed with ``secret``."""
    parts = token.split(".")
    if len(parts) != 3:
        raise BadToken
    header, payload, signature = parts
    if header not in _GOOD_HEADERS:
        _check_header(header)
    mac = _keyed(secret).copy()
    mac.update(f"{header}.{payload}".encode("ascii", "replace"))
    if not hmac.compare_digest(mac.digest(), _segment(signature)):
        raise BadToken
    claims = _json(_segment(payload))
    if not isinstance(claims, dict):
        raise BadToken
    return claims


def _check_header(header: str) -> None:
    if _json(_segment(header)) not in _HEADERS:
        raise BadToken
    if len(_GOOD_HEADERS) < 8:
        _GOOD_HEADERS.add(header)


def _keyed(secret: str) -> Any:
    found = _KEYED.get(secret)
    if found is None:
        found = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        if len(_KEYED) < 8:
            _KEYED[secret] = found
    return found


def _segment(text: str) -> bytes:
    """Strict, canonical base64url without padding."""
    if not text or len(text) % 4 == 1 or not _ALPHABET.issuperset(text):
        raise BadToken
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadToken from None
    # Nonzero trailing bits would give the same bytes another spelling.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise BadToken
    return raw


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # ValueError: UnicodeDecodeError, JSONDecodeError
        raise BadToken from None
