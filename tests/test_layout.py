"""Layout facts of the pages, read from the DOM of real Chromium at phone (390x844, 360x640) and
laptop (1366x768) sizes, with a screenshot of each scene into ``SCREENSHOTS_DIR`` (default
``screenshots/`` in the checkout, git-ignored; `make screenshots` runs this file): the join
button above the fold, the call's controls always on screen and never covered (not by the mute
notice, not by a short message, which also leaves the notice free), the waiting room's facts, a
13-person group, every roster row of the console visible at once. Each scene also passes
axe-core (no serious or critical violation) and keyboard reach with visible focus.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from rooms.tokens import StaffRole, issue_staff_token
from tests.a11y import keyboard_misses, serious_violations
from tests.browser import Browsers, says, shows, stage
from tests.served import ServedNode, token_of
from tests.signaling_harness import SECRET, Client

ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / "screenshots")
PHONES = {"390x844": {"width": 390, "height": 844}, "360x640": {"width": 360, "height": 640}}
LAPTOP = {"1366x768": {"width": 1366, "height": 768}}
CLINIC = "Riverside Health"
#: Words that would tell a reader what the program treats: never on a patient's page unless
#: the clinic's own name says it.
FOCUS_WORDS = ("addiction", "substance", "alcohol", "drug", "opioid", "recovery", "rehab",
               "detox", "mental health", "psychiatr", "iop", "intensive outpatient")  # fmt: skip


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServedNode]:
    node = await ServedNode.start(tmp_path, name="n-1", HOMEROOM_CLINIC_NAME=CLINIC)
    yield node
    await node.stop()


def admin_token() -> str:
    return issue_staff_token(
        SECRET, StaffRole.ADMIN, "admin-1", datetime.now(UTC), timedelta(hours=1)
    )


async def enroll(served: ServedNode, patient: str, clinician: str, name: str) -> None:
    """The patient's care team names their clinician (what the waiting room shows)."""
    body = {"care_team": [{"clinician": clinician, "function": "individual_therapist",
                           "display_name": name}]}  # fmt: skip
    headers = {"Authorization": f"Bearer {admin_token()}"}
    url = f"{served.url}/api/patients/{patient}/link"
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        assert r.status == 201, await r.text()


async def snap(page: Page, name: str, sizes: dict[str, dict[str, int]]) -> None:
    """What the person sees (the viewport, not the whole page) at each size."""
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before the screenshots)
    for label, size in sizes.items():
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        await page.evaluate("() => window.scrollTo(0, 0)")
        await page.screenshot(path=str(SHOTS / f"{name}-{label}.png"))


async def box(page: Page, selector: str) -> dict[str, float]:
    found = await page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not displayed"
    return dict(found)


async def in_viewport(page: Page, selector: str) -> None:
    """``selector`` is wholly on screen without scrolling (from the top of the page)."""
    b, view = await box(page, selector), page.viewport_size
    assert view is not None
    inside = (
        b["x"] >= 0
        and b["y"] >= 0
        and b["x"] + b["width"] <= view["width"] + 0.5
        and b["y"] + b["height"] <= view["height"] + 0.5
    )
    assert inside, f"{selector} at {b} is not inside the {view} viewport"


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


#: What a message must leave free: every button, field and link, the call's controls and the
#: mute notice.
CONTROLS = "button, select, input, a[href], .toolbar, #muted-notice"

_SHOWN_MESSAGE = """() => {
  const t = document.getElementById('notice');
  const r = t.getBoundingClientRect();
  // Read out but not shown (a visually hidden live region) is not a message on screen.
  return t.textContent.trim() !== '' && r.width > 1 && r.height > 1
    ? {x: r.x, y: r.y, width: r.width, height: r.height} : null;
}"""


async def message_covers_nothing(page: Page) -> None:
    """While a short message (``#notice``) is on screen, no visible button, field or link and
    not the mute notice lies under it."""
    message = await page.evaluate(_SHOWN_MESSAGE)
    if message is None:
        return
    covered = []
    for control in await page.locator(CONTROLS).all():
        found = await control.bounding_box() if await control.is_visible() else None
        if found is not None and overlap(message, dict(found)):
            covered.append(await control.evaluate("n => n.id || n.textContent.trim()"))
    assert not covered, f"the message at {message} covers {covered}"


async def self_view_seen(page: Page) -> None:
    """The person's own picture is wholly on screen and the sticky controls do not cover it."""
    await in_viewport(page, ".call-area .self")
    own, bar = await box(page, ".call-area .self"), await box(page, ".toolbar")
    assert not overlap(own, bar), f"the controls at {bar} cover the self-view at {own}"


