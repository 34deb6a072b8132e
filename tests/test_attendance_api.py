"""Attendance downloads through the real app: CSV, JSON, FHIR, JSON lines, the CLI, refusals."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from rooms import lifecycle, membership, reconnect
from rooms.ids import AttendeeId, EndpointId, SessionId
from rooms.store import SessionStore
from tests.test_web_api import Api, _api, make_settings
from web.cli import main
from web.keys import ROOMS

C, P = AttendeeId("c-17"), AttendeeId("p-201")
DAY = "from=2026-11-02&to=2026-11-02"


@pytest.fixture
async def api(tmp_path: Path, store: SessionStore) -> AsyncIterator[Api]:
    async for made in _api(make_settings(tmp_path), store):
        yield made


async def held_session(api: Api, **extra: object) -> SessionId:
    """An individual session: the patient is present 2:00-20:00 and 20:30-47:00 (44.5 min)."""
    body = {
        "kind": "individual",
        "roster": [{"attendee": C, "role": "clinician"}, {"attendee": P, "role": "patient"}],
        **extra,
    }
    session = SessionId((await api.create(body))["session"])
    rooms = api.client.app[ROOMS]  # type: ignore[union-attr]
    start = api.clock.now
    steps = [
        (0, partial(membership.join, endpoint=EndpointId("e-host"), attendee=C)),
        (60, partial(membership.join, endpoint=EndpointId("e-pat"), attendee=P)),
        (120, partial(membership.admit, actor=C, attendee=P)),
        (1200, partial(reconnect.disconnect, endpoint=EndpointId("e-pat"))),
        (
            1230,
            partial(reconnect.resume, endpoint=EndpointId("e-pat"), grace=timedelta(seconds=60)),
        ),
        (2820, partial(membership.leave, endpoint=EndpointId("e-pat"))),
        (2880, partial(lifecycle.end, actor=C)),
    ]
    for seconds, change in steps:
        api.clock.now = start + timedelta(seconds=seconds)
        await rooms.apply(session, change)
    return session


async def download(api: Api, query: str, expect: int = 200) -> str:
    async with api.client.get(f"/api/attendance?{query}", headers=api.staff()) as resp:
        text = await resp.text()
        assert resp.status == expect, text
        return text


async def test_csv_json_and_fhir_agree_on_the_minutes(api: Api) -> None:
    session = await held_session(api)
    rows = {r["attendee"]: r for r in json.loads(await download(api, DAY + "&format=json"))["rows"]}
    patient = rows[P]
    assert (patient["present_minutes"], patient["disconnects"]) == (44, 1)
    assert (patient["suggested_code"], patient["modifier"], patient["pos"]) == ("90834", "95", "10")
    assert patient["date_of_service"] == "2026-11-02" and patient["session"] == session
    text = await download(api, DAY)
    assert text.startswith("session,kind,purpose,date_of_service,attendee,role,")
    assert "\r\n" in text  # RFC 4180 line endings: opens in a spreadsheet
    table = {r["attendee"]: r for r in csv.DictReader(io.StringIO(text))}
    for column in ("present_minutes", "suggested_code", "modifier", "pos", "status", "disconnects"):
        assert table[P][column] == str(patient[column]), column
    bundle = json.loads(await download(api, DAY + "&format=fhir"))
    encounters = [e["resource"] for e in bundle["entry"] if "subject" in e["resource"]]
    assert [e["length"]["value"] for e in encounters] == [44]


async def test_jsonl_resummarizes_to_the_same_csv(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await held_session(api)
    exported = tmp_path / "ledger.jsonl"
    exported.write_text(await download(api, DAY + "&format=jsonl"), encoding="utf-8")
    monkeypatch.setenv("HOMEROOM_SECRET", "y" * 40)
    monkeypatch.setenv("HOMEROOM_VAR_DIR", str(tmp_path))
    capsys.readouterr()
    assert main(["attendance", "summarize", "--events", str(exported)]) == 0
    assert capsys.readouterr().out == await download(api, DAY)


async def test_filters_narrow_rows_without_changing_them(api: Api) -> None:
    session = await held_session(api)
    only = json.loads(await download(api, DAY + f"&format=json&patient={P}&session={session}"))
    assert [r["attendee"] for r in only["rows"]] == [P]
    assert only["rows"][0]["present_minutes"] == 44
    other_day = json.loads(await download(api, "from=2026-11-03&to=2026-11-09&format=json"))
    assert other_day["rows"] == []


async def test_a_deployment_check_is_left_out_of_reports_and_never_billable(api: Api) -> None:
    care = await held_session(api)
    check = await held_session(api, check=True)
    for fmt in ("json", "csv", "fhir", "jsonl"):
        text = await download(api, DAY + f"&format={fmt}")
        assert care in text and check not in text, fmt
    asked = json.loads(await download(api, DAY + f"&format=json&session={check}"))
    assert {r["attendee"] for r in asked["rows"]} == {C, P}
    for row in asked["rows"]:
        assert (row["status"], row["suggested_code"]) == ("not_billable", None)
        assert "deployment check" in row["explanation"]
    assert asked["rows"][[r["attendee"] for r in asked["rows"]].index(P)]["present_minutes"] == 44


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("from=2026-11-09&to=2026-11-02", 400, "invalid_message"),
        ("from=yesterday&to=2026-11-02", 400, "invalid_message"),
        (DAY + "&format=xlsx", 400, "invalid_message"),
        (DAY + "&patient=jane@example.org", 400, "invalid_message"),
        ("from=2024-01-01&to=2026-11-02", 400, "invalid_message"),
        (DAY + "&session=s-nosuchsession", 404, "session_not_found"),
    ],
)
async def test_bad_queries_are_refused_and_not_recorded(
    api: Api, query: str, status: int, code: str
) -> None:
    answer = json.loads(await download(api, query, expect=status))
    assert answer["error"] == code
    assert await api.store.admin_audit() == []


async def test_only_admins_export_and_each_export_is_audited(api: Api) -> None:
    await held_session(api)
    for headers, status, code in [
        ({}, 401, "not_authenticated"),
        (api.staff("clinician", "c-17"), 403, "not_authorized"),
    ]:
        async with api.client.get(f"/api/attendance?{DAY}", headers=headers) as resp:
            assert resp.status == status and (await resp.json())["error"] == code
    assert await api.store.admin_audit() == []
    await download(api, DAY + "&format=fhir")
    (entry,) = await api.store.admin_audit()
    assert (entry.actor, entry.action, entry.detail["format"]) == (
        "a-1",
        "attendance.export",
        "fhir",
    )
