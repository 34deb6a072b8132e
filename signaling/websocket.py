"""The websocket under each connection: Engine.IO packets in and out without tasks or timers.

python-engineio's websocket loop spends two tasks and two timers on every packet: each read
runs in a task of its own under ``asyncio.wait_for`` (the idle timeout), and each write goes
through a queue that a writer task polls, again under ``wait_for``. Signaling is many small
packets, so that machinery cost more than the packets. Here a connection is served by one
loop in the request's own task:

- **reading**: ``receive`` directly, under one ``asyncio.timeout`` pushed forward as packets
  come (a silent client is dropped within ``ping_interval + ping_timeout``, as before), each
  packet handed to engineio's socket here, or, when it carries a socket.io packet, straight
  to engineio's ``message`` handler as the socket would (with python-socketio's
  ``async_handlers`` off, as the signaling server runs it, each event's handler runs here
  too, one after another);
- **writing**: the socket's queue is replaced by an :class:`Outbox` that frames each packet
  and writes it to the transport at once, in order. A client that stops reading is cut off
  once :data:`MAX_BUFFERED` bytes wait for it, instead of holding up whoever sends to it.

Packets are handled by python-engineio's socket as before (``receive``: pings, messages,
close), and the connection ends through its ``close`` as before. Frames are never compressed
(the server does not offer permessage-deflate): signaling packets are small, and each would
cost a pass through zlib on both ends to save a few hundred bytes.

A client that hangs up ends the loop quietly: no exception is left in a task whose traceback
would hold the connection (request, transport, websocket, engineio socket) in a reference
cycle until the cycle collector ran.
"""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Any

import engineio.async_drivers.aiohttp
import socketio
import structlog
from aiohttp import WSMsgType, web
from engineio import exceptions, packet

log = structlog.get_logger("homeroom.signaling")

#: The Engine.IO packet types, as the one ASCII digit that starts a text packet.
_PACKET_TYPES = frozenset("0123456")


class MalformedPacket(Exception):
    """A packet no Engine.IO / socket.io client sends: the connection is closed with one
    warning line. ``reason`` says what was wrong, never what was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: Measurement switch (bench/overrides.py): python-engineio's own websocket loop.
STOCK_WEBSOCKET = "websocket" in os.environ.get("HOMEROOM_STOCK_PATHS", "").split(",")

#: Bytes that may wait in a connection's send buffer before the client counts as gone.
MAX_BUFFERED = 1 << 20

#: The type prefix of an Engine.IO MESSAGE packet (what carries every socket.io packet).
MESSAGE = str(packet.MESSAGE)
_TEXT, _BINARY = 0x81, 0x82  # FIN + opcode (RFC 6455 section 5.2); servers never mask
_LEN16, _LEN64 = struct.Struct("!BBH"), struct.Struct("!BBQ")


def frame(payload: bytes, first: int = _TEXT) -> bytes:
    """One unmasked websocket frame carrying ``payload`` whole."""
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 1 << 16:
        return _LEN16.pack(first, 126, n) + payload
    return _LEN64.pack(first, 127, n) + payload


class Outbox:
    """Stands in for an Engine.IO socket's packet queue once its websocket is open: a packet
    put is framed and written to the transport at once (see the module doc)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.closed = False

    @property
    def buffered(self) -> int:
        """Bytes written and not yet taken by the client."""
        return 0 if self.closed else self._transport.get_write_buffer_size()

    async def put(self, pkt: packet.Packet | None) -> None:
        self.put_nowait(pkt)

    def put_nowait(self, pkt: packet.Packet | None) -> None:
        if pkt is not None:  # None: engineio's "stop writing"; the loop ends by itself
            self.write(pkt.encode())

    def write(self, data: str | bytes) -> None:
        """Write one encoded Engine.IO packet (text, or binary) as one frame."""
        if isinstance(data, str):
            self._send(frame(data.encode()))
        else:
            self._send(frame(data, _BINARY))

    def write_texts(self, texts: list[str]) -> None:
        """Write encoded Engine.IO text packets, a frame each, in one write to the transport
        (one system call where each packet would take its own)."""
        self._send(b"".join([frame(text.encode()) for text in texts]))

    def _send(self, frames: bytes) -> None:
        if self.closed:
            return
        transport = self._transport
        if transport.is_closing():
            self.closed = True
            return
        transport.write(frames)
        if transport.get_write_buffer_size() > MAX_BUFFERED:
            log.info("slow_client_dropped", buffered=transport.get_write_buffer_size())
            self.closed = True
            transport.abort()

    async def join(self) -> None:
        """Everything put has been written (engineio waits for this when closing)."""

    def task_done(self) -> None:
        """Nothing to account for: packets are written when put."""


