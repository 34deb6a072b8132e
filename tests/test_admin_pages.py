"""The staff pages in real headless Chromium against a real `homeroom serve`: the session list
and new-session form (/console), the admin page (/admin) with a finished call's attendance, the
CSV download byte for byte, the audit chain and staff actions, and refused staff tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page

from rooms.tokens import StaffRole, issue_staff_token
from tests.browser import PHONE, Browsers, poll, shoot, shows
from tests.served import ServedNode, token_of
from tests.signaling_harness import SECRET, Client, until

INDIVIDUAL = {
    "kind": "individual",
    "roster": [
        {"attendee": "c-17", "role": "clinician"},
        {"attendee": "p-201", "role": "patient"},
    ],
}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServedNode]:
    node = await ServedNode.start(tmp_path, name="n-1")
    yield node
    await node.stop()


def staff_token(
    role: StaffRole, subject: str, *, ago: timedelta = timedelta(0), secret: str = SECRET
) -> str:
    """A one-hour staff token issued ``ago``: an hour or more ago, it has expired."""
    return issue_staff_token(secret, role, subject, datetime.now(UTC) - ago, timedelta(hours=1))


async def api(
    served: ServedNode, method: str, path: str, token: str = "", body: Any = None
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, served.url + path, headers=headers, json=body) as response,
    ):
        return response.status, await response.read()


async def fits_phone(page: Page) -> None:
    """At 360 px nothing widens the page: wide tables scroll inside their own box."""
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide at 360 px"


async def test_console_creates_a_session_and_hands_out_working_links(
    served: ServedNode, browsers: Browsers
) -> None:
    page = await browsers.open(
        f"{served.url}/console#t={staff_token(StaffRole.CLINICIAN, 'c-17')}", "staff"
    )
    await shows(page, "#who", "c-17 (clinician)")
    assert "#t=" not in page.url  # the token left the address bar
    await shows(page, "#list-status", "0 sessions")
    assert await page.get_by_label("Clinician id").input_value() == "c-17"

    # A couples session needs two partners: the server's reason is shown, nothing is created.
    await page.get_by_label("Kind").select_option("couples")
    await page.get_by_label("Patient ids").fill("p-201")
    await page.get_by_role("button", name="Create session").click()
    await shows(page, "#create-error", "do not make a valid session")
    assert "(invalid_roster)" in await page.locator("#create-error").inner_text()
    assert await page.locator("#created").is_hidden()

    await page.get_by_label("Kind").select_option("individual")
    await page.get_by_role("button", name="Create session").click()
    await page.locator("#created").wait_for(state="visible")
    assert await page.locator("#create-error").is_hidden()
    urls = {
        attendee: await page.get_by_role("textbox", name=f"Link for {attendee}").input_value()
        for attendee in ("c-17", "p-201")
    }
    assert urls["p-201"].startswith(f"{served.url}/join#t=")
    # The clinician's own link opens the host page.
    host = page.get_by_role("link", name="Open host page")
    assert await host.get_attribute("href") == urls["c-17"]
    assert urls["c-17"].startswith(f"{served.url}/host#t=")
    status, body = await api(
        served, "POST", "/api/links/verify", body={"token": urls["p-201"].split("#t=", 1)[1]}
    )
    assert status == 200, body

    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.url)
    await page.get_by_role("button", name="Copy the link for p-201").click()
    await shows(page, "#copy-status", "The link for p-201 is copied")
    assert await page.evaluate("() => navigator.clipboard.readText()") == urls["p-201"]

    # The list shows the new session, with its roster and where each person stands.
    await shows(page, "#list-status", "1 session")
    row = page.locator('[data-table="sessions"] tbody tr')
    assert await row.count() == 1
    await shows(page, '[data-table="sessions"] li[data-attendee="p-201"]', "not joined")
    await shoot(page, "console")

    # A family-education group: the purpose and guests the form shows only for it.
    assert await page.get_by_label("Guest ids").is_hidden()
    await page.get_by_label("Kind").select_option("group")
    await page.get_by_label("Purpose").select_option("family_education")
    await page.get_by_label("Patient ids").fill("p-301, p-302")
    await page.get_by_label("Guest ids").fill("g-31")
    await page.get_by_role("button", name="Create session").click()
    await shows(page, '#links li[data-role="guest"]', "Link for g-31")
    assert await page.locator("#links li").count() == 4
    await shows(page, "#list-status", "2 sessions")
    await shows(page, '[data-table="sessions"]', "Group (family education)")
    await fits_phone(page)


async def finished_call(served: ServedNode) -> dict[str, Any]:
    """A real individual session through signaling: the patient waits, is admitted and muted,
    leaves; the clinician ends it. Returns the create response."""
    created = await served.create_session(INDIVIDUAL)
    host = await Client(served.url).connect(token=token_of(created, "c-17"))
    patient = await Client(served.url).connect(token=token_of(created, "p-201"))
    await until(lambda: len(host.room["waiting"]) == 1)
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: patient.room["admitted"])
    assert (await host.call("mute", {"attendee": "p-201"}))["ok"] is True
    assert (await patient.call("leave"))["ok"] is True
    assert (await host.call("end"))["ok"] is True
    for client in (patient, host):
        await client.close()
    return created


async def test_admin_page_shows_the_attendance_and_downloads_the_same_csv(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await finished_call(served)
    token = staff_token(StaffRole.ADMIN, "admin-1")
    # The date of service is the program's (America/New_York), which need not be today in UTC.
    today = date.today()
    around = f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
    status, body = await api(served, "GET", f"/api/attendance?{around}&format=json", token)
    assert status == 200, body
    day = json.loads(body)["rows"][0]["date_of_service"]
    # A deployment check the same day: listed as such, left out of the attendance.
    probe = {
        "kind": "individual",
        "roster": [
            {"attendee": "c-probe", "role": "clinician"},
            {"attendee": "p-probe", "role": "patient"},
        ],
        "planned_minutes": 15,
        "check": True,
    }
    status, body = await api(served, "POST", "/api/sessions", token, probe)
    assert status == 201, body
    check = json.loads(body)["session"]

    page = await browsers.open(f"{served.url}/admin#t={token}", "admin")
    await shows(page, "#who", "admin-1 (admin)")
    await page.get_by_label("From", exact=True).fill(day)
    await page.get_by_label("To", exact=True).fill(day)
    await page.get_by_role("button", name="Show", exact=True).click()
    await shows(page, "#range-status", f"Showing {day} to {day}")

    table = page.locator(f'.session-attendance[data-session="{created["session"]}"] table')
    patient = table.locator("tbody tr", has=page.get_by_role("rowheader", name="p-201"))
    await patient.wait_for()
    assert await patient.locator(".intervals li").count() == 1
    assert await patient.locator(".explanation").inner_text()  # the billing rule's reason
    await shows(page, '[data-table="days"] tr', "p-201")
    await shows(page, '[data-table="days"] tr', "Not met")
    await shows(page, "#chain.intact", "chains intact")
    await shows(page, '[data-table="sessions"] tr', "deployment check (not billed)")
    assert check in await page.locator('[data-table="sessions"]').inner_text()
    assert await page.locator(f'.session-attendance[data-session="{check}"]').count() == 0

    # The CSV through the page's button is the API's CSV, byte for byte.
    async with page.expect_download() as started:
        await page.get_by_role("button", name="Download CSV").click()
    download = await started.value
    assert download.suggested_filename == f"homeroom-attendance-{day}-{day}.csv"
    saved = Path(await download.path())
    status, direct = await api(
        served, "GET", f"/api/attendance?from={day}&to={day}&format=csv", token
    )
    assert status == 200 and b"p-201" in direct
    assert await asyncio.to_thread(saved.read_bytes) == direct
    await shows(page, "#download-status", "Downloaded homeroom-attendance-")

    # Who did what to whom: the clinician admitted, muted and ended.
    await page.get_by_role("button", name=f"Staff actions in {created['session']}").first.click()
    audit = page.locator('[data-table="audit"] tbody')
    await shows(page, '[data-table="audit"] tbody tr', "admitted")
    for action in ("admitted", "muted", "ended the session for all"):
        await shows(page, '[data-table="audit"] tbody tr', action)
    assert "p-201" in await audit.inner_text()
    await shows(page, "#audit-status", "record is intact")
    await shoot(page, "admin")
    await fits_phone(page)


async def test_staff_pages_explain_refused_tokens_and_take_a_pasted_one(
    served: ServedNode, browsers: Browsers
) -> None:
    page = await browsers.open(f"{served.url}/admin", "staff")
    # The admin page asks for an admin's token, and says how one is made.
    await shows(page, "#signin-why", "Paste an administrator's staff token")
    await shows(page, "#signin-why", "--role admin")

    # Withdrawn by an admin: the sign-in box says so (not a page of failed tables).
    admin = staff_token(StaffRole.ADMIN, "admin-1")
    withdrawn = staff_token(StaffRole.ADMIN, "admin-9")
    status, _ = await api(served, "POST", "/api/tokens/revoke", admin, {"token": withdrawn})
    assert status == 200
    await page.goto(f"{served.url}/admin#t={withdrawn}")
    await shows(page, "#signin-why", "That staff token was withdrawn")
    assert await page.locator("#who").inner_text() == ""

    # Checked by the page before asking: an expired token.
    expired = staff_token(StaffRole.ADMIN, "admin-1", ago=timedelta(hours=2))
    await page.goto(f"{served.url}/admin#t={expired}")
    await shows(page, "#signin-why", "Your staff token has expired")
    assert "#t=" not in page.url

    # Only the server can tell a forged token: its refusal brings the sign-in box back.
    forged = staff_token(StaffRole.ADMIN, "admin-1", secret="another-secret-" + "y" * 32)
    await page.goto(f"{served.url}/admin#t={forged}")
    await shows(page, "#signin-why", "That staff token is not valid")

    await page.goto(f"{served.url}/admin#t={staff_token(StaffRole.CLINICIAN, 'c-17')}")
    await shows(page, "#signin-why", "This page is for administrators")

    await page.get_by_label("Staff token").fill(staff_token(StaffRole.ADMIN, "admin-1"))
    await page.get_by_role("button", name="Sign in").click()
    await shows(page, "#who", "admin-1 (admin)")
    await shows(page, "#chain.intact", "intact")
    # The token is kept for this tab: the session list opens signed in, then signs out.
    await page.get_by_role("link", name="Sessions").click()
    # The admin page says the same words: wait for the session list itself before signing out.
    await page.wait_for_url(f"{served.url}/console")
    await shows(page, "#who", "admin-1 (admin)")
    await page.get_by_role("button", name="Sign out").click()
    await shows(page, "#signin-why", "You are signed out")
    await poll(
        lambda: page.evaluate("() => sessionStorage.length === 0"), what="the token forgotten"
    )
