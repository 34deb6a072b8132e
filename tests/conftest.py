"""Shared fixtures: a real Redis for the whole run, and fresh stores of both backends per test."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog
from redis.asyncio import Redis

from rooms.store import MemoryStore, SessionStore, base, open_store
from rooms.store.redis import RedisStore
from tests.redis_server import MISSING, RedisServer

#: Fixtures of real `homeroom serve` processes (``served``), of Chromium (``browsers``), of
#: network namespaces (``netns``) and of a real Janus inside one (``janus``).
pytest_plugins = ["tests.served", "tests.browser", "tests.netns", "tests.janus_server"]

BACKENDS = ["memory", "redis"]

# Servers started by tests (in-process apps and `homeroom serve` children) run no Janus child
# unless a test asks for one: group media tests run Janus inside a network namespace of their
# own (tests/janus_server.py), never on the machine's interfaces.
os.environ.setdefault("HOMEROOM_JANUS_EMBEDDED", "false")

# Every state given back to a store in the tests is checked against its document first.
base.CHECK_SPARES = True


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Tests that configure logging (``configure_logging``, the CLI in-process) change it
    globally: undo it afterwards, structlog and the root handler that routes stdlib records
    through it (pytest's own capture handlers stay)."""
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):
            root.removeHandler(handler)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server started for this test run (AOF on); tests may ``restart()`` it.

    Started even when REDIS_URL is set, but only for tests that ask for it (restarting a
    server someone else runs is not ours to do).
    """
    if shutil.which("redis-server") is None:
        pytest.fail(MISSING, pytrace=False)
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """REDIS_URL when set, else the URL of the ``redis_server`` started for this run."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test alone, so tests never see each other's keys."""
    return "hrt-" + secrets.token_hex(4)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[SessionStore]:
    """A fresh, empty store of each backend (ids ``memory`` and ``redis``), closed afterwards."""
    async for stores in _stores(request, request.param, redis_prefix, 1):
        yield stores[0]


@pytest.fixture
async def redis_store(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[RedisStore]:
    """A fresh Redis store alone, keys under ``redis_prefix``, for Redis-only guarantees."""
    async for stores in _stores(request, "redis", redis_prefix, 1):
        assert isinstance(stores[0], RedisStore)
        yield stores[0]


@pytest.fixture(params=BACKENDS)
async def store_pair(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[tuple[SessionStore, SessionStore]]:
    """Two clients of one store, as two nodes would hold them: independent connections and
    caches on the same Redis; for the embedded backend, the same object twice."""
    async for stores in _stores(request, request.param, redis_prefix, 2):
        yield stores[0], stores[1]


async def _stores(
    request: pytest.FixtureRequest, backend: str, prefix: str, count: int
) -> AsyncIterator[list[SessionStore]]:
    if backend == "memory":
        memory = MemoryStore()
        yield [memory] * count
        return
    url: str = request.getfixturevalue("redis_url")
    stores = [open_store(url, prefix=prefix) for _ in range(count)]
    try:
        yield stores
    finally:
        for opened in stores:
            await opened.close()
        await _delete_prefix(url, prefix)


async def _delete_prefix(url: str, prefix: str) -> None:
    """Leave a shared REDIS_URL server as we found it."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.unlink(*keys)
    finally:
        await client.aclose()
