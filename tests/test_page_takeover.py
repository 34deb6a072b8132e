"""One person, one window, in real Chromium: the patient's link opened on a second device asks
"Continue here?"; yes moves the call there (same endpoint, video both ways), the first window
says where it went, and the clinician sees one patient, not two."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.browser import Browsers, says, shoot, shows, stage, video_playing
from tests.served import ServedNode, token_of

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


async def test_a_second_device_asks_then_takes_the_call_over(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(INDIVIDUAL)
    host = await browsers.open(f"{served.url}/host#t={token_of(created, 'c-17')}", "host")
    await stage(host, "setup")
    await host.get_by_role("button", name="Join the session").click()
    await stage(host, "call")
    patient_link = f"{served.url}/join#t={token_of(created, 'p-201')}"
    first = await browsers.open(patient_link, "first")
    await stage(first, "setup")
    await first.get_by_role("button", name="Join the session").click()
    await shows(host, "#waiting-list", "p-201")
    await host.locator('#waiting-list [data-action="admit"][data-attendee="p-201"]').click()
    await video_playing(first)
    endpoint = await first.evaluate("() => window.homeroomMedia.endpoint()")

    # The same link in another browser (its own profile: a second device).
    second = await browsers.open(patient_link, "second")
    await stage(second, "setup")
    await second.get_by_role("button", name="Join the session").click()
    await stage(second, "elsewhere")
    await says(second, 'main > [data-stage="elsewhere"] h1', "Continue here?")
    await shoot(second, "continue-here")
    # Saying no changes nothing: the first window stays in the call.
    await second.get_by_role("button", name="Not now").click()
    await stage(second, "setup")
    await stage(first, "call")

    await second.get_by_role("button", name="Join the session").click()
    await second.get_by_role("button", name="Continue here").click()
    await stage(second, "call")
    assert await second.evaluate("() => window.homeroomMedia.endpoint()") == endpoint
    await stage(first, "ended")
    await says(first, "#ended-title", "You joined from another window")
    assert await first.evaluate("() => document.getElementById('self-view').srcObject") is None
    await video_playing(second)
    await video_playing(host)
    # One patient on the console and one remote picture: nobody sees themselves as a remote.
    assert await host.locator('#people-list li.person[data-attendee="p-201"]').count() == 1
    assert await host.locator("#remotes .tile").count() == 1
    assert await second.locator("#remotes .tile").count() == 1
    await shoot(first, "joined-elsewhere")
