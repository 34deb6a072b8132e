"""GET /api/sessions: listing by program days, for admins and for clinicians' own sessions."""

from __future__ import annotations

from functools import partial

import pytest

from rooms import lifecycle, membership
from rooms.ids import AttendeeId, SessionId
from tests.test_web_api import COUPLES, Api, api  # noqa: F401 - the fixture
from web.keys import ROOMS

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


async def test_a_deployment_check_says_so_and_check_must_be_a_boolean(api: Api) -> None:  # noqa: F811
    care = await api.create()
    check = await api.create({**COUPLES, "check": True})
    listed = await api.call("GET", f"/api/sessions?{DAY}", 200, headers=api.staff())
    flags = {s["session"]: s["check"] for s in listed["sessions"]}
    assert flags == {care["session"]: False, check["session"]: True}
    one = await api.call("GET", f"/api/sessions/{check['session']}", 200, headers=api.staff())
    assert one["check"] is True
    body = {**COUPLES, "check": "sometimes"}
    refused = await api.call("POST", "/api/sessions", 400, json=body, headers=api.staff())
    assert refused["error"] == "invalid_message"
    assert len(await api.sessions()) == 2


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


async def test_links_can_be_issued_again_until_the_session_ends(api: Api) -> None:  # noqa: F811
    created = await api.create()
    path = f"/api/sessions/{created['session']}/links"
    again = await api.call("POST", path, 200, headers=api.staff())
    assert [link["attendee"] for link in again["links"]] == ["c-17", "p-201", "p-202"]
    assert again["links"][1]["url"] != created["links"][1]["url"]  # a fresh token
    assert (await api.verify(again["links"][1]["url"]))["attendee"] == "p-201"
    stranger = api.staff("clinician", "c-99")
    assert (await api.call("POST", path, 403, headers=stranger))["error"] == "not_authorized"
    missing = "/api/sessions/s-nosuchsession/links"
    assert (await api.call("POST", missing, 404, headers=api.staff()))[
        "error"
    ] == "session_not_found"


async def test_no_new_links_for_the_removed_or_after_the_end(api: Api) -> None:  # noqa: F811
    created = await api.create()
    session = SessionId(created["session"])
    rooms = api.client.app[ROOMS]  # type: ignore[union-attr]
    await rooms.apply(
        session, partial(membership.remove, actor=AttendeeId("c-17"), attendee=AttendeeId("p-202"))
    )
    path = f"/api/sessions/{session}/links"
    again = await api.call("POST", path, 200, headers=api.staff())
    assert [link["attendee"] for link in again["links"]] == ["c-17", "p-201"]
    await rooms.apply(session, partial(lifecycle.end, actor=AttendeeId("c-17")))
    assert (await api.call("POST", path, 410, headers=api.staff()))["error"] == "session_ended"
