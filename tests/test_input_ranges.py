"""Hostile ids and dates get a 400 and touch nothing: no 500, no store key of another type.

A session's Redis keys are ``<prefix>:s:<id>``, ``...:ev`` (its ledger stream) and
``...:spec``: an id ending in ``:ev`` once read the stream as a state (WRONGTYPE, a 500).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from rooms.store import SessionStore
from tests.served import COUPLES
from tests.test_web_api import Api, _api, make_settings


@pytest.fixture
async def both(tmp_path: Path, store: SessionStore) -> AsyncIterator[Api]:
    async for made in _api(make_settings(tmp_path), store):
        yield made


async def _bad(api: Api, method: str, path: str, **kwargs: object) -> None:
    with capture_logs() as logs:
        body = await api.call(method, path, 400, headers=api.staff(), **kwargs)
    assert body["error"] == "invalid_message", body
    assert [line for line in logs if line["log_level"] in ("error", "critical")] == []


@pytest.mark.parametrize("suffix", [":ev", ":spec", ":x", "%3Aev"])
async def test_ids_of_other_keys_are_refused(both: Api, suffix: str) -> None:
    session = (await both.create())["session"]
    await _bad(both, "GET", f"/api/sessions/{session}{suffix}")
    await _bad(both, "POST", f"/api/sessions/{session}{suffix}/links")
    await _bad(both, "GET", f"/api/audit?session={session}{suffix}")
    await _bad(
        both, "GET", f"/api/attendance?from=2026-11-01&to=2026-11-03&session={session}{suffix}"
    )
    # The session itself is untouched and still reads.
    await both.call("GET", f"/api/sessions/{session}", 200, headers=both.staff())


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
async def test_days_out_of_range_are_refused(both: Api, day: str) -> None:
    await _bad(both, "GET", f"/api/sessions?from={day}&to={day}")
    await _bad(both, "GET", f"/api/attendance?from={day}&to={day}")
    await _bad(both, "GET", f"/api/audit/verify?from={day}&to={day}")
    await _bad(both, "POST", "/api/archive", json={"from": day, "to": day})


@pytest.mark.parametrize("start", ["9999-12-31T23:30:00Z", "0001-01-01T00:00:00+05:00"])
async def test_start_times_out_of_range_are_refused(both: Api, start: str) -> None:
    await _bad(both, "POST", "/api/sessions", json={**COUPLES, "starts_at": start})
    assert await both.sessions() == []
