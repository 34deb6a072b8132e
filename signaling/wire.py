"""Socket.IO packets as this server writes them, delivery to this node's own connections, and
how a connection's websocket ends (:class:`QuietCloseWebSocket`).

Two costs of python-socketio's defaults that every event paid: each outgoing packet walked its
whole payload looking for binary attachments (Homeroom never sends binary: every payload is a
JSON object), and each ``emit`` to one connection ran in a task of its own that the caller
then waited for. Packets are encoded by pydantic-core's serializer (the same text as the
standard library's compact ``json.dumps``, at about a third of its cost). Incoming packets
are decoded exactly as before (including python-engineio's guard against huge integers).
"""

from __future__ import annotations

from typing import Any

import engineio.async_drivers.aiohttp
import engineio.json
import pydantic_core
import socketio
from socketio import packet


class _Json:
    """The JSON module the packets use: python-engineio's decoding, pydantic-core's encoding."""

    loads = staticmethod(engineio.json.loads)

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return compact_json(obj)


def compact_json(obj: Any) -> str:
    """``json.dumps(obj, separators=(",", ":"))``, faster; NaN and infinities (which JSON
    cannot hold, and no Homeroom message carries) become null."""
    return pydantic_core.to_json(obj, ensure_ascii=True, inf_nan_mode="null").decode()


class TextPacket(packet.Packet):  # type: ignore[misc]  # python-socketio is untyped
    """A Socket.IO packet that is never binary (``serializer=`` of the AsyncServer)."""

    uses_binary_events = False
    json = _Json


async def send_local(sio: socketio.AsyncServer, sid: str, event: str, data: Any) -> None:
    """Send ``event`` to a connection of this node, in order with its other packets (one
    Engine.IO queue per connection). A connection that is already gone is skipped."""
    eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
    if eio_sid is None:
        return
    frame = TextPacket(packet.EVENT, data=[event, data], namespace="/").encode()
    await sio.eio.send(eio_sid, frame)


class QuietCloseWebSocket(engineio.async_drivers.aiohttp.WebSocket):  # type: ignore[misc]
    """python-engineio's aiohttp websocket, except that a client hanging up ends the read
    loop with ``None`` (engineio's "connection closed by client") instead of an OSError.

    The exception was the costly part of every hang-up: stored in the read task, its
    traceback held the frames that held the task, so each closed connection (its request,
    transport, socket, websocket and engineio socket, about 70 objects) became cyclic garbage
    that only the cycle collector could free; with thousands of connections open its passes
    stalled the event loop for hundreds of milliseconds. Without the cycle, reference counting
    frees a connection as soon as it ends.
    """

    async def wait(self) -> str | bytes | None:
        message = await self._sock.receive()
        data = message.data
        return data if isinstance(data, str | bytes) else None


def quiet_close(sio: socketio.AsyncServer) -> None:
    """Make ``sio`` (aiohttp mode) read websockets through :class:`QuietCloseWebSocket`."""
    sio.eio._async = {**sio.eio._async, "websocket": QuietCloseWebSocket}
