"""A thin asyncio client of Janus's JSON API over one WebSocket (aiohttp).

Janus's API is small: a *session* (kept alive by Homeroom), *handles* attached to a plugin in
it, and *transactions*: each request carries an id its answer repeats. A synchronous plugin
request is answered ``success``; an asynchronous one (join, configure, start) is answered
``ack`` and later by an ``event`` with the same transaction. Everything else Janus sends is an
event for a handle (``sender``): plugin events, ``webrtcup``, ``media``, ``hangup``, ...

PyPI's asyncio Janus client (janus-client 0.9) owns an aiortc peer connection per plugin
handle; Homeroom relays other endpoints' JSEP instead, so this module speaks the API itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from media.janus.errors import JanusError, JanusUnavailable
from media.janus.messages import Candidate, Jsep, Reply

logger = structlog.get_logger("homeroom.janus")

#: Janus drops a session after 60 s without a request (config/janus/janus.jcfg).
KEEPALIVE_SECONDS = 20.0
REQUEST_TIMEOUT = 30.0
VIDEOROOM = "janus.plugin.videoroom"

EventListener = Callable[[Reply], None]


class _Pending:
    """A transaction waiting for its answer; ``through_ack`` waits past Janus's ``ack``."""

    def __init__(self, through_ack: bool) -> None:
        self.through_ack = through_ack
        self.future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()


class JanusConnection:
    """One WebSocket to one Janus; every request carries the API secret."""

    def __init__(self, url: str, api_secret: str) -> None:
        self.url = url
        self._secret = api_secret
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, _Pending] = {}
        self._handles: dict[int, JanusHandle] = {}
        self._closed = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed and not self._closed.is_set()

    async def connect(self, deadline: float = REQUEST_TIMEOUT) -> None:
        """Open the WebSocket (Janus's ``janus-protocol`` subprotocol) within ``deadline`` s."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=deadline))
        try:
            self._ws = await self._http.ws_connect(
                self.url, protocols=("janus-protocol",), max_msg_size=0
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            await self._http.close()
            raise JanusUnavailable(type(error).__name__) from None
        self._reader = asyncio.create_task(self._read(), name="janus-reader")

    async def close(self) -> None:
        """Close the WebSocket; Janus then drops this connection's sessions after its timeout."""
        self._closed.set()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._http is not None:
            await self._http.close()
        self._fail_pending("connection closed")

    async def wait_closed(self) -> None:
        """Return once the connection is gone (closed here or lost)."""
        await self._closed.wait()

    async def info(self) -> Reply:
        """Janus's ``server_info``: the health check."""
        return await self.request({"janus": "info"})

    async def create_session(self) -> JanusSession:
        reply = await self.request({"janus": "create"})
        assert reply.data is not None
        session = JanusSession(self, int(reply.data["id"]))
        session.start_keepalive()
        return session

    async def request(
        self, body: dict[str, Any], *, through_ack: bool = False, deadline: float = REQUEST_TIMEOUT
    ) -> Reply:
        """Send ``body`` as a new transaction; return its answer or raise :class:`JanusError`."""
        if not self.connected or self._ws is None:
            raise JanusUnavailable("not connected")
        transaction = secrets.token_hex(8)
        pending = _Pending(through_ack)
        self._pending[transaction] = pending
        message = {**body, "transaction": transaction, "apisecret": self._secret}
        try:
            await self._ws.send_str(json.dumps(message))
            reply = await asyncio.wait_for(pending.future, deadline)
        except TimeoutError:
            raise JanusUnavailable(f"no answer to {body['janus']} in {deadline} s") from None
        except (aiohttp.ClientError, ConnectionError) as error:
            raise JanusUnavailable(type(error).__name__) from None
        finally:
            self._pending.pop(transaction, None)
        reply.raise_for_error()
        return reply

    def _register(self, handle: JanusHandle) -> None:
        self._handles[handle.id] = handle

    def _forget(self, handle: JanusHandle) -> None:
        self._handles.pop(handle.id, None)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                self._dispatch(Reply.model_validate_json(message.data))
        except (aiohttp.ClientError, ConnectionError, ValueError) as error:
            logger.warning("janus_connection_lost", error=type(error).__name__)
        finally:
            self._closed.set()
            self._fail_pending("connection lost")

    def _dispatch(self, reply: Reply) -> None:
        pending = self._pending.get(reply.transaction or "")
        if pending is not None and not (reply.janus == "ack" and pending.through_ack):
            if not pending.future.done():
                pending.future.set_result(reply)
            return
        if reply.janus == "ack":
            return
        handle = self._handles.get(reply.sender or 0)
        if handle is not None:
            handle._deliver(reply)

    def _fail_pending(self, reason: str) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(JanusUnavailable(reason))
        self._pending.clear()
        # Once: a later close() of the lost connection must not tell them again.
        handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            handle._deliver(Reply(janus="detached", sender=handle.id))


