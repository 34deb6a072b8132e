"""Socket connects count against the same limits as link verification (rooms.ratelimit):
per client address and per link token or resume credential."""

from __future__ import annotations

from typing import Any

from rooms.ratelimit import Limiter, client_address


async def count_connect(limiter: Limiter | None, environ: dict[str, Any], auth: Any) -> None:
    """Count one connect attempt; RateLimited (answered as ``connect_error rate_limited``)
    when its address or its credential is over a limit."""
    if limiter is None:
        return
    request = environ.get("aiohttp.request")
    remote = getattr(request, "remote", None)
    forwarded = request.headers.get("X-Forwarded-For") if request is not None else None
    address = client_address(remote, forwarded, trust=limiter.trust_forwarded_for)
    credential = None
    if isinstance(auth, dict):
        found = auth.get("token") or auth.get("resume")
        credential = found if isinstance(found, str) else None
    await limiter.attempt("connect", address=address, token=credential)
