"""GET /api/sessions: listing by program days, for admins and for clinicians' own sessions."""

from __future__ import annotations

import pytest

from tests.test_web_api import COUPLES, Api, api  # noqa: F401 - the fixture

DAY = "from=2026-11-02&to=2026-11-02"


async def test_admins_see_every_session_clinicians_their_own(api: Api) -> None:  # noqa: F811
    first = await api.create()
    other = {
        **COUPLES,
        "roster": [{"attendee": "c-99", "role": "clinician"}, *COUPLES["roster"][1:]],
    }
    second = await api.create(other)
    listed = await api.call("GET", f"/api/sessions?{DAY}", 200, headers=api.staff())
    by_id = {s["session"]: s for s in listed["sessions"]}
    assert set(by_id) == {first["session"], second["session"]}  # same start: any order
    assert by_id[first["session"]]["roster"][1] == {
        "attendee": "p-201",
        "role": "patient",
        "function": None,
        "admission": "not_joined",
    }
    own = await api.call("GET", f"/api/sessions?{DAY}", 200, headers=api.staff("clinician", "c-99"))
    assert [s["session"] for s in own["sessions"]] == [second["session"]]
    later = await api.call(
        "GET", "/api/sessions?from=2026-11-03&to=2026-11-04", 200, headers=api.staff()
    )
    assert later == {"sessions": []}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("from=2026-11-09&to=2026-11-02", "invalid_message"),
        ("from=2026-01-01&to=2026-11-02", "invalid_message"),
        ("from=today&to=2026-11-02", "invalid_message"),
        ("to=2026-11-02", "invalid_message"),
    ],
)
async def test_bad_ranges_are_refused(api: Api, query: str, code: str) -> None:  # noqa: F811
    assert (await api.call("GET", f"/api/sessions?{query}", 400, headers=api.staff()))[
        "error"
    ] == code


async def test_listing_needs_a_staff_token(api: Api) -> None:  # noqa: F811
    assert (await api.call("GET", f"/api/sessions?{DAY}", 401))["error"] == "not_authenticated"
