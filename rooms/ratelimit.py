"""Limits on how often one client address, or one token, may try to get in.

Link verification, staff authentication and socket connects are where a guesser or a
script hammers: each attempt is counted per client address and per token in the store, so
every node of a deployment sees the same counts (fixed windows: ``SessionStore.hit``). Past
a limit the caller gets :class:`~rooms.errors.RateLimited` with the seconds until the window
ends (HTTP 429 with ``Retry-After``; socket ``rate_limited``).

What is counted is a digest, never the address or the token itself: neither may sit in the
store's keys (an IP address is a HIPAA identifier; a token is a credential).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rooms.errors import RateLimited
from rooms.store.base import SessionStore


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Attempts allowed in each window of ``window_seconds``; 0 turns a limit off."""

    window_seconds: int = 60
    per_address: int = 120
    per_token: int = 30


def client_address(remote: str | None, forwarded_for: str | None, *, trust: bool) -> str | None:
    """The address to count a request by: the peer's, or behind a trusted reverse proxy the
    last address the proxy appended to ``X-Forwarded-For`` (earlier ones are the client's
    to write)."""
    if trust and forwarded_for:
        last = forwarded_for.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return remote


class Limiter:
    """Counts attempts by scope (``verify``, ``staff``, ``connect``) in the store."""

    def __init__(
        self,
        store: SessionStore,
        limits: RateLimits,
        clock: Callable[[], datetime],
        *,
        trust_forwarded_for: bool = False,
    ) -> None:
        self.store, self.limits, self._clock = store, limits, clock
        self.trust_forwarded_for = trust_forwarded_for

    async def attempt(self, scope: str, *, address: str | None, token: str | None) -> None:
        """Count one attempt; raise RateLimited when it is over a limit."""
        limits = self.limits
        await self._count(scope, "address", address, limits.per_address, 1)
        await self._count(scope, "token", token, limits.per_token, 1)

    async def check(self, scope: str, *, address: str | None) -> None:
        """Raise RateLimited when ``address`` is already over its limit (counts nothing)."""
        await self._count(scope, "address", address, self.limits.per_address, 0)

    async def _count(self, scope: str, kind: str, value: str | None, limit: int, n: int) -> None:
        if not value or limit <= 0:
            return
        digest = hashlib.sha256(f"{scope}\0{kind}\0{value}".encode()).hexdigest()[:32]
        window = self.limits.window_seconds
        hits, left = await self.store.hit(f"{scope}:{digest}", window, self._clock(), n)
        if hits > limit or (n == 0 and hits >= limit):
            wait = max(1, math.ceil(left))
            raise RateLimited(f"too many attempts: try again in {wait} s", retry_after=wait)
