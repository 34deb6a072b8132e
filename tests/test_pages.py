"""The pages in real headless Chromium against real `homeroom serve` processes: the patient page
and the clinician console reach a live call with video playing, the console's controls reach the
patient's page, a couple shares one device, and a bad link is explained."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page

from media.participant import Participant
from media.synthetic import MediaSpec
from tests.browser import Browsers, Proxy, poll, says, shoot, shows, stage, video_playing
from tests.served import COUPLES, ServedNode, token_of

INDIVIDUAL = {
    "kind": "individual",
    "roster": [
        {"attendee": "c-17", "role": "clinician"},
        {"attendee": "p-201", "role": "patient"},
    ],
}
#: A small picture from the aiortc participant: two cores encode and decode the whole call.
SMALL = MediaSpec(width=320, height=240, fps=15)


@pytest.fixture
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServedNode]:
    """`homeroom serve` on the embedded store; on Redis for tests parametrized with "redis"."""
    env = {}
    if getattr(request, "param", "memory") == "redis":
        env = {
            "REDIS_URL": request.getfixturevalue("redis_url"),
            "HOMEROOM_REDIS_PREFIX": request.getfixturevalue("redis_prefix"),
        }
    node = await ServedNode.start(tmp_path, name="n-1", **env)
    yield node
    await node.stop()


def link(served: ServedNode, created: dict[str, Any], attendee: str) -> str:
    page = "host" if attendee.startswith("c-") else "join"
    return f"{served.url}/{page}#t={token_of(created, attendee)}"


async def device_check(page: Page) -> None:
    """The device check shows the camera preview."""
    await stage(page, "setup")
    await page.wait_for_function("() => document.getElementById('preview').videoWidth > 0")


async def join(page: Page) -> None:
    """Past the device check: the camera preview is live, then Join."""
    await device_check(page)
    await page.get_by_role("button", name="Join the session").click()


async def admit(host: Page, attendee: str) -> None:
    await host.locator(f'#waiting-list [data-action="admit"][data-attendee="{attendee}"]').click()


@pytest.mark.parametrize("served", ["memory", "redis"], indirect=True)
async def test_individual_session_patient_and_clinician_see_each_other(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(INDIVIDUAL)
    host = await browsers.open(link(served, created, "c-17"), "host")
    await join(host)
    await stage(host, "call")
    patient = await browsers.open(link(served, created, "p-201"), "patient")
    await device_check(patient)
    # The level meter hears Chromium's fake microphone (it beeps once a second).
    await patient.wait_for_function("() => document.getElementById('level').value > 0.05")
    await shoot(patient, "join-device-check")
    await join(patient)
    await stage(patient, "waiting")
    await shows(host, "#waiting-list", "p-201")
    await shoot(patient, "waiting-room")
    await admit(host, "p-201")
    await stage(patient, "call")
    await video_playing(patient)
    await video_playing(host)
    # The console rates the connection from getStats(): round trip, packets lost, frame rate.
    await shows(host, "#people-list .quality", "fps")
    await shoot(patient, "call")
    await shoot(host, "host-console")
    assert "#t=" not in patient.url and "#t=" not in host.url


async def test_clinician_mutes_then_removes_and_the_patient_page_says_so(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(INDIVIDUAL)
    host = await browsers.open(link(served, created, "c-17"), "host")
    await join(host)
    patient = await browsers.open(link(served, created, "p-201"), "patient")
    await join(patient)
    # Turned away from the waiting room, the patient is told so; the link still works later.
    await host.locator('#waiting-list [data-action="deny"][data-attendee="p-201"]').click()
    await stage(patient, "ended")
    await shows(patient, "#ended-text", "could not let you in")
    # The console has dropped the denied row before the patient comes back: the Admit below
    # is pressed on the new waiting row, never on the stale one.
    await host.locator('#waiting-list li[data-attendee="p-201"]').wait_for(state="detached")
    await patient.reload()
    await join(patient)
    await stage(patient, "waiting")
    await shows(host, "#waiting-list", "p-201")
    await admit(host, "p-201")
    await stage(patient, "call")
    assert (await sending(patient))["audio"] is True
    # Camera off: nothing sent, and the endpoint is recorded as audio-only until it is back.
    await patient.get_by_role("button", name="Stop video").click()
    assert (await sending(patient))["video"] is False
    await poll(lambda: _logged(served, "modality"), what="modality reported")
    await patient.get_by_role("button", name="Start video").click()
    assert (await sending(patient))["video"] is True

    await person(host, "p-201", "mute").click()
    await shows(patient, "#muted-notice", "muted by your clinician")
    assert (await sending(patient))["audio"] is False
    assert await patient.locator("#mic").is_disabled()
    await patient.get_by_role("button", name="Ask to unmute").click()
    await shows(host, '#people-list li[data-attendee="p-201"]', "asks to unmute")
    await person(host, "p-201", "unmute").click()
    await patient.locator("#muted-notice").wait_for(state="hidden")
    assert (await sending(patient))["audio"] is True

    await host.get_by_role("button", name="Lock", exact=True).click()
    await says(host, "#session-state", "Live · Locked")
    await host.get_by_role("button", name="Unlock").click()
    # "Live" exactly: "Live · Locked" also contains "Live".
    await says(host, "#session-state", "Live")

    await person(host, "p-201", "remove").click()
    await host.locator("#confirm-ok").click()
    await stage(patient, "ended")
    await shows(patient, "#ended-text", "removed you from this session")
    assert await patient.evaluate("() => document.body.dataset.bye") == "removed"
    # Camera and microphone are released.
    assert await patient.evaluate("() => document.getElementById('self-view').srcObject") is None
    await shows(host, "#waiting-empty", "Nobody is waiting")
    # The row leaves with the console's next view, which may come after the patient's bye.
    await host.locator('#people-list li[data-attendee="p-201"]').wait_for(state="detached")
    # ... and the console lists them as removed, not as someone still expected.
    removed = host.locator('#left-list li[data-attendee="p-201"]')
    await removed.wait_for()
    assert await removed.get_attribute("data-departed") == "removed"
    assert await host.locator("#absent-list").is_hidden()


async def test_a_couple_on_one_device_and_the_clinician_ends_the_session(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(COUPLES)
    host = await browsers.open(link(served, created, "c-17"), "host")
    await join(host)
    device = await browsers.open(link(served, created, "p-201"), "device")
    await stage(device, "setup")
    await device.get_by_label("Your first name").fill("Alex")
    sent: list[str] = []
    device.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(str(frame))))
    await join(device)
    await shows(host, "#waiting-list", "p-201")
    await admit(host, "p-201")
    await stage(device, "call")

    # The second partner opens their own link on this device: pasted whole, with a name.
    await device.get_by_role("button", name="Add my partner on this device").click()
    await device.get_by_label("Your partner's link").fill(link(served, created, "p-202"))
    await device.get_by_label("Their first name").fill("Sam")
    await device.get_by_role("button", name="Add to this device").click()
    await shows(device, "#partner-message", "Sam is now on this device")
    await shows(device, "#device-people", "Sam")
    await says(device, "#self-label", "You: Alex and Sam")
    # Names are optional: a partner who typed none is still counted on the label.
    labels = await device.evaluate(
        """async () => {
            const { selfLabel } = await import("/static/js/visit.js");
            return [[], ["Alex"], [undefined, "Sam"], [undefined, undefined]].map(selfLabel);
        }"""
    )
    assert labels == ["You", "You: Alex", "You: Sam and 1 more", "You: 2 people"]

    # The console shows both partners; the clinician confirms the one the device added.
    await shows(host, '#people-list li[data-attendee="p-202"]', "not confirmed yet")
    await person(host, "p-202", "present").click()
    await person(host, "p-202", "absent").wait_for()
    for attendee in ("p-201", "p-202"):
        await host.locator(f'#people-list li[data-attendee="{attendee}"]').wait_for()
    await shows(host, "#remotes figcaption", "p-201 & p-202")
    await video_playing(device)
    await video_playing(host)
    await shoot(device, "call-shared-device")
    await shoot(host, "host-console-couples")
    # Names typed on the device never leave it: not in what it sent, not on the console.
    assert any("attach" in frame for frame in sent)
    assert not [frame for frame in sent if "Alex" in frame or "Sam" in frame]
    assert "Alex" not in await host.content() and "Sam" not in await host.content()

    await host.get_by_role("button", name="Mute all").click()
    await shows(device, "#muted-notice", "muted by your clinician")
    for attendee in ("p-201", "p-202"):
        await shows(host, f'#people-list li[data-attendee="{attendee}"]', "muted by you")

    await host.get_by_role("button", name="End for all").click()
    await host.locator("#confirm-ok").click()
    for page in (device, host):
        await stage(page, "ended")
        await shows(page, "#ended-text", "The session has ended")
    # Thanks are for the patients; the clinician is told where the attendance is.
    await shows(device, "#ended-text", "Thank you for attending")
    await shows(host, "#ended-text", "Its attendance is on the Sessions page")
    assert "Thank you" not in await host.locator("#ended-text").inner_text()
    # The mute's notice ended with the call: nothing of it stays above the goodbye.
    assert await device.locator("#notice").inner_text() == ""


GROUP = {
    "kind": "group",
    "purpose": "therapy_group",
    "roster": [
        {"attendee": "c-17", "role": "clinician"},
        {"attendee": "c-18", "role": "clinician"},
        *({"attendee": f"p-{n}", "role": "patient"} for n in (1, 2, 3)),
    ],
}


async def listed(page: Page, selector: str) -> list[str]:
    """The attendee ids of the rows of the console's list ``selector``."""
    rows = page.locator(f"{selector} li.person")
    return list(await rows.evaluate_all("rows => rows.map((r) => r.dataset.attendee)"))