class ServerWebSocket(engineio.async_drivers.aiohttp.WebSocket):  # type: ignore[misc]
    """python-engineio's aiohttp websocket, served by the loop of the module doc."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        ws = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await ws.prepare(request)
        self._sock, self.environ = ws, environ
        # The engineio socket whose websocket handler this would have run.
        socket = self.handler.__self__
        if socket.connected or request.transport is None:
            # An upgrade from long-polling (Homeroom offers websockets only): engineio's loop.
            await self.handler(self)
        else:
            await _serve(socket, ws, request.transport)
        return ws


async def _serve(socket: Any, ws: web.WebSocketResponse, transport: asyncio.Transport) -> None:
    socket.connected = socket.upgraded = True
    outbox = Outbox(transport)
    pending, socket.queue = socket.queue, outbox
    while not pending.empty():  # the OPEN packet, queued before the upgrade
        outbox.put_nowait(pending.get_nowait())
    try:
        await _read(socket, ws)
    finally:
        # Also when the server is stopping (cancelled): the connection still ends as a
        # disconnect, as it would have under python-engineio's own loop.
        outbox.closed = True
        await ws.close()
        await socket.close(wait=False, abort=True, reason=socket.server.reason.TRANSPORT_CLOSE)


async def _read(socket: Any, ws: web.WebSocketResponse) -> None:
    """Hand each packet to the engineio socket until the client goes (module doc)."""
    limit = socket.server.ping_interval + socket.server.ping_timeout
    on_message = socket.server.handlers.get("message")
    loop = asyncio.get_running_loop()
    renewed = loop.time()
    try:
        async with asyncio.timeout(limit) as deadline:
            while True:
                message = await ws.receive()
                if message.type is not WSMsgType.TEXT and message.type is not WSMsgType.BINARY:
                    return  # closed by the client, or broken
                # Pushed forward once a quarter of the window has gone, not on every packet: a
                # client is dropped 3/4 to 4/4 of a ping cycle after its last packet, while a
                # live one answers every ping (half a cycle apart).
                now = loop.time()
                if now - renewed > limit / 4:
                    deadline.reschedule(now + limit)
                    renewed = now
                data = message.data
                try:
                    if type(data) is not str or data[:1] not in _PACKET_TYPES:
                        # Homeroom sends and takes text only; a type in other digits (int()
                        # reads any script's) or none at all is not Engine.IO.
                        raise MalformedPacket("not an Engine.IO text packet")
                    if data[:1] == MESSAGE and on_message is not None:
                        # A socket.io packet: to its handler (which checks it: wire.Server),
                        # without the packet object and the event machinery.
                        await on_message(socket.sid, data[1:])
                    else:
                        await socket.receive(packet.Packet(encoded_packet=data))
                except exceptions.SocketIsClosedError:
                    return
                except exceptions.UnknownPacketError:
                    continue
                except MalformedPacket as exc:
                    # The client's bytes are never logged: they may hold a token or a name.
                    log.warning("malformed_packet", reason=exc.reason)
                    return  # the connection ends as a disconnect (_serve's finally)
                except Exception:
                    log.exception("packet_failed")
    except TimeoutError:
        return  # silent for longer than a ping cycle: gone


def use_server_websocket(sio: socketio.AsyncServer) -> None:
    """Make ``sio`` (aiohttp mode) serve its websockets through :class:`ServerWebSocket`."""
    sio.eio._async = {**sio.eio._async, "websocket": ServerWebSocket}
