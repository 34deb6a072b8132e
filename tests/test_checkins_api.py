"""The standing program link and on-demand check-ins through a real `homeroom serve`, on the
embedded store and on a real Redis: the REST API, the CLI and a real socket.io connection."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import socketio

from rooms.tokens import StaffRole, issue_staff_token
from tests.served import HOMEROOM, ServedNode
from tests.signaling_harness import SECRET

ALL_DAY = {"HOMEROOM_CHECKIN_HOURS": "00:00-24:00"}
TEAM = [
    {"clinician": "c-1", "function": "individual_therapist", "display_name": "Dr. Rivera"},
    {"clinician": "c-2", "function": "counselor", "display_name": "Sam Okafor"},
    {"clinician": "c-3", "function": "couples_therapist", "display_name": "Dr. Lee"},
]


def staff(role: StaffRole, subject: str) -> dict[str, str]:
    token = issue_staff_token(SECRET, role, subject, datetime.now(UTC), timedelta(minutes=10))
    return {"Authorization": f"Bearer {token}"}


ADMIN = staff(StaffRole.ADMIN, "admin-1")


class Api:
    """JSON calls against one node: (status, body)."""

    def __init__(self, node: ServedNode, http: aiohttp.ClientSession) -> None:
        self.node, self.http = node, http

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, self.node.url + path, headers=headers, json=body
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def enroll(self, patient: str, team: list[dict[str, str]], **extra: Any) -> str:
        status, body = await self.call(
            "POST", f"/api/patients/{patient}/link", ADMIN, {"care_team": team, **extra}
        )
        assert status == 201, body
        assert body["url"].startswith(self.node.url + "/program#t=")
        return str(body["url"].split("#t=", 1)[1])


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    """Wait for ``check`` to hold, polling, with a generous deadline (a loaded machine)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - the state is another process's
            await asyncio.sleep(0.05)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["memory", "redis"])
async def api(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str) -> Any:
    env = dict(ALL_DAY)
    if request.param == "redis":
        env |= {
            "REDIS_URL": request.getfixturevalue("redis_url"),
            "HOMEROOM_REDIS_PREFIX": redis_prefix,
        }
    node = await ServedNode.start(tmp_path, name="n-1", **env)
    async with aiohttp.ClientSession() as http:
        yield Api(node, http)
    await node.stop()


async def test_a_standing_link_shows_today_and_joins_the_open_session(api: Api) -> None:
    token = await api.enroll("p-1", TEAM)
    created = await api.node.create_session(
        {"kind": "individual", "roster": [{"attendee": "c-1", "role": "clinician"},
                                          {"attendee": "p-1", "role": "patient"}]}
    )  # fmt: skip
    status, day = await api.call("GET", "/api/program", bearer(token))
    assert status == 200, day
    assert [(s["session"], s["kind"], s["clinician"], s["joinable"]) for s in day["today"]] == [
        (created["session"], "individual", "Dr. Rivera", True)
    ]
    assert day["on_duty"] is True and day["checkin"] is None and "988" in day["crisis_line"]
    status, link = await api.call(
        "POST", f"/api/program/sessions/{created['session']}/link", bearer(token)
    )
    assert status == 200 and link["url"].startswith("/join#t="), link
    session_token = link["url"].split("#t=", 1)[1]
    status, verified = await api.call("POST", "/api/links/verify", body={"token": session_token})
    assert status == 200 and verified["attendee"] == "p-1", verified

    # A real endpoint joins with it and waits; revoking the standing link closes it.
    client = socketio.AsyncClient(reconnection=False)
    byes: list[dict[str, Any]] = []
    client.on("bye", byes.append)
    await client.connect(
        api.node.url, auth={"v": 1, "token": session_token}, transports=["websocket"]
    )
    status, revoked = await api.call("DELETE", "/api/patients/p-1/link", ADMIN)
    assert status == 200 and revoked["signed_out_sessions"] == 1, revoked
    await until(lambda: bool(byes) and not client.connected)
    assert byes == [{"reason": "revoked", "detail": ""}]
    await client.disconnect()

    # Refused everywhere with a clear reason; the per-session link still works.
    status, body = await api.call("GET", "/api/program", bearer(token))
    assert (status, body["error"]) == (401, "token_revoked")
    status, body = await api.call("POST", "/api/links/verify", body={"token": session_token})
    assert (status, body["error"]) == (401, "token_revoked")
    own = next(x["url"] for x in created["links"] if x["attendee"] == "p-1").split("#t=")[1]
    status, body = await api.call("POST", "/api/links/verify", body={"token": own})
    assert status == 200, body
    status, summary = await api.call("GET", f"/api/sessions/{created['session']}", ADMIN)
    assert [m["admission"] for m in summary["roster"] if m["attendee"] == "p-1"] == ["not_joined"]


