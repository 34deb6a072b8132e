"""Fan-out between nodes: python-socketio's Redis manager, with its publishes bounded.

Events for connections held by other nodes go through one Redis channel. python-socketio
publishes each on a connection of redis-py's default pool, which refuses a command beyond 100
connections in use; the manager then logs an error, builds a new client (leaving the old one
open) and tries once more. A burst (mute all in a group spread over nodes, many relayed ICE
candidates at once) would hit that. Here at most ``PUBLISHERS`` publishes are in flight per
node and the rest wait their turn, so the pool is never exhausted and no client is replaced.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

#: Publishes in flight per node at most (well below redis-py's default pool of 100).
PUBLISHERS = 32


class BoundedRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]  # untyped
    """``AsyncRedisManager`` whose publishes queue beyond :data:`PUBLISHERS` at a time."""

    def __init__(self, url: str, *, channel: str, publishers: int = PUBLISHERS) -> None:
        super().__init__(url, channel=channel)
        self._publishing = asyncio.Semaphore(publishers)

    async def _publish(self, data: Any) -> Any:
        # The hook python-socketio's pub/sub managers implement to send one message.
        async with self._publishing:
            return await super()._publish(data)
