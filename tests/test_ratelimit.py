"""Rate limits per client address and per token on link verification, staff authentication
and socket connects, counted in the store so nodes share them (both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rooms.ratelimit import Limiter, RateLimits, client_address
from rooms.store import SessionStore, open_store
from tests.signaling_harness import Client, Node, connect_error, create, link
from tests.test_web_api import Api, _api, make_settings

T0 = datetime(2026, 11, 2, 15, 0, 20, tzinfo=UTC)


async def test_hits_count_in_fixed_windows(store: SessionStore) -> None:
    assert await store.hit("k", 60, T0) == (1, pytest.approx(40))
    assert (await store.hit("k", 60, T0 + timedelta(seconds=30)))[0] == 2
    assert (await store.hit("k", 60, T0, amount=0))[0] == 2  # a look, counting nothing
    assert (await store.hit("other", 60, T0))[0] == 1
    # The next window starts from nothing.
    assert (await store.hit("k", 60, T0 + timedelta(seconds=40)))[0] == 1


async def test_revoked_tokens_are_remembered(store: SessionStore) -> None:
    assert not await store.token_revoked("j-1")
    await store.revoke_token("j-1", T0 + timedelta(hours=1), T0)
    assert await store.token_revoked("j-1") and not await store.token_revoked("j-2")


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy() -> None:
    assert client_address("10.0.0.9", "1.2.3.4, 5.6.7.8", trust=False) == "10.0.0.9"
    assert client_address("10.0.0.9", "1.2.3.4, 5.6.7.8", trust=True) == "5.6.7.8"
    assert client_address("10.0.0.9", None, trust=True) == "10.0.0.9"


@pytest.fixture
async def limited(tmp_path: Path, store: SessionStore) -> AsyncIterator[Api]:
    settings = make_settings(tmp_path, rate_limit_per_address=6, rate_limit_per_token=3)
    async for made in _api(settings, store):
        yield made


async def _verify(api: Api, token: str) -> tuple[int, dict[str, Any], str | None]:
    async with api.client.post("/api/links/verify", json={"token": token}) as resp:
        return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def test_link_verification_per_token_then_per_address(limited: Api) -> None:
    created = await limited.create()
    token = created["links"][1]["url"].split("#t=", 1)[1]
    for _ in range(3):
        assert (await _verify(limited, token))[0] == 200
    status, body, retry = await _verify(limited, token)
    assert (status, body["error"]) == (429, "rate_limited")
    assert retry is not None and 1 <= int(retry) <= 60
    # Other tokens from the same address, until the address's limit.
    statuses = [(await _verify(limited, f"forged-{n}-" + "x" * 20))[0] for n in range(4)]
    assert statuses[:2] == [401, 401] and statuses[2:] == [429, 429]


async def test_staff_failures_per_address_then_even_a_good_token_waits(limited: Api) -> None:
    for n in range(6):
        bad = {"Authorization": f"Bearer {'y' * 40}{n}"}
        await limited.call("GET", "/api/sessions/s-x", 401, headers=bad)
    refused = await limited.call("GET", "/api/sessions/s-x", 429, headers=limited.staff())
    assert refused["error"] == "rate_limited"


async def test_staff_pages_that_poll_are_not_limited(limited: Api) -> None:
    created = await limited.create()
    for _ in range(20):
        await limited.call(
            "GET", f"/api/sessions/{created['session']}", 200, headers=limited.staff()
        )


async def test_two_nodes_share_the_counts(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    stores = [open_store(redis_url, prefix=redis_prefix) for _ in range(2)]
    settings = make_settings(
        tmp_path, rate_limit_per_address=1000, rate_limit_per_token=2, redis_prefix=redis_prefix
    )
    try:
        async for a in _api(settings, stores[0]):
            async for b in _api(settings, stores[1]):
                created = await a.create()
                token = created["links"][1]["url"].split("#t=", 1)[1]
                assert (await _verify(a, token))[0] == 200
                assert (await _verify(b, token))[0] == 200
                assert (await _verify(a, token))[0] == 429
                assert (await _verify(b, token))[0] == 429
    finally:
        for opened in stores:
            await opened.close()


async def test_socket_connects_are_limited(store: SessionStore) -> None:
    node = await Node(store).start()
    node.server.limiter = Limiter(store, RateLimits(per_token=2), lambda: T0)
    try:
        state = await create(node.rooms, "individual", "c-17", "p-201")
        token = link(state, "p-201")
        for _ in range(2):
            client = await Client(node.url).connect(token=token)
            await client.close()
        refused = await connect_error(node.url, token=token)
        assert refused["error"] == "rate_limited"
    finally:
        await node.stop()
