"""The pages in a group session through a real Janus (in a network namespace): real Chromium
pages (the clinician's, and a shared device carrying two patients) and real aiortc participants,
against a real `homeroom serve` that drives that Janus.

Every endpoint receives every other's audio and video: the aiortc participants count decoded
frames per endpoint; the pages are read through ``window.homeroomMedia.stats()``, which gives,
per remote endpoint, the receiving connection's ``inbound-rtp`` numbers (``framesDecoded`` of
its video, ``packetsReceived`` of its audio), and they must keep growing. Each page uploads one
video stream: on its one publishing connection the ``outbound-rtp`` video entries with bytes
sent all belong to one media source (the camera), sent as simulcast layers (``rid`` h, m, l);
one source counts as one stream, whatever its layers. The aiortc participants upload one video
``outbound-rtp`` each (they do not simulcast).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from media.janus.process import JanusProcess
from media.participant import Participant
from media.synthetic import MediaSpec
from tests.browser import ARTIFACTS, Browsers, poll, says, shows, stage
from tests.served import ServedNode, token_of

#: The aiortc participants' picture: small, so that two cores decode the whole group.
SMALL = MediaSpec(width=160, height=120, fps=10)
#: Generous: two Chromiums, three aiortc peers and Janus on a loaded two-core machine.
WITHIN = 150.0
GROUP: dict[str, Any] = {
    "kind": "group",
    "purpose": "therapy_group",
    "roster": [
        {"attendee": "c-17", "role": "clinician"},
        *({"attendee": f"p-{n}", "role": "patient"} for n in range(1, 7)),
    ],
}


@pytest.fixture
async def forwarded(tmp_path: Path, janus: JanusProcess) -> AsyncIterator[ServedNode]:
    """`homeroom serve` whose group sessions go through ``janus``."""
    node = await ServedNode.start(
        tmp_path,
        name="n-1",
        HOMEROOM_JANUS_URLS=janus.config.url,
        HOMEROOM_JANUS_API_SECRET=janus.config.api_secret,
    )
    yield node
    await node.stop()


def url_of(served: ServedNode, created: dict[str, Any], attendee: str) -> str:
    page = "host" if attendee.startswith("c-") else "join"
    return f"{served.url}/{page}#t={token_of(created, attendee)}"


async def join_page(page: Page) -> None:
    try:
        await stage(page, "setup", within=WITHIN)
    except PlaywrightTimeout:
        shown = await page.evaluate(
            "() => [...document.querySelectorAll('main > [data-stage]:not([hidden])')]"
            ".map(s => s.dataset.stage + ': ' + s.innerText.slice(0, 300))"
        )
        raise AssertionError(f"the device check never showed; the page shows {shown}") from None
    await page.wait_for_function("() => document.getElementById('preview').videoWidth > 0")
    await page.get_by_role("button", name="Join the session").click()


async def endpoint_of(page: Page) -> str:
    found = await poll(lambda: page.evaluate("() => window.homeroomMedia.endpoint()"))
    return str(found)


async def received(page: Page) -> dict[str, dict[str, Any]]:
    """Per remote endpoint: what the page's receiving connection got from it."""
    stats: dict[str, dict[str, Any]] = await page.evaluate("() => window.homeroomMedia.stats()")
    return stats


async def uploads(page: Page) -> dict[str, Any]:
    sent: dict[str, Any] = await page.evaluate("() => window.homeroomMedia.uploads()")
    return sent


def page_gets_everyone(stats: dict[str, dict[str, Any]], others: set[str]) -> bool:
    return others <= set(stats) and all(
        stats[o].get("framesDecoded", 0) >= 3 and stats[o].get("audioPackets", 0) >= 3
        for o in others
    )


async def page_keeps_receiving(page: Page, others: set[str], what: str) -> None:
    """Video frames decoded and audio packets received from each of ``others`` keep growing."""
    before = await poll(
        lambda: _if(received(page), lambda s: page_gets_everyone(s, others)), WITHIN, what
    )

    async def grew() -> bool:
        now = await received(page)
        return all(
            now[o]["framesDecoded"] > before[o]["framesDecoded"] + 5
            and now[o]["audioPackets"] > before[o]["audioPackets"] + 5
            for o in others
        )

    try:
        await poll(grew, WITHIN, what + " (still growing)")
    except AssertionError:
        now, sent = await received(page), await uploads(page)
        raise AssertionError(f"{what}: before {before}, now {now}, uploads {sent}") from None


async def _if(
    value: Any, check: Callable[[dict[str, dict[str, Any]]], bool]
) -> dict[str, dict[str, Any]] | None:
    got = await value
    return got if check(got) else None


def aiortc_gets(member: Participant, others: set[str], frames: int = 3) -> bool:
    return all(
        member.received(o).video_frames >= frames and member.received(o).audio_frames >= frames
        for o in others
    )


