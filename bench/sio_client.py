"""A lean socket.io client: raw Engine.IO v4 / Socket.IO v5 text packets over aiohttp websockets.

The load generator holds thousands of these in one process, so it speaks the wire format
directly instead of running python-socketio's client (an event loop task, a packet object and
an Engine.IO state machine per connection). Only what a benchmark needs: connect with
``auth``, events with acks, pushed events, and answering the server's pings.

Packets (one per websocket text frame): ``0{...}`` Engine.IO open, ``2``/``3`` ping/pong,
``40{auth}`` connect, ``40{"sid":...}`` accepted, ``44{...}`` refused, ``42["ev",{...}]`` an
event, ``42<id>["ev",{...}]`` an event wanting an ack, ``43<id>[{...}]`` the ack.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from signaling.deltas import apply_delta

View = dict[str, Any]
Predicate = Callable[[View], bool]


class Refused(Exception):
    """The server refused the connection (socket.io ``44``) or closed it unexpectedly."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


class Endpoint:
    """One socket.io connection. Keeps the newest ``room`` view pushed to it (by version)."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, timeout: float = 10.0) -> None:
        self._http = http
        self._url = base_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self._timeout = timeout
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected: asyncio.Future[Any] | None = None
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count()
        self._waiters: list[tuple[Predicate, asyncio.Future[View]]] = []
        self.view: View | None = None
        #: The ``welcome`` the server pushes as it accepts the connection (Homeroom).
        self.welcome: dict[str, Any] | None = None
        self.events = 0
        #: Bytes of every text frame received (the views' cost to a client).
        self.received = 0
        self._refetches: set[asyncio.Future[None]] = set()

    async def connect(self, auth: dict[str, Any]) -> Any:
        """Open the websocket and connect to the default namespace; returns the ``40`` body."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._timeout):
            self._ws = ws = await self._http.ws_connect(self._url, autoping=True, max_msg_size=0)
            opening = await ws.receive()
            if opening.type is not aiohttp.WSMsgType.TEXT or not opening.data.startswith("0"):
                raise Refused(f"expected an Engine.IO open packet, got {opening.data!r}")
            self._connected = loop.create_future()
            self._reader = asyncio.create_task(self._read(ws))
            await ws.send_str("40" + json.dumps(auth, separators=(",", ":")))
            return await self._connected

    async def call(self, event: str, data: Any = None) -> Any:
        """Send ``event`` with an ack id and return the server's answer."""
        assert self._ws is not None, "connect first"
        ack = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack] = future
        payload = json.dumps([event, {} if data is None else data], separators=(",", ":"))
        await self._ws.send_str(f"42{ack}{payload}")
        async with asyncio.timeout(self._timeout):
            return await future

    async def until_view(self, predicate: Predicate) -> View:
        """The newest ``room`` view once ``predicate`` holds for it."""
        if self.view is not None and predicate(self.view):
            return self.view
        future: asyncio.Future[View] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        async with asyncio.timeout(self._timeout):
            return await future

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.received += len(msg.data)
                    if msg.data == "2":
                        await ws.send_str("3")
                    elif msg.data.startswith("4"):
                        self._on_packet(msg.data)
        finally:
            self._fail_pending(Refused("connection closed"))

    def _on_packet(self, text: str) -> None:
        kind = text[1:2]
        if kind == "2":
            self.events += 1
            name, *args = json.loads(text[_digits_end(text, 2) :])
            if name == "room" and args:
                self.see(args[0])
            elif name == "room_delta" and args:
                self._on_delta(args[0])
            elif name == "welcome" and args:
                self.welcome = args[0]
        elif kind == "3":
            end = _digits_end(text, 2)
            future = self._acks.pop(int(text[2:end]), None)
            if future is not None and not future.done():
                answer = json.loads(text[end:])
                future.set_result(answer[0] if answer else None)
        elif kind in ("0", "4") and self._connected is not None and not self._connected.done():
            body = json.loads(text[2:]) if len(text) > 2 else None
            if kind == "0":
                self._connected.set_result(body)
            else:
                self._connected.set_exception(Refused(body))

    def _on_delta(self, delta: View) -> None:
        """A change to the view held (docs/protocol.md); the whole view when it does not fit."""
        if self.view is not None and delta["version"] <= self.view.get("version", 0):
            return
        view = apply_delta(self.view, delta) if self.view is not None else None
        if view is not None:
            self.see(view)
            return

        async def whole() -> None:
            answer = await self.call("hello")
            if isinstance(answer, dict) and "room" in answer:
                self.see(answer["room"])

        task = asyncio.ensure_future(whole())
        self._refetches.add(task)
        task.add_done_callback(self._refetches.discard)

    def see(self, view: View) -> None:
        """Take ``view`` as the newest room view unless a newer one is already here."""
        if self.view is not None and view.get("version", 0) <= self.view.get("version", 0):
            return
        self.view = view
        waiting, self._waiters = self._waiters, []
        for predicate, future in waiting:
            if future.done():
                continue
            if predicate(view):
                future.set_result(view)
            else:
                self._waiters.append((predicate, future))

    def _fail_pending(self, error: Exception) -> None:
        futures = [*self._acks.values(), *(f for _, f in self._waiters)]
        if self._connected is not None:
            futures.append(self._connected)
        for future in futures:
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: nobody may be waiting any more
        self._acks.clear()
        self._waiters.clear()


def _digits_end(text: str, start: int) -> int:
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    return end
