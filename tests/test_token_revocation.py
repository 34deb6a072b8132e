"""Staff tokens: a short default life, ids revoked through the store on every node, and
`homeroom token revoke` (straight to Redis, or through the running server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from rooms.clock import utcnow
from rooms.store import SessionStore, open_store
from rooms.tokens import StaffRole, issue_staff_token, verify_staff_token
from tests.served import ServedNode
from tests.signaling_harness import SECRET as SERVED_SECRET
from tests.test_web_api import SECRET, Api, _api, make_settings
from web.cli import main


@pytest.fixture
async def both(tmp_path: Path, store: SessionStore) -> AsyncIterator[Api]:
    async for made in _api(make_settings(tmp_path), store):
        yield made


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_revoked_token_is_refused_and_the_others_work(both: Api) -> None:
    now = both.clock.now
    lost = issue_staff_token(SECRET, StaffRole.CLINICIAN, "c-17", now, timedelta(days=1))
    kept = issue_staff_token(SECRET, StaffRole.CLINICIAN, "c-17", now, timedelta(days=1))
    created = await both.create()
    path = f"/api/sessions/{created['session']}"
    await both.call("GET", path, 200, headers=_bearer(lost))
    answer = await both.call(
        "POST", "/api/tokens/revoke", 200, json={"token": lost}, headers=both.staff()
    )
    assert answer["revoked"] == verify_staff_token(SECRET, lost, now).jti
    refused = await both.call("GET", path, 401, headers=_bearer(lost))
    assert refused["error"] == "token_revoked"
    await both.call("GET", path, 200, headers=_bearer(kept))
    audit = await both.call("GET", "/api/audit", 200, headers=both.staff())
    assert "token.revoke" in [entry["action"] for entry in audit["entries"]]


async def test_only_admins_revoke_and_only_genuine_tokens(both: Api) -> None:
    now = both.clock.now
    token = issue_staff_token(SECRET, StaffRole.ADMIN, "a-2", now, timedelta(days=1))
    clinician = both.staff("clinician", "c-17")
    denied = await both.call(
        "POST", "/api/tokens/revoke", 403, json={"token": token}, headers=clinician
    )
    assert denied["error"] == "not_authorized"
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    bad = await both.call(
        "POST", "/api/tokens/revoke", 401, json={"token": forged}, headers=both.staff()
    )
    assert bad["error"] == "token_invalid"
    await both.call("POST", "/api/tokens/revoke", 400, json={}, headers=both.staff())
    await both.call(
        "GET", "/api/sessions?from=2026-11-01&to=2026-11-02", 200, headers=_bearer(token)
    )


def test_tokens_last_a_day_by_default_and_a_month_at_most(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOMEROOM_SECRET", SECRET)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["token", "--role", "admin", "--subject", "a-1"]) == 0
    claims = verify_staff_token(SECRET, capsys.readouterr().out.strip(), utcnow())
    assert timedelta(hours=23) < claims.exp - utcnow() <= timedelta(days=1)
    assert main(["token", "--role", "admin", "--subject", "a-1", "--days", "31"]) == 1
    assert "--days" in capsys.readouterr().err


async def test_cli_revokes_straight_into_redis(
    tmp_path: Path, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HOMEROOM_REDIS_PREFIX", redis_prefix)
    monkeypatch.setenv("HOMEROOM_SECRET", SECRET)
    store = open_store(redis_url, prefix=redis_prefix)
    try:
        async for api in _api(make_settings(tmp_path, redis_prefix=redis_prefix), store):
            token = issue_staff_token(SECRET, StaffRole.ADMIN, "a-9", utcnow(), timedelta(days=1))
            assert await asyncio.to_thread(main, ["token", "revoke", token]) == 0
            # The app's clock is another day; the revocation holds all the same.
            refused = await api.call("GET", "/api/audit", 401, headers=_bearer(token))
            assert refused["error"] == "token_revoked"
    finally:
        await store.close()
        client = Redis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(match=f"{redis_prefix}:*")]
        if keys:
            await client.unlink(*keys)
        await client.aclose()


async def test_cli_revokes_through_a_running_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await ServedNode.start(tmp_path, name="n-revoke")
    try:
        token = issue_staff_token(
            SERVED_SECRET, StaffRole.CLINICIAN, "c-3", utcnow(), timedelta(days=1)
        )
        monkeypatch.setenv("HOMEROOM_SECRET", SERVED_SECRET)
        monkeypatch.delenv("REDIS_URL", raising=False)
        argv = ["token", "revoke", token, "--url", node.url]
        assert await asyncio.to_thread(main, argv) == 0
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                node.url + "/api/sessions?from=2026-11-01&to=2026-11-02", headers=_bearer(token)
            ) as resp,
        ):
            assert resp.status == 401 and (await resp.json())["error"] == "token_revoked"
    finally:
        await node.stop()
