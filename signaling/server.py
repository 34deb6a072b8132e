"""The socket.io signaling server: connections in, domain changes through, room views out.

Handlers only decode a message, call the domain and map the result; the store is the truth
and this process keeps only handles of its own connections (``Conn``). With a Redis URL,
python-socketio's AsyncRedisManager fans events out to endpoints connected to other nodes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, Literal

import socketio
import structlog
from pydantic import ValidationError

from media.forwarder import Forwarder
from rooms import membership, reconnect
from rooms.errors import (
    HomeroomError,
    InvalidMessage,
    NotAuthenticated,
    NotAuthorized,
    RateLimited,
    StoreUnavailable,
    TokenInvalid,
    WrongSession,
)
from rooms.hangups import Hangup, Hangups
from rooms.ids import AttendeeId, EndpointId, SessionId, TokenId, is_valid_id, new_endpoint_id
from rooms.kinds import HOST_ROLES, RULES, SessionKind
from rooms.ledger import Ctx, LedgerEvent
from rooms.ratelimit import Limiter
from rooms.service import Change, Rooms
from rooms.state import SessionState
from rooms.takeover import refuse_second_window, take_over
from rooms.tokens import check_not_revoked, verify_link_token
from signaling import protocol as p
from signaling.budget import BudgetLimits, Budgets
from signaling.connect_limit import count_connect
from signaling.decoding import decode, describe, known
from signaling.delivery import Before, RecentViews, closed_by
from signaling.fanout import BoundedRedisManager
from signaling.group import EVENTS as GROUP_EVENTS
from signaling.group import GroupMedia
from signaling.handlers import CHANGES, Conn
from signaling.ice import IceRequest, TurnConfig, ice_servers
from signaling.observer import NoObserver, SignalingObserver
from signaling.views import View, admitted_endpoints, room_view
from signaling.websocket import MAX_BUFFERED
from signaling.wire import STOCK_WIRE, Server, TextPacket, send_local, send_local_events

log = structlog.get_logger("homeroom.signaling")
DEFAULT_BUDGET = BudgetLimits()
#: A signal is not relayed to a connection of this node with more than this waiting for it:
#: well below the bytes at which it would be dropped as a slow client.
RELAY_BUFFERED = MAX_BUFFERED // 4


@dataclass(frozen=True, slots=True)
class SignalingConfig:
    secret: str
    grace: timedelta
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    redis_url: str | None = None
    #: Pub/sub channel of the node fan-out; nodes of one deployment share it.
    channel: str = "homeroom"
    turn: TurnConfig | None = None
    #: What each connection may send (signaling.budget); None: no budget.
    budget: BudgetLimits | None = DEFAULT_BUDGET


def negotiation_target(kind: SessionKind, forwarded: bool = False) -> Literal["peer", "server"]:
    """Whom an endpoint of ``kind`` negotiates media with: the one seam between peer-to-peer
    and server-forwarded media. Group sessions (``RULES[kind].server_forwarded``) go through
    the forwarder when this node has one (``forwarded``), else they fall back to the mesh."""
    return "server" if forwarded and RULES[kind].server_forwarded else "peer"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def library_logger(name: str) -> logging.Logger:
    """python-socketio's or python-engineio's logger, as it sets its own up (error level:
    below it they write a line per packet, quoting the packet) but with no handler of its
    own: its records go through the root's, the one pipeline (config.logging), which drops
    what a client sent from them. Given ``False`` instead, each library adds a plain-text
    handler of its own, which wrote its messages whole (a session id or an Origin header
    from a client's request among them) beside the pipeline's lines."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.ERROR)
    return logger


class SignalingServer:
    """Owns the AsyncServer and this node's connections."""

    def __init__(
        self, rooms: Rooms, config: SignalingConfig, forwarder: Forwarder | None = None
    ) -> None:
        self.rooms = rooms
        self.config = config
        self.group = GroupMedia(forwarder, rooms, self._send)
        manager = (
            BoundedRedisManager(config.redis_url, channel=config.channel)
            if config.redis_url
            else None
        )
        self.sio = Server(
            budgets=Budgets(config.budget) if config.budget else None,
            async_mode="aiohttp",
            client_manager=manager,
            serializer="default" if STOCK_WIRE else TextPacket,
            transports=["websocket"],
            # Oversized events get a clear error from _dispatch instead of a dropped socket.
            max_http_buffer_size=4 * p.MAX_EVENT_BYTES,
            ping_interval=10,
            ping_timeout=10,
            # A connection's events are handled one after the other in its read loop, in the
            # order they came (not each in a task of its own). Store calls end within their
            # timeout (5 s), well inside the ping timeout, so pongs are still read in time.
            async_handlers=False,
            logger=library_logger("socketio.server"),
            engineio_logger=library_logger("engineio.server"),
        )
        self.local: dict[str, Conn] = {}
        #: Limits on connect attempts per address and credential (set by the application).
        self.limiter: Limiter | None = None
        #: Refuses a link handed out through a withdrawn standing link (rooms.program);
        #: set by the application, None where no program is served.
        self.check_via: Callable[[AttendeeId, TokenId], Awaitable[None]] | None = None
        self.observer: SignalingObserver = NoObserver()
        #: The views last built per session, by version (the next change starts from them).
        self._views = RecentViews()
        #: Closes started by a timer (held here so they are not collected mid-way).
        self._closing: set[asyncio.Future[Any]] = set()
        #: Hang-ups on their way to the store: kept through an outage, written after it.
        self.hangups = Hangups(self._write_hangup)
        if manager is not None:
            manager.on_resubscribed = self.resync
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("*", self._dispatch)

    def attach(self, app: Any) -> None:
        self.sio.attach(app)

    def start(self) -> None:
        """Listen to the other nodes now: a node that never accepted a connection otherwise
        would not subscribe, and would miss events meant for its future endpoints."""
        if not self.sio.manager_initialized:
            self.sio.manager_initialized = True
            self.sio.manager.initialize()

    # --- connecting ---------------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            await count_connect(self.limiter, environ, auth)
            request = p.ConnectAuth.model_validate(auth or {})
            if request.token is not None:
                await self._join(sid, request.token, takeover=request.takeover)
            else:
                assert request.resume is not None
                await self._resume(sid, request.resume)
            self.observer.connect("join" if request.token is not None else "resume")
        except ValidationError as exc:
            error = InvalidMessage(describe(exc))
            log.info("connect_refused", code=error.code, node=self.rooms.node)
            self.observer.connect(error.code)
            raise socketio.exceptions.ConnectionRefusedError(error.code, error.to_wire()) from None
        except HomeroomError as exc:
            # The code only: the detail may quote what the client sent.
            log.info("connect_refused", code=exc.code, node=self.rooms.node)
            self.observer.connect(exc.code)
            raise socketio.exceptions.ConnectionRefusedError(exc.code, exc.to_wire()) from None
        except Exception:
            # A bug: logged, and the client still gets an answer (every connect gets one).
            log.exception("connect_failed", node=self.rooms.node)
            self.observer.connect("internal_error")
            failed = {"error": "internal_error", "detail": "the server could not connect you"}
            raise socketio.exceptions.ConnectionRefusedError(failed["error"], failed) from None

    async def _join(self, sid: str, token: str, *, takeover: bool = False) -> Conn:
        claims = verify_link_token(self.config.secret, token, self.rooms.clock())
        if claims.via is not None and self.check_via is not None:
            await self.check_via(claims.attendee, claims.via)
        credential = secrets.token_urlsafe(24)
        endpoint = new_endpoint_id()

        def change(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
            nonlocal endpoint
            check_not_revoked(state, claims)
            if not takeover:
                refuse_second_window(state, claims.attendee)
            elif moved := take_over(state, ctx, claims.attendee, sid, _digest(credential)):
                endpoint, events = moved
                return events
            return membership.join(state, ctx, endpoint, claims.attendee, sid, _digest(credential))

        try:
            state, events, before = await self._apply(claims.session, change)
        except StoreUnavailable:
            await self._refused_unheld(claims.session, endpoint, sid)  # as the change last ran
            raise
        moved = endpoint in before.connections
        old = before.connections.get(endpoint)
        if old and old != sid:  # taken over: the other window hears where the call went
            await self._send("bye", p.Bye(reason="replaced").model_dump(), old)
            await self._drop(old)
        conn = self._register(sid, state, endpoint, credential, resumed=moved)
        conn.log.info("joined", attendee=claims.attendee, role=str(claims.role), takeover=moved)
        await self._greet(conn, state, events, before)
        self.rooms.release(state)
        return conn

    async def _resume(self, sid: str, credential: str) -> Conn:
        session, endpoint, secret = _parse_resume(credential)
        fresh = secrets.token_urlsafe(24)
        proof = (_digest(secret), _digest(fresh))
        change = partial(
            reconnect.resume,
            endpoint=endpoint,
            grace=self.config.grace,
            connection=sid,
            proof=proof,
        )
        if self.hangups.kept:  # the drop before this resume is recorded first, as one
            await self.hangups.flush()
        try:
            state, events, before = await self._apply(session, change)
        except StoreUnavailable:
            await self._refused_unheld(session, endpoint, sid)
            raise
        old = before.connections.get(endpoint)
        if old and old != sid:
            await self._send("bye", p.Bye(reason="replaced").model_dump(), old)
            await self._drop(old)
        conn = self._register(sid, state, endpoint, fresh, resumed=True)
        conn.log.info("resumed")
        await self._greet(conn, state, events, before)
        self.rooms.release(state)
        return conn

    async def _refused_unheld(self, session: SessionId, endpoint: EndpointId, sid: str) -> None:
        """A connection is refused because the store failed; the change may still have
        committed with its reply lost, leaving ``endpoint`` connected through ``sid``, which
        nobody holds. Closed as a hang-up, now: had the change not committed, that hang-up
        names a connection the endpoint never had and records nothing."""
        await self.hangups.record(Hangup(session, endpoint, sid, self.rooms.clock()))

    def _register(
        self, sid: str, state: SessionState, endpoint: EndpointId, credential: str, *, resumed: bool
    ) -> Conn:
        seats = list(state.endpoints[endpoint].seats)
        spec = state.spec
        # The wire object of p.Welcome (its definition; tests validate what clients get).
        welcome = {
            "v": p.PROTOCOL_VERSION,
            "session": spec.id,
            "kind": str(spec.kind),
            "endpoint": endpoint,
            "attendees": [str(a) for a in seats],
            "role": str(spec.role_of(seats[0])),
            "resume": f"{spec.id}.{endpoint}.{credential}",
            "resumed": resumed,
            "ice_servers": ice_servers(
                self.config.ice_servers,
                self.config.turn,
                IceRequest(spec.id, str(seats[0]), spec.ends_at, self.rooms.clock()),
            ),
            "target": negotiation_target(spec.kind, self.group.forwarder is not None),
        }
        if spec.role_of(seats[0]) in HOST_ROLES:
            welcome["roster"] = [{"attendee": e.attendee, "role": str(e.role)} for e in spec.roster]
        bound = log.bind(session=spec.id, endpoint=endpoint, node=self.rooms.node)
        conn = Conn(sid, spec.id, endpoint, seats, welcome, bound)
        self.local[sid] = conn
        return conn

    async def _greet(
        self, conn: Conn, state: SessionState, events: list[LedgerEvent], before: Before
    ) -> None:
        """Push ``welcome`` and the first ``room`` view to a connection being accepted, then
        the change its arrival made to everyone else. The first two reach the client before
        socket.io's connect acknowledgement (clients buffer events until then), so a page needs
        no ``hello`` round trip to start."""
        views = self._views.of(state)
        welcome = [("welcome", conn.welcome), ("room", views[conn.endpoint])]
        await send_local_events(self.sio, conn.sid, welcome)
        await self._publish(state, events, before, skip=conn.endpoint, views=views)

    async def _disconnect(self, sid: str, *_: Any) -> None:
        conn = self.local.pop(sid, None)
        if conn is not None:
            await self.group.disconnected(conn)
        if conn is None or conn.gone:
            return
        await self.hangups.record(Hangup(conn.session, conn.endpoint, sid, self.rooms.clock()))

    async def _write_hangup(self, hangup: Hangup) -> None:
        state, events, before = await self._apply(hangup.session, hangup.change())
        log.info(
            "disconnected", session=hangup.session, endpoint=hangup.endpoint, node=self.rooms.node
        )
        await self._publish(state, events, before)
        self.rooms.release(state)

    # --- events -------------------------------------------------------------------------

    async def _dispatch(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        answer = await self._answer(event, sid, args)
        self.observer.event(known(event), answer.get("error"))
        return answer

    async def _answer(self, event: str, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        conn = self.local.get(sid)
        if conn is None or conn.gone:
            return NotAuthenticated("connect with a link first").to_wire()
        try:
            msg = decode(event, args)
            return await self._handle(conn, event, msg)
        except HomeroomError as exc:
            conn.log.info("refused", what=known(event), code=exc.code)
            return exc.to_wire()
        except Exception:
            # A bug must not hang the client or kill the connection: answer, and log it.
            conn.log.exception("event_failed", what=known(event))
            return {"error": "internal_error", "detail": "the server could not handle that"}

    async def _handle(self, conn: Conn, event: str, msg: p.Message) -> dict[str, Any]:
        if event == "hello":
            state = await self.rooms.get_session(conn.session)
            view = room_view(state, conn.endpoint)
            return p.ok(welcome=conn.welcome, room=view)
        if event == "signal":
            assert isinstance(msg, p.Signal)
            await self._relay(conn, msg)  # in order: a connection's events run one at a time
            return p.ok()
        if event in GROUP_EVENTS:
            return await self.group.handle(conn, event, msg)
        if event == "attach":
            assert isinstance(msg, p.Attach)
            change = self._attach_change(conn, msg)
        elif event == "leave":
            change = partial(membership.leave, endpoint=conn.endpoint)
            conn.gone = True
        else:
            change = CHANGES[event](conn, msg)
        try:
            state, events, before = await self._apply(conn.session, change)
        except HomeroomError:
            conn.gone = False  # a refused leave leaves the endpoint as it was
            raise
        # Attach and detach change who is on this device.
        conn.attendees[:] = _seats(state, conn.endpoint) or conn.attendees
        conn.log.info("control", what=event, events=len(events))
        await self._publish(state, events, before, caller=conn.sid)
        if event == "leave":
            self._drop_soon(conn.sid)
        version = state.version
        self.rooms.release(state)
        return p.ok(version=version)

    def _attach_change(self, conn: Conn, msg: p.Attach) -> Change:
        claims = verify_link_token(self.config.secret, msg.token, self.rooms.clock())
        if claims.session != conn.session:
            raise WrongSession("that link belongs to a different session")

        def change(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
            check_not_revoked(state, claims)
            return membership.attach(state, ctx, conn.endpoint, claims.attendee)

        return change

    async def _relay(self, conn: Conn, msg: p.Signal) -> None:
        state = await self.rooms.get_session(conn.session)
        admitted = admitted_endpoints(state)
        if conn.endpoint not in admitted or msg.to not in admitted or msg.to == conn.endpoint:
            raise NotAuthorized("media is exchanged between admitted endpoints of the call only")
        receiver = state.endpoints[EndpointId(msg.to)].connection
        if receiver is not None and self.sio.buffered(receiver) > RELAY_BUFFERED:
            # The receiver is not keeping up: the sender waits, the receiver stays connected.
            raise RateLimited("the other endpoint is busy: send again shortly")
        relay = p.SignalRelay(
            sender=conn.endpoint, description=msg.description, candidate=msg.candidate
        )
        data = relay.model_dump(by_alias=True, exclude_none=True)
        await self._send("signal", data, receiver)

    # --- pushing state ------------------------------------------------------------------

    async def _apply(
        self, session: SessionId, change: Change
    ) -> tuple[SessionState, list[LedgerEvent], Before]:
        """Run a change, noting what each endpoint saw and where it was connected before it.
        Callers give the state back (``Rooms.release``) once they have pushed the change."""
        before = Before(self._views)

        def noting(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
            before.note(state)
            return change(state, ctx)

        state, events = await self.rooms.apply(session, noting)
        return state, events, before

    async def _publish(
        self,
        state: SessionState,
        events: list[LedgerEvent],
        before: Before,
        skip: EndpointId | None = None,
        caller: str | None = None,
        views: dict[EndpointId, View] | None = None,
    ) -> None:
        """Send each endpoint its view if the change altered it, and a ``bye`` to those the
        change closed (``views``: the views of ``state``, when the caller has them already).
        One message at a time: a burst of publishes would exhaust the pool."""
        if views is None:
            views = self._views.of(state)
        for endpoint in state.endpoints.values():
            if endpoint.id == skip or not endpoint.connected:
                continue
            view = views[endpoint.id]
            if before.saw(endpoint.id, view):
                continue
            await self._send(*before.message(endpoint.id, view), endpoint.connection)
        for endpoint_id, reason in closed_by(state, events).items():
            connection = before.connections.get(endpoint_id)
            await self._send("bye", p.Bye(reason=reason).model_dump(), connection)
            if connection and connection == caller:
                self._drop_soon(connection)  # after its ack has gone out
            elif connection:
                await self._drop(connection)
        await self.group.after_change(state, events)

    async def _send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        """Deliver to one connection: directly when it is ours, else through the other nodes."""
        if sid is None:
            return
        if sid in self.local:
            await send_local(self.sio, sid, event, data)
        else:
            await self.sio.emit(event, data, to=sid)

    async def publish_change(
        self,
        state: SessionState,
        events: list[LedgerEvent],
        connections: dict[EndpointId, str | None] | None = None,
    ) -> None:
        """Push a change made elsewhere (the reaper, a withdrawn program link) to the
        session's endpoints; ``connections``: those of the endpoints it closed, to close."""
        before = Before(self._views)
        before.connections = dict(connections or {})
        await self._publish(state, events, before)

    async def resync(self) -> None:
        """Bring every connection of this node up to the store: after the fan-out lost Redis
        (``BoundedRedisManager.on_resubscribed``), what other nodes pushed meanwhile never
        arrived. Each gets its current view (views carry versions, so one a client has already
        is ignored); one whose endpoint the store no longer gives it gets the bye it missed,
        and is closed."""
        conns = [c for c in self.local.values() if not c.gone]  # each committed before the read
        for session in {c.session for c in conns}:
            try:
                state = await self.rooms.get_session(session)
                views = self._views.of(state)
                for conn in (c for c in conns if c.session == session):
                    endpoint = state.endpoints.get(conn.endpoint)
                    if endpoint is not None and endpoint.connection == conn.sid:
                        await send_local(self.sio, conn.sid, "room", views[conn.endpoint])
                    else:
                        await self._close_missed(state, conn, moved=endpoint is not None)
            except HomeroomError as exc:  # ended and expired, or the store is away again
                log.info("resync_skipped", session=session, code=exc.code, node=self.rooms.node)
        log.info("resynced", connections=len(conns), node=self.rooms.node)

    async def _close_missed(self, state: SessionState, conn: Conn, *, moved: bool) -> None:
        """Close ``conn``, whose endpoint another node closed or moved while this node could
        not hear it, with the bye the ledger says it was due (none when it names no reason)."""
        if moved:
            reason: str | None = "replaced"
        else:
            mine = [e for e in await self.rooms.events(conn.session) if e.endpoint == conn.endpoint]
            reason = closed_by(state, mine[-len(conn.attendees) :]).get(conn.endpoint)
        if reason is not None:
            await send_local(self.sio, conn.sid, "bye", p.Bye(reason=reason).model_dump())
        conn.log.info("closed_on_resync", reason=reason)
        await self._drop(conn.sid)

    async def _drop(self, sid: str) -> None:
        """Close a connection whose endpoint is finished (on whichever node holds it)."""
        local = self.local.get(sid)
        if local is not None:
            local.gone = True
        await self.sio.disconnect(sid)

    def _drop_soon(self, sid: str, delay: float = 1.0) -> None:
        """Let a caller hang up by itself after its ack; close it anyway if it does not."""
        local = self.local.get(sid)
        if local is not None:
            local.gone = True

        def later() -> None:
            # Almost always already gone (the client hung up): then nothing is started.
            if sid in self.local:  # not gone: no need to tell the other nodes
                task = asyncio.ensure_future(self.sio.disconnect(sid))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

        asyncio.get_running_loop().call_later(delay, later)


def _seats(state: SessionState, endpoint: EndpointId) -> list[AttendeeId]:
    found = state.endpoints.get(endpoint)
    return list(found.seats) if found else []


def _parse_resume(credential: str) -> tuple[SessionId, EndpointId, str]:
    parts = credential.split(".")
    if len(parts) != 3 or not all(parts) or not all(map(is_valid_id, parts[:2])):
        raise TokenInvalid("this resume credential is not valid")
    return SessionId(parts[0]), EndpointId(parts[1]), parts[2]
