"""Socket.IO packets as this server writes them, and delivery to this node's own connections.

Two costs of python-socketio's defaults that every event paid: each outgoing packet walked its
whole payload looking for binary attachments (Homeroom never sends binary: every payload is a
JSON object), and each ``emit`` to one connection ran in a task of its own that the caller
then waited for. Incoming packets are decoded exactly as before (including python-engineio's
guard against huge integers).
"""

from __future__ import annotations

import json
from typing import Any

import engineio.json
import socketio
from socketio import packet

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class _Json:
    """The JSON module the packets use: python-engineio's decoding, a reused compact encoder."""

    loads = staticmethod(engineio.json.loads)

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return _compact.encode(obj)


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