async def test_the_console_tells_who_left_from_who_has_not_come(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(GROUP)
    host = await browsers.open(link(served, created, "c-17"), "host")
    await join(host)
    await stage(host, "call")
    await says(host, "#absent-count", "(4)")
    patient = await browsers.open(link(served, created, "p-1"), "p-1")
    await join(patient)
    await shows(host, "#waiting-list", "p-1")
    await admit(host, "p-1")
    await stage(patient, "call")
    await host.locator('#people-list li.person[data-attendee="p-1"]').wait_for()
    assert await listed(host, "#absent-list") == ["c-18", "p-2", "p-3"]
    await says(host, "#console-message", "p-1 is in the session.")

    # p-1 hangs up: the console says they left, and when; they are not "not here yet". Its
    # message no longer says they are in the session.
    await patient.locator("#leave").click()
    await stage(patient, "ended")
    await says(host, "#console-message", "p-1 left the session.")
    left = host.locator('#left-list li[data-attendee="p-1"]')
    await left.wait_for()
    assert await left.get_attribute("data-departed") == "left"
    await shows(host, "#left-list", "left at")
    stamp = await left.locator("time").get_attribute("datetime")
    assert stamp is not None
    dropped = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - dropped) < timedelta(minutes=2), stamp
    assert await listed(host, "#people-list") == ["c-17"]
    assert await listed(host, "#absent-list") == ["c-18", "p-2", "p-3"]
    await says(host, "#left-count", "(1)")
    await says(host, "#absent-count", "(3)")
    await shoot(host, "host-console-left")

    # A co-facilitator who opens the console later is told the same: the server keeps it.
    second = await browsers.open(link(served, created, "c-18"), "c-18")
    await join(second)
    await stage(second, "call")
    await second.locator('#left-list li[data-attendee="p-1"]').wait_for()
    assert await listed(second, "#absent-list") == ["p-2", "p-3"]


