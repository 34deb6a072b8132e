"""The pages in real headless Chromium against real `homeroom serve` processes: the patient page
and the clinician console reach a live call with video playing, the console's controls reach the
patient's page, a couple shares one device, and a bad link is explained."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser import Browsers, shoot, shows, stage, video_playing
from tests.served import ServedNode, token_of

INDIVIDUAL = {
    "kind": "individual",
    "roster": [
        {"attendee": "c-17", "role": "clinician"},
        {"attendee": "p-201", "role": "patient"},
    ],
}
COUPLES = {
    "kind": "couples",
    "roster": [
        {"attendee": "c-17", "role": "clinician"},
        {"attendee": "p-201", "role": "patient"},
        {"attendee": "p-202", "role": "patient"},
    ],
}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServedNode]:
    node = await ServedNode.start(tmp_path, name="n-1")
    yield node
    await node.stop()


@pytest.fixture
async def browsers(tmp_path: Path) -> AsyncIterator[Browsers]:
    async with Browsers(tmp_path) as opened:
        yield opened
    assert not opened.problems, opened.problems


def link(served: ServedNode, created: dict[str, Any], attendee: str) -> str:
    page = "host" if attendee.startswith("c-") else "join"
    return f"{served.url}/{page}#t={token_of(created, attendee)}"


async def join(page: Page) -> None:
    """Past the device check: the camera preview is live, then Join."""
    await stage(page, "setup")
    await page.wait_for_function("() => document.getElementById('preview').videoWidth > 0")
    await page.get_by_role("button", name="Join the session").click()


async def admit(host: Page, attendee: str) -> None:
    await host.locator(f'#waiting-list [data-action="admit"][data-attendee="{attendee}"]').click()


async def test_individual_session_patient_and_clinician_see_each_other(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(INDIVIDUAL)
    host = await browsers.open(link(served, created, "c-17"), "host")
    await join(host)
    await stage(host, "call")
    patient = await browsers.open(link(served, created, "p-201"), "patient")
    await stage(patient, "setup")
    await shoot(patient, "join-device-check")
    await join(patient)
    await stage(patient, "waiting")
    await shows(host, "#waiting-list", "p-201")
    await shoot(patient, "waiting-room")
    await admit(host, "p-201")
    await stage(patient, "call")
    await video_playing(patient)
    await video_playing(host)
    await shoot(patient, "call")
    await shoot(host, "host-console")