async def accessible(page: Page, what: str) -> None:
    """No serious or critical axe-core violation; every control reached by Tab, visibly."""
    violations = await serious_violations(page)
    assert not violations, f"{what}: {violations}"
    missed, unseen = await keyboard_misses(page)
    assert not missed, f"{what}: not reachable by keyboard: {missed}"
    assert not unseen, f"{what}: focus not visible on: {unseen}"


async def names_no_focus(page: Page) -> None:
    text = (await page.locator("body").inner_text()).lower().replace(CLINIC.lower(), "")
    title = (await page.title()).lower()
    for word in FOCUS_WORDS:
        assert word not in f"{text} {title}".split() and f" {word}" not in f" {text} {title}", word


INDIVIDUAL: dict[str, Any] = {
    "kind": "individual",
    "roster": [{"attendee": "c-17", "role": "clinician"}, {"attendee": "p-201", "role": "patient"}],
}


async def test_the_patient_page_on_a_phone(served: ServedNode, browsers: Browsers) -> None:
    await enroll(served, "p-201", "c-17", "Dr. Rivera")
    created = await served.create_session(INDIVIDUAL)
    host = await browsers.open(f"{served.url}/host#t={token_of(created, 'c-17')}", "host")
    await stage(host, "setup")
    await host.get_by_role("button", name="Join the session").click()
    await stage(host, "call")
    patient = await browsers.open(f"{served.url}/join#t={token_of(created, 'p-201')}", "patient")
    await stage(patient, "setup")
    await patient.wait_for_function("() => !document.getElementById('join').disabled")
    for label, size in PHONES.items():
        await patient.set_viewport_size(size)  # type: ignore[arg-type]
        await patient.evaluate("() => window.scrollTo(0, 0)")
        await in_viewport(patient, "#join")  # above the fold
        await says(patient, "#brand", CLINIC)
        await snap(patient, "join", {label: size})
    await names_no_focus(patient)
    await accessible(patient, "device check")

    await patient.get_by_role("button", name="Join the session").click()
    await stage(patient, "waiting")
    await shows(patient, "#waiting-who", f"Welcome to {CLINIC}. Dr. Rivera will let you in soon")
    await shows(patient, "#waiting-when", "Your session:")
    await patient.wait_for_function("() => document.getElementById('waiting-self').videoWidth > 0")
    await patient.wait_for_function("() => document.getElementById('waiting-level').value > 0.05")
    await patient.get_by_role("button", name="Play a test sound").click()
    await shows(patient, "#speaker-status", "Did you hear two notes?")
    for label, size in PHONES.items():
        await patient.set_viewport_size(size)  # type: ignore[arg-type]
        await in_viewport(patient, "#speaker-test")
        await snap(patient, "waiting-room", {label: size})
    await snap(patient, "waiting-room", LAPTOP)
    await names_no_focus(patient)
    await accessible(patient, "waiting room")

    await host.locator('#waiting-list [data-action="admit"][data-attendee="p-201"]').click()
    await stage(patient, "call")
    await host.locator('#people-list [data-action="mute"][data-attendee="p-201"]').click()
    await shows(patient, "#muted-notice", "muted by your clinician")
    # Read out for screen readers; on screen the notice says it, nothing lies over it.
    await says(patient, "#notice", "Your clinician muted your microphone.")
    await call_fits(patient, "call-muted")
    await names_no_focus(patient)
    await accessible(patient, "call")

    await patient.get_by_role("button", name="Ask to unmute").click()
    await says(patient, "#muted-text", UNMUTE_ASKED)
    await call_fits(patient, "call-asked")
    await host.locator('#people-list [data-action="unmute"][data-attendee="p-201"]').click()
    await patient.locator("#muted-notice").wait_for(state="hidden")
    await shows(patient, "#notice", "Your clinician unmuted your microphone.")
    await call_fits(patient, "call-unmuted")


UNMUTE_ASKED = (
    "Your microphone is muted by your clinician. You asked to speak: they will unmute you."
)


async def call_fits(patient: Page, name: str) -> None:
    """At each size: the call's controls and the own picture on screen, the notice and a
    message over none of them, also scrolled to the end (the partner form on a phone)."""
    for label, size in {**PHONES, **LAPTOP}.items():
        await patient.set_viewport_size(size)  # type: ignore[arg-type]
        for control in ("#mic", "#camera", "#leave"):
            await in_viewport(patient, control)
        await self_view_seen(patient)
        bar = await box(patient, ".toolbar")
        if await patient.locator("#muted-notice").is_visible():
            notice = await box(patient, "#muted-notice")
            assert not overlap(notice, bar), f"the notice at {notice} covers the controls at {bar}"
        await message_covers_nothing(patient)
        await patient.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        await in_viewport(patient, "#leave")
        await message_covers_nothing(patient)
        await patient.evaluate("() => window.scrollTo(0, 0)")
        await snap(patient, name, {label: size})


