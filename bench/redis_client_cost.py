"""``python -m bench.redis_client_cost [--n N] [--rounds R]``: client CPU per Redis command.

Times N sequential pairs of commands as the store issues them, one HGET and one EVALSHA (a
small script reading one hash field), against a private redis-server, through:

- *old*: the client the store was built on before (a BlockingConnectionPool with a socket
  timeout, so each send runs under ``asyncio.wait_for`` and each read under a timeout, and
  each command waits on the pool's condition), each command wrapped as the store did;
- *client*: ``RedisStore.from_url`` and the path every store command takes (``_call``: a
  semaphore and one ``asyncio.timeout`` per command, no socket timeout), the EVALSHA through
  redis-py's registered script, as the compare-and-set went before;
- *store*: the same, with the EVALSHA through ``rooms.store.script.Script``, as the
  compare-and-set goes now (its own connections, one pre-packed command);
- *bare*: a client with no timeouts and no wrapper at all.

Figures are CPU time of this process (``time.process_time``, so Redis's own work is not
counted) per command, the best of R interleaved rounds, and wall time beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bench.servers import PINNED, SERVER_CORE, RedisProc
from rooms.errors import StoreUnavailable
from rooms.store.redis import MAX_CONNECTIONS, RedisStore
from rooms.store.script import Script

SCRIPT = "return redis.call('HGET', KEYS[1], ARGV[1])"
KEY = "bench-cost:s:one"
DOC = "x" * 600  # about a small session document

Pair = Callable[[], Awaitable[None]]


@asynccontextmanager
async def _old_reachable() -> AsyncIterator[None]:
    """How the store wrapped each command before."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable("redis is unreachable") from exc


def old_client(url: str) -> Redis:
    """The client ``RedisStore.from_url`` built before."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=5.0,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), 2),
    )
    return Redis.from_pool(pool)


def old_pair(client: Redis) -> Pair:
    script = client.register_script(SCRIPT)

    async def pair() -> None:
        async with _old_reachable():
            await client.hget(KEY, "doc")
        async with _old_reachable():
            await script(keys=[KEY], args=["doc"])

    return pair


def client_pair(store: RedisStore) -> Pair:
    script = store._redis.register_script(SCRIPT)
    call, hget = store._call, store._redis.hget

    async def pair() -> None:
        await call(hget, KEY, "doc")
        await call(script, keys=[KEY], args=["doc"])

    return pair


def store_pair(store: RedisStore, script: Script) -> Pair:
    call, hget = store._call, store._redis.hget

    async def pair() -> None:
        await call(hget, KEY, "doc")
        await call(script, [KEY], ["doc"])

    return pair


def bare_pair(client: Redis) -> Pair:
    script = client.register_script(SCRIPT)

    async def pair() -> None:
        await client.hget(KEY, "doc")
        await script(keys=[KEY], args=["doc"])

    return pair


async def timed(pair: Pair, n: int) -> tuple[float, float]:
    """CPU and wall microseconds per command over ``n`` pairs."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await pair()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / (2 * n) * 1e6, wall / (2 * n) * 1e6


async def measure(url: str, n: int, rounds: int) -> dict[str, tuple[float, float]]:
    old = old_client(url)
    store = RedisStore.from_url(url, prefix="bench-cost")
    script = Script(store._redis.connection_pool, SCRIPT)
    bare = Redis.from_url(url, decode_responses=True, socket_timeout=None)
    try:
        await bare.hset(KEY, "doc", DOC)
        pairs: dict[str, Pair] = {
            "old": old_pair(old),
            "client": client_pair(store),
            "store": store_pair(store, script),
            "bare": bare_pair(bare),
        }
        for pair in pairs.values():  # connect, load the script, warm up
            for _ in range(min(n, 2000)):
                await pair()
        best: dict[str, tuple[float, float]] = {}
        for _ in range(rounds):
            for name, pair in pairs.items():
                cpu, wall = await timed(pair, n)
                if name not in best or cpu < best[name][0]:
                    best[name] = (cpu, wall)
        return best
    finally:
        await bare.delete(KEY)
        for client in (old, bare):
            await client.aclose()
        await script.close()
        await store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_client_cost", description=__doc__)
    parser.add_argument("--n", type=int, default=8_000, help="HGET + EVALSHA pairs per round")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds; best kept")
    args = parser.parse_args(argv)
    if PINNED:  # Redis runs on the other core
        os.sched_setaffinity(0, {SERVER_CORE})
    with tempfile.TemporaryDirectory(prefix="redis-cost-") as tmp:
        redis = RedisProc(Path(tmp) / "redis")
        try:
            best = asyncio.run(measure(redis.url, args.n, args.rounds))
        finally:
            redis.stop()
    commands = 2 * args.n
    print(f"{commands} commands per round (HGET + EVALSHA), best of {args.rounds} rounds")
    print(f"{'path':<8}{'CPU us/cmd':>12}{'wall us/cmd':>13}{'CPU vs old':>12}")
    old_cpu = best["old"][0]
    for name, (cpu, wall) in best.items():
        print(f"{name:<8}{cpu:>12.1f}{wall:>13.1f}{cpu / old_cpu:>12.2f}")
    print(f"store saves {old_cpu - best['store'][0]:.1f} us CPU per command")


if __name__ == "__main__":
    main()