async def test_forged_and_replaced_standing_links_are_refused(api: Api) -> None:
    old = await api.enroll("p-1", TEAM)
    new = await api.enroll("p-1", TEAM)  # a new link replaces the old one
    assert (await api.call("GET", "/api/program", bearer(new)))[0] == 200
    status, body = await api.call("GET", "/api/program", bearer(old))
    assert (status, body["error"]) == (401, "token_revoked")
    forged = new[:-4] + ("AAAA" if not new.endswith("AAAA") else "BBBB")
    status, body = await api.call("GET", "/api/program", bearer(forged))
    assert (status, body["error"]) == (401, "token_invalid")
    # A staff token or a session link is not a standing link, nor the other way round.
    status, body = await api.call("GET", "/api/program", ADMIN)
    assert (status, body["error"]) == (401, "token_invalid")
    status, body = await api.call("GET", "/api/checkins", bearer(new))
    assert (status, body["error"]) == (401, "token_invalid")
    status, body = await api.call("POST", "/api/program/checkins", None, {})
    assert (status, body["error"]) == (401, "not_authenticated")
    status, body = await api.call("DELETE", "/api/patients/p-404/link", ADMIN)
    assert (status, body["error"]) == (404, "not_enrolled")
    status, body = await api.call(
        "POST",
        "/api/patients/p-1/link",
        ADMIN,
        {"care_team": [{"clinician": "x@y.z", "function": "counselor"}]},
    )
    assert (status, body["error"]) == (400, "invalid_message")


async def test_two_clinicians_pick_up_at_once_exactly_one_wins(api: Api) -> None:
    token = await api.enroll("p-1", TEAM)
    status, asked = await api.call(
        "POST", "/api/program/checkins", bearer(token), {"reason": "check_in"}
    )
    assert status == 201 and asked["status"] == "waiting" and asked["place"] == 1, asked
    # Asking again while waiting gives the same request; nothing new is queued.
    status, again = await api.call("POST", "/api/program/checkins", bearer(token), {})
    assert again["id"] == asked["id"]
    for clinician in ("c-1", "c-2"):
        status, queue = await api.call(
            "GET", "/api/checkins", staff(StaffRole.CLINICIAN, clinician)
        )
        assert [r["id"] for r in queue["requests"]] == [asked["id"]], queue
    # c-3 (couples therapist only) does not see an individual check-in.
    status, queue = await api.call("GET", "/api/checkins", staff(StaffRole.CLINICIAN, "c-3"))
    assert queue["requests"] == []

    path = f"/api/checkins/{asked['id']}/take"
    results = await asyncio.gather(
        api.call("POST", path, staff(StaffRole.CLINICIAN, "c-1")),
        api.call("POST", path, staff(StaffRole.CLINICIAN, "c-2")),
    )
    assert sorted(status for status, _ in results) == [201, 409], results
    won = next(body for status, body in results if status == 201)
    lost = next(body for status, body in results if status == 409)
    assert lost["error"] == "checkin_taken" and won["url"].startswith("/host#t=")
    status, seen = await api.call("GET", f"/api/program/checkins/{asked['id']}", bearer(token))
    assert seen["status"] == "taken" and seen["session"] == won["session"], seen
    assert seen["url"].startswith("/join#t=")

    # The session: individual, the winner as clinician, recorded as a check-in.
    status, summary = await api.call("GET", f"/api/sessions/{won['session']}", ADMIN)
    assert summary["kind"] == "individual" and summary["status"] == "scheduled"
    # The patient joins and is admitted at once, without a clinician's admit.
    client = socketio.AsyncClient(reconnection=False)
    rooms: list[dict[str, Any]] = []
    client.on("room", rooms.append)
    join_token = seen["url"].split("#t=", 1)[1]
    await client.connect(api.node.url, auth={"v": 1, "token": join_token}, transports=["websocket"])
    async with asyncio.timeout(10):
        while True:
            status, summary = await api.call("GET", f"/api/sessions/{won['session']}", ADMIN)
            if [m["admission"] for m in summary["roster"] if m["attendee"] == "p-1"] == [
                "admitted"
            ]:
                break
            await asyncio.sleep(0.05)
    await client.disconnect()

    # Recorded once each, with the wait; the report counts it.
    today = datetime.now(ZoneInfo("America/New_York")).date()
    status, report = await api.call("GET", f"/api/checkins/report?from={today}&to={today}", ADMIN)
    assert status == 200, report
    [day] = report["days"]
    assert (day["requests"], day["taken"], day["unanswered"]) == (1, 1, 0), day
    assert day["wait_p50_seconds"] is not None and report["unanswered"] == []


