"""The audit trail through the real app and CLI: staff actions, verification, tampering, archive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from rooms.archive import verify_archive
from rooms.store import SessionStore, open_store
from tests.test_attendance_api import held_session
from tests.test_web_api import Api, _api, make_settings
from web.cli import main


@pytest.fixture
async def api(tmp_path: Path, store: SessionStore) -> AsyncIterator[Api]:
    async for made in _api(make_settings(tmp_path), store):
        yield made


async def get(api: Api, path: str, expect: int = 200, **headers: str) -> dict[str, Any]:
    return await api.call("GET", path, expect, headers=headers or api.staff())


async def test_staff_actions_of_a_session_and_reads_are_recorded(api: Api) -> None:
    session = await held_session(api)
    body = await get(api, f"/api/audit?session={session}")
    actions = [(e["action"], e["actor"], e.get("target")) for e in body["entries"]]
    assert ("admit", "c-17", "p-201") in actions and ("end", "c-17", None) in actions
    assert body["chain"]["ok"] is True
    admin = await get(api, "/api/audit")
    assert [e["action"] for e in admin["entries"]] == ["audit.read"]
    assert admin["chain"]["ok"] is True


async def test_verify_reports_intact_chains(api: Api) -> None:
    await held_session(api)
    body = await get(api, "/api/audit/verify")
    assert body["ok"] is True and body["first_broken"] is None and body["chains"] == 2


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/audit?session=s-nosuchsession", 404, "session_not_found"),
        ("/api/audit?session=Maria", 400, "invalid_message"),
        ("/api/audit/verify?from=last-week", 400, "invalid_message"),
        ("/api/audit?extra=1", 400, "invalid_message"),
    ],
)
async def test_bad_audit_queries_change_nothing(
    api: Api, path: str, status: int, code: str
) -> None:
    assert (await get(api, path, status))["error"] == code
    assert await api.store.admin_audit() == []


async def test_only_admins_read_the_audit_trail(api: Api) -> None:
    headers = api.staff("clinician", "c-17")
    assert (await get(api, "/api/audit", 403, **headers))["error"] == "not_authorized"
    assert await api.store.admin_audit() == []


async def test_archive_writes_verifiable_daily_files(api: Api, tmp_path: Path) -> None:
    await held_session(api)
    body = await api.call(
        "POST", "/api/archive", 200, json={"from": "2026-11-02", "to": "2026-11-02"},
        headers=api.staff(),
    )  # fmt: skip
    assert body["ok"] is True
    (day,) = body["days"]
    path = Path(day["path"])
    assert path.is_relative_to(tmp_path / "archive") and day["sessions"] == 1
    assert all(report.ok for report in verify_archive(path))


async def test_cli_verify_finds_a_deleted_ledger_entry(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = open_store(redis_url, prefix=redis_prefix)
    try:
        async for api in _api(make_settings(tmp_path), store):
            session = await held_session(api)
    finally:
        await store.close()
    for name, value in {
        "REDIS_URL": redis_url,
        "HOMEROOM_REDIS_PREFIX": redis_prefix,
        "HOMEROOM_SECRET": "z" * 40,
        "HOMEROOM_VAR_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["audit", "verify"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        key = f"{redis_prefix}:s:{session}:ev"
        entries = await client.xrange(key)
        await client.xdel(key, entries[4][0])  # somebody quietly removes the fifth event
    finally:
        await client.aclose()
    assert await asyncio.to_thread(main, ["audit", "verify"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["first_broken"]["chain"] == session and report["first_broken"]["seq"] == 5