async def until(check: Callable[[], bool], what: str, state: Callable[[], Any] = dict) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + WITHIN
    while not check():
        if loop.time() > end:
            raise AssertionError(f"not within {WITHIN} s: {what}: {state()}")
        await asyncio.sleep(0.2)


async def test_group_through_janus_with_pages_and_aiortc_participants(
    forwarded: ServedNode, browsers: Browsers
) -> None:
    created = await forwarded.create_session(GROUP)
    host = await browsers.open(url_of(forwarded, created, "c-17"), "host")
    layers_asked: list[str] = []
    host.on(
        "websocket",
        lambda ws: ws.on(
            "framesent",
            lambda frame: layers_asked.append(str(frame)) if "media_layer" in str(frame) else None,
        ),
    )
    await join_page(host)
    await stage(host, "call")

    # A shared device: p-4's page, with p-5 added on it from p-5's own link.
    device = await browsers.open(url_of(forwarded, created, "p-4"), "device")
    await join_page(device)
    members = [
        Participant(forwarded.url, token=token_of(created, f"p-{n}"), spec=SMALL) for n in (1, 2, 3)
    ]
    try:
        for member in members:
            await member.join()
        await shows(host, "#waiting-list", "p-4")
        for attendee in ("p-1", "p-2", "p-3"):
            await shows(host, "#waiting-list", attendee)
        await host.get_by_role("button", name="Admit everyone waiting").click()
        await says(host, "#present-count", "(5)")
        await stage(device, "call")
        await device.get_by_role("button", name="Add my partner on this device").click()
        await device.get_by_label("Your partner's link").fill(url_of(forwarded, created, "p-5"))
        await device.get_by_role("button", name="Add to this device").click()
        await shows(device, "#partner-message", "is now on this device")
        await says(host, "#present-count", "(6)")

        for page in (host, device):
            assert await page.evaluate("() => window.homeroomMedia.target()") == "server"
        # Through the forwarder the console has no mesh warning.
        assert await host.locator("#mesh-notice").is_hidden()
        pages = {await endpoint_of(host): host, await endpoint_of(device): device}
        endpoints = set(pages) | {m.endpoint for m in members}
        assert len(endpoints) == 5  # six people on five devices

        # Every endpoint receives every other's audio and video.
        for member in members:
            others = endpoints - {member.endpoint}
            await until(
                lambda m=member, o=others: aiortc_gets(m, o),
                f"{member.endpoint} gets all of {sorted(others)}",
                lambda m=member: _connections(m),
            )
        for endpoint, page in pages.items():
            await page_keeps_receiving(page, endpoints - {endpoint}, f"{endpoint} gets all")

        # Each endpoint uploads one video stream, on one publishing connection, and receives
        # everyone on one receiving connection.
        for member in members:
            assert member.forwarded is not None
            assert await member.forwarded.outbound_video_streams() == 1
        for endpoint, page in pages.items():
            sent = await poll(lambda p=page: _layers(p), WITHIN, "simulcast layers sending")
            print(f"{endpoint} uploads: {sent}")
            assert sent["connections"] == 1 and sent["receiving"] == 1, sent
            assert sent["videoSources"] == 1 and sorted(sent["rids"]) == ["h", "l", "m"], sent
            assert sent["made"] == {"publisher": 1, "subscriber": 1}, sent
        # Each page sees four others: the group layout (a large tile, small ones), and the
        # other page's simulcast feed arrives at the layer its tile shows.
        host_endpoint, device_endpoint = pages
        for page, other in ((host, device_endpoint), (device, host_endpoint)):
            await poll(lambda p=page: _count(p, "#remotes .tile.speaker", 1), what="a large tile")
            seen = await poll(lambda p=page, o=other: layer_follows_layout(p, o), WITHIN, "layer")
            print(f"layer received from {other}: {seen}")
        assert layers_asked, "the clinician's page never sent media_layer"

        # p-2 hangs up; p-6 comes: the pages go on without a new connection and receive p-6.
        leaving = members.pop(1)
        gone = leaving.endpoint
        await leaving.close()
        newcomer = Participant(forwarded.url, token=token_of(created, "p-6"), spec=SMALL)
        members.append(newcomer)
        await newcomer.join()
        await shows(host, "#waiting-list", "p-6")
        await host.locator('#waiting-list [data-action="admit"][data-attendee="p-6"]').click()
        endpoints = (endpoints - {gone}) | {newcomer.endpoint}
        for endpoint, page in pages.items():
            await page_keeps_receiving(page, endpoints - {endpoint}, f"{endpoint} gets p-6")
            sent = await uploads(page)
            assert sent["made"] == {"publisher": 1, "subscriber": 1}, sent
        await until(
            lambda: aiortc_gets(newcomer, endpoints - {newcomer.endpoint}),
            "p-6 gets everyone",
            lambda: _connections(newcomer),
        )
        # What the people see: the patient's device on a phone, the clinician on a laptop.
        await snap(device, "group-janus-device", PHONE)
        await snap(host, "group-janus-host", LAPTOP)
    finally:
        for member in members:
            await member.close()


PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


async def snap(page: Page, name: str, size: dict[str, int]) -> None:
    """A screenshot of what ``page`` shows at ``size`` into test-artifacts/pages/, once every
    tile of a connected endpoint has a picture."""
    await page.set_viewport_size(size)  # type: ignore[arg-type]
    # A tile of someone who hung up may stay a moment ("reconnecting", no picture).
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#remotes .tile:not([hidden])"
        '[data-connected="true"] video\')].every(v => v.videoWidth > 0)',
        timeout=WITHIN * 1000,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    label = f"{size['width']}x{size['height']}"
    await page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"))


def _connections(member: Participant) -> dict[str, Any]:
    """What a failing check of an aiortc participant needs to know."""
    media = member.forwarded
    pcs = {} if media is None else {"pub": media.publisher, "sub": media.subscriber}
    return {
        "received": member.stats(),
        "refused": member.media_refused,
        "in_call": member.room.get("admitted"),
        **{
            k: None if pc is None else (pc.signalingState, pc.connectionState)
            for k, pc in pcs.items()
        },
    }


async def _layers(page: Page) -> dict[str, Any] | None:
    """The page's uploads once all three simulcast layers have sent bytes (the browser adds
    the higher ones as its bandwidth estimate grows)."""
    sent = await uploads(page)
    return sent if sent["videoLayers"] == 3 else None


#: A simulcast publisher's three layers from the 960x540 camera: 960, 480, 240 pixels wide.
LARGE, SMALL_TILE = 960, 240


async def layer_follows_layout(page: Page, simulcaster: str) -> dict[str, Any] | None:
    """The page receives ``simulcaster``'s video at the layer its tile asks for: the high layer
    while it is the large tile, the low one while it is a small tile."""
    seen: dict[str, Any] = await page.evaluate(
        """async (who) => ({
          speaker: document.querySelector('#remotes .tile.speaker')?.dataset.endpoint ?? null,
          width: ((await window.homeroomMedia.stats())[who] || {}).videoWidth || 0,
        })""",
        simulcaster,
    )
    wanted = LARGE if seen["speaker"] == simulcaster else SMALL_TILE
    return seen if seen["width"] == wanted else None


async def _count(page: Page, selector: str, n: int) -> bool:
    return bool(await page.locator(selector).count() == n)


async def test_pages_publish_again_when_janus_restarts(
    forwarded: ServedNode, janus: JanusProcess, browsers: Browsers
) -> None:
    """Janus dies and comes back: the server sends media_reset, the pages publish again on
    fresh connections and receive everyone again; the ledger records no leave."""
    created = await forwarded.create_session(GROUP)
    host = await browsers.open(url_of(forwarded, created, "c-17"), "host")
    await join_page(host)
    await stage(host, "call")
    patient = await browsers.open(url_of(forwarded, created, "p-4"), "patient")
    await join_page(patient)
    member = Participant(forwarded.url, token=token_of(created, "p-1"), spec=SMALL)
    try:
        await member.join()
        for attendee in ("p-1", "p-4"):
            await shows(host, "#waiting-list", attendee)
        await host.get_by_role("button", name="Admit everyone waiting").click()
        await says(host, "#present-count", "(3)")
        pages = {await endpoint_of(host): host, await endpoint_of(patient): patient}
        endpoints = set(pages) | {member.endpoint}
        for endpoint, page in pages.items():
            await page_keeps_receiving(page, endpoints - {endpoint}, f"{endpoint} gets all")
        await until(lambda: aiortc_gets(member, endpoints - {member.endpoint}), "p-1 gets all")
        heard = {e: member.received(e).video_frames for e in pages}

        janus.kill()
        await asyncio.to_thread(janus.start)
        await asyncio.to_thread(janus.wait_listening, 60.0)

        for endpoint, page in pages.items():
            made = await poll(lambda p=page: _published_again(p), WITHIN, "published again")
            print(f"{endpoint} after the restart: {made}")
            await page_keeps_receiving(page, endpoints - {endpoint}, f"{endpoint} gets all again")
        await until(
            lambda: all(member.received(e).video_frames > heard[e] + 10 for e in pages),
            "p-1 gets the pages again",
            lambda: _connections(member),
        )
        # A media gap is not a leave: nobody left the call.
        await says(host, "#present-count", "(3)")
    finally:
        await member.close()


async def _published_again(page: Page) -> dict[str, Any] | None:
    """The page's uploads once it publishes and receives on fresh connections."""
    sent = await uploads(page)
    made = sent["made"]
    fresh = made["publisher"] >= 2 and made["subscriber"] >= 2 and sent["videoLayers"] >= 1
    return sent if fresh and sent["connections"] == 1 and sent["receiving"] == 1 else None
