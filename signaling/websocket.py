"""The websocket under each connection: python-engineio's aiohttp driver, ending quietly.

engineio's driver raises an OSError when the client closes; stored in the read task, its
traceback held the frames that held the task, so every closed connection (its request,
transport, socket, websocket and engineio socket, about 70 objects) became cyclic garbage that
only the cycle collector could free. With thousands of connections open, its passes stalled
the event loop for hundreds of milliseconds. Returning ``None`` instead (engineio's own "closed
by client") leaves no cycle: reference counting frees a connection as soon as it ends.
"""

from __future__ import annotations

import engineio.async_drivers.aiohttp
import socketio


class ServerWebSocket(engineio.async_drivers.aiohttp.WebSocket):  # type: ignore[misc]
    """engineio's aiohttp websocket whose read loop ends with ``None`` when the client hangs
    up, not with an OSError (module doc)."""

    async def wait(self) -> str | bytes | None:
        message = await self._sock.receive()
        data = message.data
        return data if isinstance(data, str | bytes) else None


def use_server_websocket(sio: socketio.AsyncServer) -> None:
    """Make ``sio`` (aiohttp mode) serve its websockets through :class:`ServerWebSocket`."""
    sio.eio._async = {**sio.eio._async, "websocket": ServerWebSocket}