async def test_cancel_then_a_late_pick_up_is_refused(api: Api) -> None:
    token = await api.enroll("p-1", TEAM)
    _, asked = await api.call("POST", "/api/program/checkins", bearer(token), {})
    status, cancelled = await api.call(
        "POST", f"/api/program/checkins/{asked['id']}/cancel", bearer(token)
    )
    assert status == 200 and cancelled["status"] == "cancelled", cancelled
    status, body = await api.call(
        "POST", f"/api/checkins/{asked['id']}/take", staff(StaffRole.CLINICIAN, "c-1")
    )
    assert (status, body["error"]) == (409, "checkin_cancelled")
    status, body = await api.call(
        "POST", f"/api/program/checkins/{asked['id']}/cancel", bearer(token)
    )
    assert (status, body["error"]) == (409, "checkin_cancelled")
    # Someone else's request is not found, for them.
    other = await api.enroll("p-2", TEAM)
    status, body = await api.call("GET", f"/api/program/checkins/{asked['id']}", bearer(other))
    assert (status, body["error"]) == (404, "checkin_not_found")
    today = datetime.now(ZoneInfo("America/New_York")).date()
    _, report = await api.call("GET", f"/api/checkins/report?from={today}&to={today}", ADMIN)
    assert (report["days"][0]["requests"], report["days"][0]["cancelled"]) == (1, 1)
    assert [u["request"] for u in report["unanswered"]] == [asked["id"]]


async def test_a_care_team_without_a_clinician_for_it_is_refused(api: Api) -> None:
    token = await api.enroll("p-1", [TEAM[2]], partner="p-2")  # a couples therapist only
    status, body = await api.call("POST", "/api/program/checkins", bearer(token), {})
    assert (status, body["error"]) == (409, "no_care_team")
    status, asked = await api.call(
        "POST", "/api/program/checkins", bearer(token), {"together": True}
    )
    assert status == 201 and asked["kind"] == "couples", asked
    status, body = await api.call(
        "POST", "/api/program/checkins", bearer(token), {"reason": "free text"}
    )
    assert (status, body["error"]) == (400, "invalid_message")
    status, queue = await api.call("GET", "/api/checkins", staff(StaffRole.CLINICIAN, "c-1"))
    assert queue["requests"] == []  # c-1 is not on this care team


async def test_nobody_on_duty(tmp_path: Path) -> None:
    zone = ZoneInfo("America/New_York")
    later = datetime.now(zone) + timedelta(hours=2)
    hours = f"{later:%H}:00-{(later + timedelta(hours=1)):%H}:00"
    node = await ServedNode.start(tmp_path, name="n-1", HOMEROOM_CHECKIN_HOURS=hours)
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(node, http)
            token = await api.enroll("p-1", TEAM)
            status, day = await api.call("GET", "/api/program", bearer(token))
            assert day["on_duty"] is False and day["hours"] == hours
            status, body = await api.call("POST", "/api/program/checkins", bearer(token), {})
            assert (status, body["error"]) == (409, "not_on_duty")
    finally:
        await node.stop()
    # Display names and tokens never reach the logs.
    text = "".join(node.lines)
    assert "Rivera" not in text and token not in text
    assert json.loads(node.lines[-1])  # json lines


