"""Who may act on a session through the REST API: admins, and clinicians on its roster.

Who created a session grants nothing: a staff token's subject is an id anyone with the
secret's tokens can be issued, and sessions made from the CLI all used to share one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from rooms.ids import SessionId
from rooms.store import open_store
from tests.test_web_api import Api, _api, api, make_settings
from web.cli import main

__all__ = ["api"]  # the fixture, shared with test_web_api


@pytest.fixture
async def redis_api(tmp_path: Path, redis_url: str, redis_prefix: str) -> AsyncIterator[Api]:
    """The app on a real Redis under this test's prefix (the CLI writes there too)."""
    store = open_store(redis_url, prefix=redis_prefix)
    settings = make_settings(tmp_path, redis_url=redis_url, redis_prefix=redis_prefix)
    try:
        async for made in _api(settings, store):
            yield made
    finally:
        await store.close()
        client = Redis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(match=f"{redis_prefix}:*")]
        if keys:
            await client.unlink(*keys)
        await client.aclose()


async def _read_and_reissue(api: Api, session: str, subject: str, expect: int) -> None:
    headers = api.staff("clinician", subject)
    path = f"/api/sessions/{session}"
    read = await api.call("GET", path, expect, headers=headers)
    links = await api.call("POST", path + "/links", expect, headers=headers)
    if expect == 403:
        assert read["error"] == links["error"] == "not_authorized"
        assert "links" not in links


async def test_a_clinician_named_like_the_admin_who_created_it_is_refused(api: Api) -> None:
    created = await api.create(headers=api.staff("admin", "a-1"))
    await _read_and_reissue(api, created["session"], "a-1", 403)
    day = created["starts_at"][:10]
    listed = await api.call(
        "GET", f"/api/sessions?from={day}&to={day}", 200, headers=api.staff("clinician", "a-1")
    )
    assert listed["sessions"] == []


async def test_clinicians_on_the_roster_and_admins_may(api: Api) -> None:
    created = await api.create(headers=api.staff("admin", "a-1"))
    await _read_and_reissue(api, created["session"], "c-17", 200)
    await api.call("GET", f"/api/sessions/{created['session']}", 200, headers=api.staff())


async def test_cli_sessions_record_their_operator_and_grant_nothing_to_cli(
    redis_api: Api, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HOMEROOM_REDIS_PREFIX", redis_prefix)
    monkeypatch.setenv("HOMEROOM_SECRET", "api-test-secret-" + "x" * 32)
    argv = ["session", "create", "--kind", "couples", "--operator", "op-7"]
    argv += ["--clinician", "c-17", "--patient", "p-201", "--patient", "p-202"]
    argv += ["--identified-patient", "p-201"]
    # main() runs its own event loop, so it cannot run on the test's.
    assert await asyncio.to_thread(main, argv) == 0
    (session,) = await redis_api.sessions()
    state = await redis_api.store.get(SessionId(session))
    assert state.spec.created_by == "op-7"
    await _read_and_reissue(redis_api, session, "cli", 403)
    await _read_and_reissue(redis_api, session, "op-7", 403)
    await _read_and_reissue(redis_api, session, "c-17", 200)


def test_operator_must_be_a_pseudonym(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["session", "create", "--kind", "individual", "--operator", "jane@example.org"]
    assert main([*argv, "--clinician", "c-1", "--patient", "p-1"]) == 1
