"""Fan-out between nodes: python-socketio's Redis manager, with its publishes bounded and its
subscription back quickly after Redis was away.

Events for connections held by other nodes go through one Redis channel. python-socketio
publishes each on a connection of redis-py's default pool, which refuses a command beyond 100
connections in use; the manager then logs an error, builds a new client (leaving the old one
open) and tries once more. A burst (mute all in a group spread over nodes, many relayed ICE
candidates at once) would hit that. Here at most ``PUBLISHERS`` publishes are in flight per
node and the rest wait their turn, so the pool is never exhausted and no client is replaced.

Redis pub/sub keeps nothing for a subscriber that is away. python-socketio's listener waits
1 s after losing Redis and doubles the wait up to a minute, so after an outage of 20 s it
was still asleep for about 10 s more while other nodes published into the void: a patient
admitted by a clinician on another node stayed in the waiting room on screen. Here the
listener (``_listen``, the hook python-socketio's pub/sub managers implement) tries again
after :data:`LISTEN_RETRY` s, doubling to :data:`LISTEN_RETRY_MAX`, and each time it
subscribes again it calls ``on_resubscribed`` so the server can send its connections what they
may have missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import socketio
import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = structlog.get_logger("homeroom.fanout")

#: Publishes in flight per node at most (well below redis-py's default pool of 100).
PUBLISHERS = 32
#: Seconds the listener waits before subscribing again after losing Redis, doubling up to
#: LISTEN_RETRY_MAX while Redis stays away.
LISTEN_RETRY = 0.25
LISTEN_RETRY_MAX = 2.0


class BoundedRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]  # untyped
    """``AsyncRedisManager`` whose publishes queue beyond :data:`PUBLISHERS` at a time and
    whose listener comes back within :data:`LISTEN_RETRY_MAX` of Redis."""

    def __init__(self, url: str, *, channel: str, publishers: int = PUBLISHERS) -> None:
        super().__init__(url, channel=channel)
        self._publishing = asyncio.Semaphore(publishers)
        #: Called (in a task of its own) each time the listener subscribes again after losing
        #: Redis: messages published meanwhile are lost to this node.
        self.on_resubscribed: Callable[[], Awaitable[None]] | None = None
        self._resyncs: set[asyncio.Task[None]] = set()

    async def _publish(self, data: Any) -> Any:
        # The hook python-socketio's pub/sub managers implement to send one message.
        async with self._publishing:
            return await super()._publish(data)

    async def _listen(self) -> AsyncIterator[bytes]:
        """The channel's messages, for as long as the node runs, through any Redis outage."""
        channel = self.channel.encode("utf-8")
        delay, lost = LISTEN_RETRY, False
        while True:
            # No retries inside redis-py: it would resubscribe silently, and what was
            # published meanwhile would be lost without anyone knowing.
            client = Redis.from_url(self.redis_url, retry=Retry(NoBackoff(), 0))
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if lost:
                    log.info("fanout_resubscribed")
                    self._resubscribed()
                delay, lost = LISTEN_RETRY, False
                async for message in pubsub.listen():
                    if message["channel"] == channel and message["type"] == "message":
                        yield message["data"]
            except (RedisError, OSError):
                log.warning("fanout_listen_failed", retry=delay)
                lost = True
            finally:
                await pubsub.aclose()
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, LISTEN_RETRY_MAX)

    def _resubscribed(self) -> None:
        if self.on_resubscribed is None:
            return
        task = asyncio.ensure_future(self.on_resubscribed())
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)
