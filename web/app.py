"""The aiohttp application: health probes, the REST API for sessions and links, link pages.

Handlers are thin: authenticate, parse with pydantic, call :mod:`rooms`, shape the answer.
Failures become JSON in :mod:`web.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from config.billing import load_billing_rules
from config.settings import Settings
from rooms.authz import require_active
from rooms.clock import Clock, utcnow
from rooms.errors import StoreConflict, StoreUnavailable, TokenExpired, TokenNotYetValid
from rooms.ids import AttendeeId, NodeId, SessionId
from rooms.kinds import Role, SessionKind
from rooms.reaper import Reaper
from rooms.service import Rooms
from rooms.session import SessionStatus
from rooms.state import SessionState
from rooms.store import SessionStore, open_store
from rooms.tokens import (
    check_link_time,
    check_not_revoked,
    decode_link_token,
)
from signaling.budget import budget_limits
from signaling.ice import TurnConfig
from signaling.server import SignalingConfig, SignalingServer
from web import audit, revocation, sessions, shutdown
from web.errors import MAX_BODY_BYTES, Handler, error_middleware, from_domain, parse_body
from web.group_media import GROUP_MEDIA, GroupMediaSetup, group_media_ctx
from web.keys import LIMITER, PROGRAM, ROOMS, RULES, SETTINGS, SIGNALING
from web.metered_store import metered
from web.metrics import Metrics
from web.metrics_http import METRICS, serve_metrics
from web.openapi import openapi_json
from web.program_routes import add_program_routes, open_program
from web.ratelimit import limiter_for, link_attempt, staff_guard
from web.records import attendance

STATIC_DIR = Path(__file__).parent / "static"
#: A readiness probe must answer quickly even when Redis hangs.
READY_TIMEOUT_SECONDS = 2.0
_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
}

access_log = structlog.get_logger("access")


class LinkStatus(BaseModel):
    """The answer to ``POST /api/links/verify`` for a link that works now."""

    session: SessionId
    attendee: AttendeeId
    role: Role
    kind: SessionKind
    session_status: SessionStatus
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    #: The clinic's name for the page (HOMEROOM_CLINIC_NAME; "" when unset).
    clinic: str = ""
    #: Display names of the session's clinicians from the patient's care team (names are for
    #: the patient's page only: never logged), in roster order; empty when none are known.
    clinicians: list[str] = []


class VerifyLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=4096)


#: socket.io's path (python-socketio's default, as :meth:`SignalingServer.attach` uses it).
SOCKETIO_PATH = "/socket.io/"


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log through structlog: the route's template for a path
    (``/api/sessions/{session}``: a path may carry a token or a name), no query, and no
    client address (an IP address is a HIPAA identifier).

    A socket.io connection that worked gets no access line: it is one websocket per endpoint
    (the pages connect with the websocket transport only), its line would come when it closes
    and say only ``GET /socket.io/ 101`` and how long it stayed, while signaling logs the
    same connection's ``joined`` / ``resumed`` / ``disconnected`` and its control events with
    session and endpoint. A refused socket.io request (status 400 and up) reaches no
    signaling code, so it keeps its line, as does every request to any other path.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if response.status < 400 and request.path.startswith(SOCKETIO_PATH):
            return
        access_log.info(
            "http_request",
            method=request.method,
            path=route_template(request),
            status=response.status,
            ms=round(time * 1000, 1),
        )


#: What the access log says for a request that matched no route (its path is the client's).
UNMATCHED = "<unmatched>"


def route_template(request: web.BaseRequest) -> str:
    """The template of the route ``request`` matched, never its path: ``/static/`` for any
    static file, :data:`UNMATCHED` for a path no route serves or a request that did not
    parse."""
    try:
        match = getattr(request, "match_info", None)
    except AssertionError:  # a request refused before routing has no match to give
        match = None
    resource = getattr(getattr(match, "route", None), "resource", None)
    return resource.canonical if resource is not None else UNMATCHED


def create_app(
    settings: Settings, store: SessionStore | None = None, *, clock: Clock = utcnow
) -> web.Application:
    """The application. Opens ``open_store(settings.redis_url)`` on start-up unless ``store``
    is given, and closes the store it opened on clean-up."""
    app = web.Application(
        middlewares=[error_middleware, staff_guard],
        client_max_size=MAX_BODY_BYTES,
        # Here rather than in each runner, so tests and `homeroom serve` log alike.
        handler_args={"access_log_class": AccessLogger},
    )
    app[SETTINGS] = settings
    shutdown.install(app)
    app[RULES] = load_billing_rules(settings.billing_rules)
    metrics = app[METRICS] = Metrics()
    opened = store or open_store(settings.redis_url, prefix=settings.redis_prefix)
    rooms = app[ROOMS] = Rooms(
        metered(opened, metrics),
        node=NodeId(settings.node_id),
        group_capacity=settings.group_capacity,
        clock=clock,
    )
    group_media = app[GROUP_MEDIA] = GroupMediaSetup(settings, rooms.store)
    signaling = app[SIGNALING] = SignalingServer(
        rooms, signaling_config(settings), group_media.forwarder
    )
    signaling.limiter = app[LIMITER] = limiter_for(settings, rooms)
    signaling.attach(app)
    program = app[PROGRAM] = open_program(settings, rooms)
    signaling.check_via = program.check_via
    serve_metrics(app, settings, signaling)
    reaper = Reaper(
        rooms,
        interval=settings.heartbeat_seconds,
        dead_after=3 * settings.heartbeat_seconds,
        grace=timedelta(seconds=settings.reconnect_grace_seconds),
        on_change=signaling.publish_change,
    )

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        # Beat before the first connection: a node that never beat could never be reaped.
        # With the store down the node still starts (readyz says 503) and beats later.
        with contextlib.suppress(StoreUnavailable):
            await reaper.beat()
        signaling.start()
        reaper.start()
        yield
        await reaper.stop()
        # Hang-ups kept through an outage: one last try before the store is closed.
        with contextlib.suppress(StoreUnavailable, StoreConflict):
            await signaling.hangups.flush()
        await signaling.hangups.close()
        await program.store.close()
        if store is None:
            await opened.close()

    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(group_media_ctx)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/api/sessions", sessions.create_session)
    app.router.add_get("/api/sessions", sessions.list_sessions)
    app.router.add_get("/api/sessions/{session}", sessions.get_session)
    app.router.add_post("/api/sessions/{session}/links", sessions.reissue_links)
    app.router.add_post("/api/links/verify", verify_link)
    app.router.add_get("/api/attendance", attendance)
    app.router.add_get("/api/audit", audit.get_audit)
    app.router.add_get("/api/audit/verify", audit.get_verify)
    app.router.add_post("/api/archive", audit.post_archive)
    app.router.add_post("/api/tokens/revoke", revocation.post_revoke)
    app.router.add_get("/api/openapi.json", openapi_json)
    add_program_routes(app)
    app.router.add_get("/join", _page("join.html"))
    app.router.add_get("/host", _page("host.html"))
    app.router.add_get("/console", _page("console.html"))
    app.router.add_get("/admin", _page("admin.html"))
    app.router.add_static("/static/", STATIC_DIR)
    return app


def signaling_config(settings: Settings) -> SignalingConfig:
    return SignalingConfig(
        secret=settings.signing_secret,
        grace=timedelta(seconds=settings.reconnect_grace_seconds),
        ice_servers=[server.model_dump(exclude_none=True) for server in settings.ice_servers],
        redis_url=settings.redis_url,
        channel=f"{settings.redis_prefix}:signaling",
        turn=TurnConfig(
            urls=tuple(settings.turn_urls),
            secret=settings.turn_secret.get_secret_value(),
            ttl=timedelta(seconds=settings.turn_ttl_seconds),
            pseudonym_key=settings.signing_secret.encode(),
        )
        if settings.turn_secret is not None
        else None,
        budget=budget_limits(settings.event_rate, settings.event_kib_rate),
    )


async def index(request: web.Request) -> web.Response:
    return web.Response(text="Homeroom is running. Open your session link to join.\n")


async def healthz(request: web.Request) -> web.Response:
    group_media = await request.app[GROUP_MEDIA].health()
    return web.json_response({"status": "ok", "group_media": group_media})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await request.app[ROOMS].store.ping()
    except TimeoutError:
        raise StoreUnavailable("the store did not answer in time") from None
    return web.json_response({"status": "ready"})


async def verify_link(request: web.Request) -> web.Response:
    """What the join page shows: whose link this is and when it works, or why it does not."""
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    body = await parse_body(request, VerifyLink)
    await link_attempt(request, body.token)
    claims = decode_link_token(settings.signing_secret, body.token)
    if claims.via is not None:
        await request.app[PROGRAM].check_via(claims.attendee, claims.via)
    state = await rooms.get_session(claims.session)
    check_not_revoked(state, claims)
    require_active(state)
    try:
        check_link_time(claims, rooms.clock())
    except (TokenNotYetValid, TokenExpired) as exc:
        return from_domain(exc, starts_at=_iso(state.spec.starts_at), opens_at=_iso(claims.nbf))
    return _json(
        LinkStatus(
            session=claims.session,
            attendee=claims.attendee,
            role=claims.role,
            kind=state.spec.kind,
            session_status=state.status,
            starts_at=state.spec.starts_at,
            ends_at=state.spec.ends_at,
            clinic=settings.clinic_name,
            clinicians=await _clinician_names(request, state, claims.attendee),
        )
    )


async def _clinician_names(
    request: web.Request, state: SessionState, attendee: AttendeeId
) -> list[str]:
    """The session's clinicians as the patient's care team names them."""
    enrollment = await request.app[PROGRAM].store.enrollment(attendee)
    if enrollment is None:
        return []
    clinicians = [e.attendee for e in state.spec.roster if e.role is Role.CLINICIAN]
    return [n for n in (enrollment.display_name(c) for c in clinicians) if n]


def _page(name: str) -> Handler:
    async def serve(request: web.Request) -> web.FileResponse:
        # no-store: the page is tiny, and a cached copy must never outlive a fix.
        return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-store"})

    return serve


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/static/"):
        # Revalidate (cheap: ETag / Last-Modified) so an upgrade never runs yesterday's script.
        response.headers.setdefault("Cache-Control", "no-cache")


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


def _iso(moment: datetime) -> str:
    """The same form pydantic writes: UTC with a ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
