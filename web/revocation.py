"""Revoking staff tokens: ``POST /api/tokens/revoke`` and ``homeroom token revoke``.

A staff token is a bearer credential valid until it expires; a lost or leaked one is
revoked by its id (``jti``). The id goes into the store's revocation list until the token
would have expired anyway, so every node refuses it (web.ratelimit.staff_guard), and the
revocation is recorded in the admin audit log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from rooms.audit import AdminAction
from rooms.service import Rooms
from rooms.tokens import StaffRole, decode_staff_token
from web.auth import require_staff
from web.errors import parse_body
from web.keys import ROOMS, SETTINGS

#: The longest a staff token could have been issued for (``homeroom token --days`` allowed a
#: year before the shorter limit): a revocation by id alone is kept this long.
LONGEST_LIFETIME = timedelta(days=366)
#: The longest ``homeroom token`` issues a staff token for now, and its default.
MAX_TOKEN_DAYS, DEFAULT_TOKEN_DAYS = 30, 1


class RevokeToken(BaseModel):
    """The body of ``POST /api/tokens/revoke``: the token itself, or its id."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(min_length=16, max_length=4096)] | None = None
    jti: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> RevokeToken:
        if (self.token is None) == (self.jti is None):
            raise ValueError("give exactly one of token or jti")
        return self


async def revoke(rooms: Rooms, secret: str, body: RevokeToken, *, actor: str) -> dict[str, Any]:
    """Put the token's id on the revocation list; shared by the API and the CLI."""
    now = rooms.clock()
    if body.token is not None:
        claims = decode_staff_token(secret, body.token)  # only a genuine token names its id
        jti, until = str(claims.jti), claims.exp
    else:
        assert body.jti is not None
        jti, until = body.jti, now + LONGEST_LIFETIME
    await rooms.store.revoke_token(jti, until, now)
    await rooms.store.append_admin_audit(actor, AdminAction.TOKEN_REVOKE, {"jti": jti}, now)
    return {"revoked": jti, "until": _iso(until)}


async def post_revoke(request: web.Request) -> web.Response:
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    staff = require_staff(request, settings.signing_secret, rooms.clock(), StaffRole.ADMIN)
    body = await parse_body(request, RevokeToken)
    answer = await revoke(rooms, settings.signing_secret, body, actor=staff.subject)
    return web.json_response(answer)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
