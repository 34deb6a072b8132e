"""The compare-and-set script's own connections (rooms.store.script), against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from rooms.store.script import Script, pack
from tests.redis_server import RedisServer

#: Echoes its first argument after touching its key, so each reply says which call it answers.
ECHO = "redis.call('INCR', KEYS[1]) return ARGV[1]"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url, decode_responses=True)
    yield redis
    await redis.aclose()


def test_commands_are_packed_as_resp_arrays_of_bulk_strings() -> None:
    assert pack("EVALSHA", "ab", 1, "k", "é", b"\x00") == (
        b"*6\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$2\r\n\xc3\xa9\r\n$1\r\n\x00\r\n"
    )
    assert pack("EVALSHA", "") == b"*2\r\n$7\r\nEVALSHA\r\n$0\r\n\r\n"


async def test_calls_in_parallel_each_get_their_own_reply(client: Redis, redis_prefix: str) -> None:
    script = Script(client.connection_pool, ECHO)
    key = f"{redis_prefix}:n"
    try:
        replies = await asyncio.gather(*(script([key], [f"call-{i}"]) for i in range(50)))
        assert replies == [f"call-{i}" for i in range(50)]
        assert await client.get(key) == "50"
        # Connections are reused, not opened per call.
        for i in range(20):
            assert await script([key], [str(i)]) == str(i)
        assert len(script._open) <= 50
    finally:
        await script.close()
    assert not script._open


async def test_a_flushed_script_is_loaded_again(client: Redis, redis_prefix: str) -> None:
    script = Script(client.connection_pool, ECHO)
    key = f"{redis_prefix}:n"
    try:
        assert await script([key], ["first"]) == "first"
        await client.script_flush()
        assert await script([key], ["again"]) == "again"
        assert await client.get(key) == "2"
    finally:
        await script.close()


async def test_a_call_cancelled_midway_never_lends_its_reply_to_the_next(
    client: Redis, redis_prefix: str
) -> None:
    """The store's timeout cancels a call whose reply is late: that reply must not answer the
    next call on the same connection."""
    script = Script(client.connection_pool, ECHO)
    key = f"{redis_prefix}:n"
    try:
        assert await script([key], ["warm"]) == "warm"  # one idle connection now
        await client.execute_command("CLIENT", "PAUSE", "300", "ALL")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await script([key], ["late"])  # sent, its reply held back by the pause
        assert await script([key], ["next"]) == "next"
    finally:
        await client.execute_command("CLIENT", "UNPAUSE")
        await script.close()


async def test_a_restarted_redis_is_reconnected_to(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    script = Script(redis.connection_pool, ECHO)
    key = f"{redis_prefix}:n"
    try:
        assert await script([key], ["before"]) == "before"
        redis_server.stop()
        redis_server.start()
        # The idle connection is dead and the restarted server has no scripts.
        assert await script([key], ["after"]) == "after"
    finally:
        await script.close()
        await redis.aclose()