async def test_the_cli_gives_and_withdraws_a_standing_link(tmp_path: Path) -> None:
    node = await ServedNode.start(tmp_path, name="n-1", **ALL_DAY)
    env = {**os.environ, "HOMEROOM_SECRET": SECRET, "HOMEROOM_VAR_DIR": str(tmp_path / "cli")}
    env.pop("REDIS_URL", None)

    async def homeroom(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            str(HOMEROOM), "patient", *args, "--url", node.url, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    try:
        code, out, err = await homeroom(
            "link", "--patient", "p-7", "--care-team", "c-1:counselor:Sam Okafor"
        )
        assert code == 0, err
        made = json.loads(out)
        assert made["care_team"] == [
            {"clinician": "c-1", "function": "counselor", "display_name": "Sam Okafor"}
        ]
        token = made["url"].split("#t=", 1)[1]
        code, out, err = await homeroom("link", "--patient", "p-7", "--care-team", "c-1:nurse")
        assert code == 1 and err.startswith("error: invalid_message: --care-team"), err
        assert "counselor" in err
        code, out, err = await homeroom("revoke", "--patient", "p-7")
        assert code == 0 and json.loads(out)["patient"] == "p-7", err
        code, out, err = await homeroom("revoke", "--patient", "p-8")
        assert (code, err.split(":")[1].strip()) == (1, "not_enrolled"), err
        async with aiohttp.ClientSession() as http:
            status, body = await Api(node, http).call("GET", "/api/program", bearer(token))
        assert (status, body["error"]) == (401, "token_revoked")
    finally:
        await node.stop()


async def test_withdrawing_a_link_on_one_node_closes_its_connection_on_another(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    env = {**ALL_DAY, "REDIS_URL": redis_url, "HOMEROOM_REDIS_PREFIX": redis_prefix}
    one = await ServedNode.start(tmp_path, name="n-1", **env)
    two = await ServedNode.start(tmp_path, name="n-2", **env)
    client = socketio.AsyncClient(reconnection=False)
    try:
        async with aiohttp.ClientSession() as http:
            api_one, api_two = Api(one, http), Api(two, http)
            token = await api_one.enroll("p-1", TEAM)
            created = await one.create_session(
                {"kind": "individual", "roster": [{"attendee": "c-1", "role": "clinician"},
                                                  {"attendee": "p-1", "role": "patient"}]}
            )  # fmt: skip
            _, link = await api_two.call(
                "POST", f"/api/program/sessions/{created['session']}/link", bearer(token)
            )
            session_token = link["url"].split("#t=", 1)[1]
            byes: list[dict[str, Any]] = []
            client.on("bye", byes.append)
            await client.connect(
                one.url, auth={"v": 1, "token": session_token}, transports=["websocket"]
            )
            status, revoked = await api_two.call("DELETE", "/api/patients/p-1/link", ADMIN)
            assert status == 200 and revoked["signed_out_sessions"] == 1, revoked
            await until(lambda: bool(byes) and not client.connected)
            assert byes == [{"reason": "revoked", "detail": ""}]
            for api in (api_one, api_two):
                status, body = await api.call("GET", "/api/program", bearer(token))
                assert (status, body["error"]) == (401, "token_revoked")
            # Recorded once: the endpoint waited, then left because the link was withdrawn.
            today = datetime.now(ZoneInfo("America/New_York")).date()
            url = f"{one.url}/api/attendance?from={today}&to={today}&format=jsonl&patient=p-1"
            async with http.get(url, headers=ADMIN) as resp:
                lines = [json.loads(x) for x in (await resp.text()).splitlines() if x]
            kinds = [(e["kind"], e["data"].get("reason")) for e in lines if "kind" in e]
            assert kinds.count(("left", "link_revoked")) == 1, kinds
            assert [k for k, _ in kinds].count("waiting") == 1, kinds
    finally:
        if client.connected:
            await client.disconnect()
        await one.stop()
        await two.stop()
    logs = "".join(one.lines + two.lines)
    for secret in ("Dr. Rivera", "Sam Okafor", token, session_token):
        assert secret not in logs


async def test_todays_list_says_which_sessions_are_over_open_or_to_come(tmp_path: Path) -> None:
    # The program's zone is chosen so that it is about noon there now: sessions three hours
    # either side of now are all today's, whenever the test runs.
    offset = 12 - datetime.now(UTC).hour  # hours east of UTC; POSIX zone names count west
    zone = "Etc/GMT" + (f"{-offset:+d}" if offset else "")
    node = await ServedNode.start(tmp_path, name="n-1", HOMEROOM_TIMEZONE=zone, **ALL_DAY)
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(node, http)
            token = await api.enroll("p-1", TEAM)
            now = datetime.now(UTC)
            made = {}
            for name, start, minutes in (
                ("missed", now - timedelta(hours=3), 45),  # over, trail included, never held
                ("earlier", now - timedelta(minutes=20), 60),  # running, not the newest
                ("current", now - timedelta(minutes=5), 60),  # running: the one to join
                ("later", now + timedelta(hours=3), 45),
            ):
                created = await node.create_session(
                    {"kind": "individual", "starts_at": start.isoformat(),
                     "planned_minutes": minutes,
                     "roster": [{"attendee": "c-1", "role": "clinician"},
                                {"attendee": "p-1", "role": "patient"}]}
                )  # fmt: skip
                made[created["session"]] = name
            status, day = await api.call("GET", "/api/program", bearer(token))
            assert status == 200, day
            seen = {made[s["session"]]: (s["timing"], s["joinable"]) for s in day["today"]}
            assert seen == {
                "missed": ("past", False),
                "earlier": ("open", False),
                "current": ("open", True),
                "later": ("upcoming", False),
            }
            # Its time is over: no way in through the standing link (the link would be dead).
            missed = next(s for s, name in made.items() if name == "missed")
            status, body = await api.call(
                "POST", f"/api/program/sessions/{missed}/link", bearer(token)
            )
            assert (status, body["error"]) == (410, "session_ended"), body
    finally:
        await node.stop()
