"""Session stores: the truth for room state. Redis in deployment, embedded for a single node."""

from __future__ import annotations

from rooms.store.base import Mutation, SessionStore
from rooms.store.memory import MemoryStore

__all__ = ["MemoryStore", "Mutation", "SessionStore", "open_store"]


def open_store(
    redis_url: str | None, *, prefix: str = "hr", ended_ttl_seconds: int = 7 * 86400
) -> SessionStore:
    """The Redis store for ``redis_url``, or the embedded store when it is None.

    Connecting is lazy: call ``ping()`` to find out whether Redis is reachable.
    """
    if redis_url is None:
        return MemoryStore(ended_ttl_seconds=ended_ttl_seconds)
    # Imported here so the embedded default never needs the Redis client loaded.
    from rooms.store.redis import RedisStore

    return RedisStore.from_url(redis_url, prefix=prefix, ended_ttl_seconds=ended_ttl_seconds)