def group(patients: int) -> dict[str, Any]:
    roster = [{"attendee": "c-17", "role": "clinician"}]
    roster += [{"attendee": f"p-{n}", "role": "patient"} for n in range(1, patients + 1)]
    return {"kind": "group", "purpose": "therapy_group", "roster": roster}


async def test_a_13_person_group_on_the_console_and_a_phone(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(group(12))
    host = await browsers.open(f"{served.url}/host#t={token_of(created, 'c-17')}", "host")
    await host.set_viewport_size(LAPTOP["1366x768"])  # type: ignore[arg-type]
    await stage(host, "setup")
    await host.get_by_role("button", name="Join the session").click()
    await stage(host, "call")
    await says(host, "#absent-count", "(12)")  # everyone expected, nobody here yet
    # No Janus here: the group falls back to the mesh, and the console says what that costs.
    await shows(host, "#mesh-notice", "degrades beyond 4 devices")
    assert await host.locator("#mesh-notice").get_attribute("data-over") == "false"

    # Eleven patients join through signaling (no media: their tiles stay dark), one in Chromium.
    others = [
        await Client(served.url).connect(token=token_of(created, f"p-{n}")) for n in range(2, 13)
    ]
    try:
        patient = await browsers.open(f"{served.url}/join#t={token_of(created, 'p-1')}", "p-1")
        await stage(patient, "setup")
        await patient.get_by_role("button", name="Join the session").click()
        await stage(patient, "waiting")
        await says(host, "#waiting-count", "(12)")
        await host.get_by_role("button", name="Admit everyone waiting").click()
        await says(host, "#present-count", "(13)")  # twelve patients and the clinician
        await says(host, "#waiting-count", "(0)")
        assert await host.locator("#absent-list").is_hidden()
        await shows(host, "#mesh-notice", "(13 now)")
        assert await host.locator("#mesh-notice").get_attribute("data-over") == "true"

        # The console: all thirteen rows (twelve patients and the clinician) on screen at once.
        rows = host.locator("#people-list li.person")
        assert await rows.count() == 13
        await snap(host, "console-group", LAPTOP)
        for n in range(13):
            await in_viewport(host, f"#people-list li.person >> nth={n}")
        # ... and inside the console's own box, which scrolls: not one row hidden in it.
        last = await box(host, "#people-list li.person >> nth=12")
        panel = await box(host, "#console")
        assert last["y"] + last["height"] <= panel["y"] + panel["height"] + 0.5, (last, panel)
        await accessible(host, "console")

        # The patient's phone: the speaker large, pages of small tiles, the controls on screen.
        await stage(patient, "call")
        await patient.locator("#remotes .tile").nth(11).wait_for(state="attached")
        assert await patient.locator("#remotes .tile").count() == 12
        for label, size in PHONES.items():
            await patient.set_viewport_size(size)  # type: ignore[arg-type]
            assert await patient.locator("#remotes .tile.speaker").count() == 1
            await expect(patient.locator("#remotes .tile:not([hidden])")).to_have_count(7)
            await shows(patient, ".pager-status", "Page 1 of 2")
            for control in ("#mic", "#camera", "#leave", ".pager"):
                await in_viewport(patient, control)
            await self_view_seen(patient)
            await says(patient, "#self-label", "You")
            # Over the speaker's corner, never over someone else's tile.
            own = await box(patient, ".call-area .self")
            for tile in await patient.locator("#remotes .tile:not(.speaker):not([hidden])").all():
                found = await tile.bounding_box()
                assert found is not None and not overlap(own, dict(found)), (own, found)
            await snap(patient, "group", {label: size})
        await patient.get_by_role("button", name="Next").click()
        await shows(patient, ".pager-status", "Page 2 of 2")
        await snap(patient, "group-page-2", {"390x844": PHONES["390x844"]})
        await patient.set_viewport_size(LAPTOP["1366x768"])  # type: ignore[arg-type]
        # The page lays out again when the width crosses 48rem (a media query's change event,
        # which comes after the resize): wait for the laptop's single page.
        await expect(patient.locator("#remotes .tile:not([hidden])")).to_have_count(12)
        assert await patient.locator(".pager").is_hidden()
        await self_view_seen(patient)
        await snap(patient, "group", LAPTOP)
        await accessible(patient, "group call")
    finally:
        for client in others:
            await client.close()


async def finished(served: ServedNode, body: dict[str, Any]) -> str:
    """A session held through signaling: everyone on the roster joins and is admitted, then the
    clinician ends it. Returns its id."""
    created = await served.create_session(body)
    host = await Client(served.url).connect(token=token_of(created, "c-17"))
    patients = [e["attendee"] for e in body["roster"] if e["role"] == "patient"]
    clients = [await Client(served.url).connect(token=token_of(created, p)) for p in patients]
    for patient in patients:
        assert (await host.call("admit", {"attendee": patient}))["ok"] is True
    assert (await host.call("end"))["ok"] is True
    for client in [*clients, host]:
        await client.close()
    return str(created["session"])


async def no_page_wide_scroll(page: Page) -> None:
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    view = page.viewport_size
    assert view is not None and width <= view["width"], f"the page is {width} px wide in {view}"


async def test_the_staff_pages_fit_and_filter(served: ServedNode, browsers: Browsers) -> None:
    individual = await finished(served, INDIVIDUAL)
    grouped = await finished(served, group(6))
    # A deployment check (homeroom probe) has the longest kind: "Group (therapy group),
    # deployment check (not billed)".
    await served.create_session({**group(3), "check": True})
    page = await browsers.open(f"{served.url}/admin#t={admin_token()}", "admin")
    await page.set_viewport_size(LAPTOP["1366x768"])  # type: ignore[arg-type]
    await shows(page, "#range-status", "Showing")
    for session in (individual, grouped):
        await page.locator(f'.session-attendance[data-session="{session}"]').wait_for()
    await no_page_wide_scroll(page)
    # The session list fits a laptop too: its last column (Audit) is not cut off.
    await shows(page, '[data-table="sessions"]', "deployment check")
    sizes = await page.locator('[data-table="sessions"] .table-wrap').evaluate(
        "w => [w.scrollWidth, w.clientWidth]"
    )
    assert sizes[0] <= sizes[1], f"the session list scrolls sideways at 1366 px: {sizes}"
    # The attendance tables fit a laptop without sideways scrolling, under a sticky header.
    wraps = page.locator(".session-attendance .table-wrap")
    for n in range(await wraps.count()):
        sizes = await wraps.nth(n).evaluate("w => [w.scrollWidth, w.clientWidth]")
        assert sizes[0] <= sizes[1], f"attendance table {n} scrolls sideways: {sizes}"
    header = page.locator(".session-attendance thead th").first
    assert await header.evaluate("th => getComputedStyle(th).position") == "sticky"
    await snap(page, "admin", LAPTOP)
    await page.locator("#attendance").screenshot(path=str(SHOTS / "admin-attendance-1366x768.png"))
    # Every column on demand: then the table may scroll, inside its own box only.
    await page.get_by_label("Show every column").check()
    await page.locator(".session-attendance th.extra").first.wait_for()
    await no_page_wide_scroll(page)
    await page.get_by_label("Show every column").uncheck()

    # Filters: one kind of session, one patient.
    await page.get_by_label("Session kind").select_option("group")
    await page.get_by_role("button", name="Show", exact=True).click()
    await shows(page, "#range-status", "group sessions")
    await page.locator(f'.session-attendance[data-session="{individual}"]').wait_for(
        state="detached"
    )
    assert await page.locator(".session-attendance").count() == 1
    await page.locator("#patient").fill("p-3")
    await page.get_by_role("button", name="Show", exact=True).click()
    await shows(page, "#range-status", "for p-3")
    rows = page.locator(f'.session-attendance[data-session="{grouped}"] tbody tr')
    await says(page, f'.session-attendance[data-session="{grouped}"] tbody th', "p-3")
    assert await rows.count() == 1
    for label, size in PHONES.items():
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        await no_page_wide_scroll(page)
        await snap(page, "admin", {label: size})
    await page.set_viewport_size(LAPTOP["1366x768"])  # type: ignore[arg-type]
    await accessible(page, "admin page")

    console = await browsers.open(f"{served.url}/console#t={admin_token()}", "console")
    await shows(console, "#list-status", "session")
    await snap(console, "staff-console", {**LAPTOP, "390x844": PHONES["390x844"]})
    await console.set_viewport_size(LAPTOP["1366x768"])  # type: ignore[arg-type]
    await no_page_wide_scroll(console)
    await accessible(console, "session list")