async def test_links_that_do_not_work_are_explained(served: ServedNode, browsers: Browsers) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    expired = await served.create_session(
        {**INDIVIDUAL, "starts_at": past.isoformat(), "planned_minutes": 5}
    )
    page = await browsers.open(link(served, expired, "p-201"), "patient")
    await stage(page, "problem")
    await shows(page, "#problem-text", "This link has expired")
    assert "#t=" not in page.url  # the token left the address bar
    await shoot(page, "link-expired")

    later = datetime.now(UTC) + timedelta(days=2)
    early = await served.create_session({**INDIVIDUAL, "starts_at": later.isoformat()})
    await page.goto(link(served, early, "p-201"))
    await stage(page, "problem")
    await shows(page, "#problem-text", "This link is not active yet")
    await shows(page, "#problem-text", "Your session starts")

    await page.goto(f"{served.url}/join#t={'x' * 40}")
    await shows(page, "#problem-text", "This link is not valid")


def person(host: Page, attendee: str, action: str) -> Locator:
    """A control of one attendee's row on the clinician console."""
    return host.locator(f'#people-list [data-action="{action}"][data-attendee="{attendee}"]')


async def sending(page: Page) -> dict[str, bool]:
    sent: dict[str, bool] = await page.evaluate("() => window.homeroomMedia.sending()")
    return sent


async def test_the_patient_page_resumes_after_a_network_drop(
    served: ServedNode, browsers: Browsers
) -> None:
    network = await Proxy(served.url).start()
    try:
        created = await served.create_session(INDIVIDUAL)
        host = await browsers.open(link(served, created, "c-17"), "host")
        await join(host)
        patient = await browsers.open(
            link(served, created, "p-201").replace(served.url, network.url), "patient"
        )
        await join(patient)
        await shows(host, "#waiting-list", "p-201")
        await admit(host, "p-201")
        await video_playing(patient)
        endpoint = await patient.evaluate("() => window.homeroomMedia.endpoint()")

        network.cut()
        await shows(patient, "#connection", "Reconnecting")
        await shows(host, "#remotes figcaption", "reconnecting")
        await shoot(patient, "call-reconnecting")
        network.restore()
        await shows(patient, "#connection", "Reconnected")
        # The same endpoint, still in the call: a resume, not a new join through the waiting room.
        assert await patient.evaluate("() => window.homeroomMedia.endpoint()") == endpoint
        await stage(patient, "call")
        await host.locator("#remotes figcaption .badge.warn").wait_for(state="hidden")
        assert await host.locator("#waiting-list li").count() == 0
        await video_playing(host)
        await video_playing(patient)
    finally:
        await network.stop()


