"""One Lua script, called over connections of its own: the store's hot path.

Every membership change of every session is one EVALSHA of the compare-and-set script
(``cas.lua``). Through redis-py's client each call also took a pooled connection (a pool lock,
and a zero-timeout read to check the connection was clean), went through the retry, event
and observability layers, and packed its arguments one by one: about as much CPU in this
process as the call itself. Here the script's calls use redis-py's connections directly:
connected, authenticated and parsed as before, but checked out from a plain free list and
written as one pre-packed command. The EVALSHA's client CPU went from about 120 to 60 us, and
that of a pair of store commands (an HGET and this EVALSHA, timed in alternating rounds)
from 101 to 84 us each.

The behaviour around a call stays what the store documents: a connection that fails is
dropped and the command sent again on a new one, a few times with a short backoff (the
store's write tokens recognise a command whose first reply was lost); a connection whose
call is cancelled midway is dropped, never reused with a reply still unread; a Redis that
lost its scripts (a restart) gets the script loaded again.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Sequence
from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Sends of one call after the first, when its connection fails (as the store's client).
RETRIES = 2
_BROKEN = (RedisConnectionError, RedisTimeoutError, OSError)


def pack(*args: str | bytes | int) -> bytes:
    """A command in RESP: an array of bulk strings (text as UTF-8)."""
    parts = [arg if type(arg) is bytes else str(arg).encode() for arg in args]
    return b"*%d\r\n" % len(parts) + b"".join([b"$%d\r\n%s\r\n" % (len(p), p) for p in parts])


class Script:
    """``await script(keys, args)``: EVALSHA of ``source`` with connections from ``pool``'s
    settings (host, database, password, decoding), at most one call on each at a time."""

    def __init__(self, pool: ConnectionPool, source: str) -> None:
        self._pool = pool
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()
        self._idle: list[AbstractConnection] = []
        self._open: set[AbstractConnection] = set()

    async def __call__(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        command = pack("EVALSHA", self._sha, len(keys), *keys, *args)
        failures = 0
        loaded = False
        while True:
            conn = self._checkout()
            try:
                await conn.send_packed_command(command, check_health=False)
                reply = await conn.read_response()
            except NoScriptError:
                self._idle.append(conn)  # a clean error reply: the connection is fine
                if loaded:
                    raise
                await self._load()
                loaded = True
                continue
            except _BROKEN:
                await self._drop(conn)
                failures += 1
                if failures > RETRIES:
                    raise
                await asyncio.sleep(random.uniform(0, 0.05 * 2**failures))
                continue
            except BaseException:
                # Cancelled midway (the store's timeout): a reply may still be on its way.
                await self._drop(conn)
                raise
            self._idle.append(conn)
            return reply

    async def close(self) -> None:
        for conn in list(self._open):
            await self._drop(conn)
        self._idle.clear()

    def _checkout(self) -> AbstractConnection:
        """An idle connection, or a new one (it connects on its first send)."""
        if self._idle:
            return self._idle.pop()
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        self._open.add(conn)
        return conn

    async def _drop(self, conn: AbstractConnection) -> None:
        self._open.discard(conn)
        await conn.disconnect(nowait=True)

    async def _load(self) -> None:
        conn = self._checkout()
        try:
            await conn.send_packed_command(pack("SCRIPT", "LOAD", self._source))
            await conn.read_response()
        except BaseException:
            await self._drop(conn)
            raise
        self._idle.append(conn)
