"""The websocket under each connection: python-engineio's aiohttp driver, with two changes.

- **A hang-up ends the read loop quietly.** engineio's driver raises an OSError when the client
  closes; stored in the read task, its traceback held the frames that held the task, so every
  closed connection (its request, transport, socket, websocket and engineio socket, about 70
  objects) became cyclic garbage that only the cycle collector could free. With thousands of
  connections open, its passes stalled the event loop for hundreds of milliseconds. Returning
  ``None`` (engineio's own "closed by client") leaves no cycle: reference counting frees a
  connection as soon as it ends.
- **What one turn of the event loop sends leaves in one write.** A change usually sends a
  connection several packets at once (a newcomer gets its welcome, its first view and the
  connection acknowledgement; a clinician who admits gets a view and the acknowledgement):
  aiohttp wrote each frame with a system call of its own, and a phone received each in a
  packet of its own. :class:`CorkedTransport` joins the frames written during one turn and
  writes them at the start of the next; a close frame goes out at once, with whatever is
  waiting before it, since the transport may be closed right after it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import engineio.async_drivers.aiohttp
import socketio

#: The low four bits of a websocket frame's first byte: its opcode. 0x8 closes.
_OPCODE, _CLOSE = 0x0F, 0x8
#: Bytes held before writing without waiting for the end of the turn.
_MAX_HELD = 64 * 1024


class CorkedTransport:
    """Stands for a connection's transport in its websocket writer: writes made during one
    turn of the event loop reach the real transport as one write, in order."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        chunk = bytes(data)
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(chunk)
        self._size += len(chunk)
        # A frame written whole starts with its header; a payload written after its header
        # may look like a close frame too, which only costs an early write.
        if (chunk and chunk[0] & _OPCODE == _CLOSE) or self._size >= _MAX_HELD:
            self.flush()

    def flush(self) -> None:
        if not self._held:
            return
        held, self._held, self._size = self._held, [], 0
        if not self._transport.is_closing():
            self._transport.write(b"".join(held))

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class ServerWebSocket(engineio.async_drivers.aiohttp.WebSocket):  # type: ignore[misc]
    """engineio's aiohttp websocket that ends quietly and corks its writes (module doc)."""

    _corked = False

    async def wait(self) -> str | bytes | None:
        message = await self._sock.receive()
        data = message.data
        return data if isinstance(data, str | bytes) else None

    async def send(self, message: str | bytes) -> None:
        if not self._corked:
            self._cork()
        await super().send(message)

    def _cork(self) -> None:
        self._corked = True
        writer = self._sock._writer
        if writer is not None and not isinstance(writer.transport, CorkedTransport):
            writer.transport = CorkedTransport(writer.transport, asyncio.get_running_loop())


def use_server_websocket(sio: socketio.AsyncServer) -> None:
    """Make ``sio`` (aiohttp mode) serve its websockets through :class:`ServerWebSocket`."""
    sio.eio._async = {**sio.eio._async, "websocket": ServerWebSocket}