async def test_a_browser_and_an_aiortc_participant_share_a_call(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(INDIVIDUAL)
    host = await browsers.open(link(served, created, "c-17"), "host")
    await join(host)
    await stage(host, "call")
    patient = Participant(served.url, token=token_of(created, "p-201"), spec=SMALL)
    try:
        await patient.join()
        await shows(host, "#waiting-list", "p-201")
        await admit(host, "p-201")
        await video_playing(host)
        clinician = await host.evaluate("() => window.homeroomMedia.endpoint()")
        first = await poll(lambda: _frames(patient, clinician), what="aiortc decodes the page")
        await poll(lambda: _frames(patient, clinician, more_than=first), what="and keeps decoding")
        # The console's controls reach the aiortc endpoint like any page.
        await person(host, "p-201", "mute").click()
        await poll(lambda: _clinician_muted(patient), what="the participant sees its mute")
    finally:
        await patient.close()


async def _frames(patient: Participant, remote: str, more_than: int = 0) -> int:
    frames = patient.received(remote).video_frames
    return frames if frames > more_than else 0


async def _clinician_muted(patient: Participant) -> bool:
    mine = next(e for e in patient.room["endpoints"] if e["endpoint"] == patient.endpoint)
    return any(a["clinician_muted"] for a in mine["attendees"])


#: Stand-ins for a phone without a camera, and for a person who blocked camera and microphone.
NO_CAMERA = """
const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (c) => c && c.video
  ? Promise.reject(new DOMException("no camera", "NotFoundError")) : real(c);
"""
BLOCKED = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("blocked", "NotAllowedError"));
"""


async def test_without_a_camera_the_patient_joins_with_sound_only(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(INDIVIDUAL)
    blocked = await browsers.open(link(served, created, "p-201"), "blocked", init=BLOCKED)
    await shows(blocked, "#media-problem", "camera and microphone are blocked")
    await blocked.get_by_role("button", name="Try again").wait_for()
    await shoot(blocked, "join-blocked")
    await blocked.close()

    host = await browsers.open(link(served, created, "c-17"), "host")
    await join(host)
    patient = await browsers.open(link(served, created, "p-201"), "patient", init=NO_CAMERA)
    await stage(patient, "setup")
    await shows(patient, "#media-problem", "could not find a camera")
    await patient.get_by_role("button", name="Join with sound only").click()
    await shows(host, "#waiting-list", "p-201")
    await admit(host, "p-201")
    # Without a camera the page still receives the clinician's picture.
    await video_playing(patient)
    assert await patient.locator("#camera").inner_text() == "No camera"
    # ... and the server recorded the endpoint as audio-only (it decides the billing modifier).
    await poll(lambda: _logged(served, "modality"), what="modality reported")


async def _logged(served: ServedNode, what: str) -> bool:
    """Whether the server logged a control event ``what`` (its JSON log, pseudonymous ids)."""
    entries = [json.loads(line) for line in served.lines if line.startswith("{")]
    return any(e.get("event") == "control" and e.get("what") == what for e in entries)


async def test_a_reload_resumes_and_a_second_tab_takes_the_call_over(
    served: ServedNode, browsers: Browsers
) -> None:
    created = await served.create_session(INDIVIDUAL)
    host = await browsers.open(link(served, created, "c-17"), "host")
    await join(host)
    patient = await browsers.open(link(served, created, "p-201"), "patient")
    await stage(patient, "setup")
    await patient.get_by_label("Your first name").fill("Alex")
    await join(patient)
    await shows(host, "#waiting-list", "p-201")
    await admit(host, "p-201")
    await stage(patient, "call")
    endpoint = await patient.evaluate("() => window.homeroomMedia.endpoint()")

    # A reload in the call comes straight back to the same endpoint: no waiting room, and the
    # name typed on this device is still shown.
    await patient.reload()
    await stage(patient, "call")
    assert await patient.evaluate("() => window.homeroomMedia.endpoint()") == endpoint
    await says(patient, "#self-label", "You: Alex")
    await video_playing(patient)
    await video_playing(host)

    # A duplicated tab shares sessionStorage, so it resumes the same endpoint; the first tab
    # then says where the call went instead of joining a second time.
    stored = await patient.evaluate("() => ({...sessionStorage})")
    second = await patient.context.new_page()
    await second.goto(f"{served.url}/join")
    await second.evaluate(
        "(s) => Object.entries(s).forEach(([k, v]) => sessionStorage.setItem(k, v))", stored
    )
    await second.reload()
    await stage(second, "call")
    assert await second.evaluate("() => window.homeroomMedia.endpoint()") == endpoint
    await stage(patient, "ended")
    await says(patient, "#ended-title", "You joined from another window")
    await video_playing(second)
