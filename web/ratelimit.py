"""Rate limits and staff-token revocation on the HTTP side (rooms.ratelimit counts).

Link verification counts every attempt; staff authentication counts failed ones (a staff
page that polls is not limited, a guesser is) and refuses an address already over its limit
before looking at its token, so a guess that happens to be right learns nothing. A genuine
staff token whose id was revoked (``homeroom token revoke``) is refused as ``token_revoked``.
"""

from __future__ import annotations

from aiohttp import web

from config.settings import Settings
from rooms.errors import NotAuthenticated, TokenExpired, TokenInvalid, TokenRevoked
from rooms.ratelimit import Limiter, RateLimits, client_address
from rooms.service import Rooms
from rooms.tokens import verify_staff_token
from web.auth import bearer_token
from web.errors import Handler
from web.keys import LIMITER, ROOMS, SETTINGS

#: The patient's program API: its bearer is a standing program link, not a staff token
#: (web.program authenticates it), so the staff checks below do not apply to it.
PROGRAM_API = "/api/program"


def limiter_for(settings: Settings, rooms: Rooms) -> Limiter:
    limits = RateLimits(
        window_seconds=settings.rate_limit_window_seconds,
        per_address=settings.rate_limit_per_address,
        per_token=settings.rate_limit_per_token,
    )
    return Limiter(
        rooms.store, limits, rooms.clock, trust_forwarded_for=settings.trust_forwarded_for
    )


def address_of(request: web.Request, limiter: Limiter) -> str | None:
    forwarded = request.headers.get("X-Forwarded-For")
    return client_address(request.remote, forwarded, trust=limiter.trust_forwarded_for)


async def link_attempt(request: web.Request, token: str) -> None:
    """Count one link verification; RateLimited when over a limit."""
    limiter = request.app[LIMITER]
    await limiter.attempt("verify", address=address_of(request, limiter), token=token)


@web.middleware
async def staff_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before any handler sees a bearer token: limits on failures, and revocation."""
    if "Authorization" not in request.headers or request.path.startswith(PROGRAM_API):
        return await handler(request)
    limiter, rooms = request.app[LIMITER], request.app[ROOMS]
    address = address_of(request, limiter)
    await limiter.check("staff", address=address)
    try:
        token = bearer_token(request)
    except NotAuthenticated:  # not a bearer token: the handler says what it needs
        return await handler(request)
    try:
        claims = verify_staff_token(request.app[SETTINGS].signing_secret, token, rooms.clock())
    except (TokenInvalid, TokenExpired):
        await limiter.attempt("staff", address=address, token=token)
        raise
    if await rooms.store.token_revoked(claims.jti):
        raise TokenRevoked("this staff token was revoked")
    return await handler(request)