class JanusSession:
    """A Janus session: handles live in it; a keepalive task keeps it from timing out."""

    def __init__(self, connection: JanusConnection, session_id: int) -> None:
        self.connection = connection
        self.id = session_id
        self._keepalive: asyncio.Task[None] | None = None

    def start_keepalive(self, period: float = KEEPALIVE_SECONDS) -> None:
        self._keepalive = asyncio.create_task(self._keep_alive(period), name="janus-keepalive")

    async def attach(self, plugin: str = VIDEOROOM) -> JanusHandle:
        reply = await self.request({"janus": "attach", "plugin": plugin})
        assert reply.data is not None
        handle = JanusHandle(self, int(reply.data["id"]))
        self.connection._register(handle)
        return handle

    async def request(self, body: dict[str, Any], *, through_ack: bool = False) -> Reply:
        return await self.connection.request(
            {**body, "session_id": self.id}, through_ack=through_ack
        )

    async def destroy(self) -> None:
        """Destroy the session (and every handle in it); quiet when Janus is gone."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        with contextlib.suppress(JanusError):
            await self.request({"janus": "destroy"})

    async def _keep_alive(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await self.request({"janus": "keepalive"})
            except JanusError:
                return


class JanusHandle:
    """A handle attached to a plugin: plugin messages, JSEP, trickle, and its events."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.id = handle_id
        self._listeners: list[EventListener] = []

    def on_event(self, listener: EventListener) -> None:
        """Call ``listener`` with every asynchronous message Janus sends for this handle."""
        self._listeners.append(listener)

    async def send(self, body: dict[str, Any], jsep: Jsep | None = None) -> Reply:
        """A synchronous plugin request (create, destroy, moderate, kick, list...)."""
        return await self._message(body, jsep, through_ack=False)

    async def send_async(self, body: dict[str, Any], jsep: Jsep | None = None) -> Reply:
        """An asynchronous plugin request (join, configure, start, update): waits past the ack
        for the plugin's event, which may carry Janus's JSEP."""
        return await self._message(body, jsep, through_ack=True)

    async def trickle(self, candidate: Candidate | None) -> None:
        """Trickle one candidate to Janus, or None for end-of-candidates."""
        payload: dict[str, Any] = (
            {"completed": True} if candidate is None else candidate.model_dump(exclude_none=True)
        )
        await self._request({"janus": "trickle", "candidate": payload})

    async def hangup(self) -> None:
        with contextlib.suppress(JanusError):
            await self._request({"janus": "hangup"})

    async def detach(self) -> None:
        """Detach (closes its peer connection); quiet when Janus or the handle is gone."""
        self.session.connection._forget(self)
        with contextlib.suppress(JanusError):
            await self._request({"janus": "detach"})

    async def _message(
        self, body: dict[str, Any], jsep: Jsep | None, *, through_ack: bool
    ) -> Reply:
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep.model_dump()
        return await self._request(request, through_ack=through_ack)

    async def _request(self, body: dict[str, Any], *, through_ack: bool = False) -> Reply:
        return await self.session.request({**body, "handle_id": self.id}, through_ack=through_ack)

    def _deliver(self, reply: Reply) -> None:
        for listener in list(self._listeners):
            listener(reply)
