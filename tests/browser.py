"""Real headless Chromium for the page tests: Debian's /usr/bin/chromium driven by Playwright.

Every browser gets a fresh profile directory; camera and microphone are Chromium's fake devices
(a test pattern and a beep), granted without a prompt. Never `playwright install`: the browser
comes from the Debian package (`make test` installs it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Response,
    async_playwright,
    expect,
)
from playwright.async_api import TimeoutError as PlaywrightTimeout

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
#: The pages' socket.io client, copied from web/node_modules by `make assets`.
SOCKETIO_JS = ROOT / "web" / "static" / "vendor" / "socket.io.min.js"
ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
#: Where screenshots go (gitignored): `make test` or `pytest tests/test_pages.py` writes them.
ARTIFACTS = ROOT / "test-artifacts" / "pages"
#: Generous: ICE, DTLS and the first keyframe between browsers on a loaded 2-core machine.
WITHIN = 30.0


class Browsers:
    """The browsers of one test, each its own Chromium with a fresh profile; all closed on exit.

    ``problems`` collects uncaught page errors and Content-Security-Policy violations: a page
    that breaks its own CSP fails the test that loaded it.
    """

    def __init__(self, tmp: Path) -> None:
        if not CHROMIUM.exists():
            raise RuntimeError(
                f"{CHROMIUM} is missing: the page tests need Debian's chromium package "
                "(`make test` installs it as root; otherwise `sudo apt-get install chromium`)"
            )
        if not SOCKETIO_JS.exists():
            raise RuntimeError(f"{SOCKETIO_JS} is missing: run `make assets` (npm ci and a copy)")
        self.tmp = tmp
        self.problems: list[str] = []
        #: Every page's console, by browser name: printed when a test fails.
        self.console: dict[str, list[str]] = {}
        self._playwright: Playwright | None = None
        self._contexts: list[BrowserContext] = []

    async def __aenter__(self) -> Browsers:
        self._playwright = await async_playwright().start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.gather(*(c.close() for c in self._contexts), return_exceptions=True)
        if self._playwright is not None:
            await self._playwright.stop()

    async def open(self, url: str, name: str, *, init: str | None = None) -> Page:
        """A new browser (own profile ``name``) showing ``url``; ``init`` runs in the page
        before its own scripts (to stand in for missing or blocked devices)."""
        assert self._playwright is not None
        context = await self._playwright.chromium.launch_persistent_context(
            str(self.tmp / f"profile-{name}"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport=DESKTOP,  # type: ignore[arg-type]
        )
        self._contexts.append(context)
        if init is not None:
            await context.add_init_script(init)
        page = context.pages[0] if context.pages else await context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"{name}: {error}"))
        page.on("console", lambda message: self._console(name, message))
        page.on("response", lambda response: self._response(name, response))
        await page.goto(url)
        return page

    def _response(self, name: str, response: Response) -> None:
        # A refused API call is part of a test; a page asset that fails to load is a bug.
        if response.status >= 400 and "/api/" not in response.url:
            self.problems.append(f"{name}: {response.status} {response.url}")

    def _console(self, name: str, message: ConsoleMessage) -> None:
        self.console.setdefault(name, []).append(f"{message.type}: {message.text}")
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.problems.append(f"{name}: {message.text}")


@pytest.fixture
async def browsers(tmp_path: Path) -> AsyncIterator[Browsers]:
    """Chromium for one test; fails the test on any CSP or asset problem it saw."""
    async with Browsers(tmp_path) as opened:
        yield opened
        for name, lines in opened.console.items():  # shown by pytest when the test fails
            print(f"--- console of {name}:", *lines, sep="\n")
    assert not opened.problems, opened.problems


async def poll(check: Callable[[], Awaitable[Any]], within: float = WITHIN, what: str = "") -> Any:
    """Poll ``check()`` until it returns something truthy and return that; fail after ``within``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {within} s: {what or check}")
        await asyncio.sleep(0.2)


async def text_of(page: Page, selector: str) -> str:
    return str(await page.locator(selector).inner_text())


async def shows(page: Page, selector: str, words: str, within: float = WITHIN) -> None:
    """Wait until the visible element ``selector`` contains ``words``."""
    locator = page.locator(selector).filter(has_text=words)
    await locator.first.wait_for(state="visible", timeout=within * 1000)


async def says(page: Page, selector: str, words: str, within: float = WITHIN) -> None:
    """Wait until the element ``selector`` says exactly ``words`` (whitespace normalized): the
    state meant, not one that merely contains it ("Live" is not "Live · Locked")."""
    await expect(page.locator(selector)).to_have_text(words, timeout=within * 1000)


async def stage(page: Page, name: str, within: float = WITHIN) -> None:
    """Wait until the page shows its stage ``name`` (check, setup, waiting, call, ended...)."""
    await page.locator(f'main > [data-stage="{name}"]:not([hidden])').first.wait_for(
        state="visible", timeout=within * 1000
    )


_REMOTE_VIDEOS = """n => {
  const videos = [...document.querySelectorAll('#remotes video')];
  return videos.length >= n && videos.every(v => v.videoWidth > 0 && !v.paused);
}"""


async def video_playing(page: Page, tiles: int = 1, within: float = WITHIN) -> None:
    """Remote video really plays: every remote <video> has a picture (``videoWidth > 0``) and
    each connection's inbound video ``framesDecoded`` (from ``getStats()``) keeps increasing."""
    try:
        await page.wait_for_function(_REMOTE_VIDEOS, arg=tiles, timeout=within * 1000, polling=200)
    except PlaywrightTimeout:
        raise AssertionError(f"no remote video playing: {await media_state(page)}") from None

    async def decoded() -> dict[str, int]:
        stats: dict[str, dict[str, Any]] = await page.evaluate("() => window.homeroomMedia.stats()")
        return {endpoint: int(s.get("framesDecoded") or 0) for endpoint, s in stats.items()}

    before = await poll(
        lambda: _all_positive(decoded, tiles), within, "frames decoded from every endpoint"
    )

    async def grew() -> bool:
        now = await decoded()
        return all(now.get(endpoint, 0) > count for endpoint, count in before.items())

    await poll(grew, within, "framesDecoded increasing")


async def media_state(page: Page) -> Any:
    """What a failing media test needs to know: each connection's numbers and each <video>."""
    return await page.evaluate(
        """async () => ({
          stats: await window.homeroomMedia.stats(),
          videos: [...document.querySelectorAll('#remotes video')].map(v => ({
            width: v.videoWidth, paused: v.paused, ready: v.readyState,
            tracks: v.srcObject && v.srcObject.getTracks().map(t => t.kind + ':' + t.readyState),
          })),
        })"""
    )


async def _all_positive(
    decoded: Callable[[], Awaitable[dict[str, int]]], tiles: int
) -> dict[str, int] | None:
    counts = await decoded()
    live = {e: n for e, n in counts.items() if n > 0}
    return live if len(live) >= tiles else None


async def shoot(page: Page, name: str) -> None:
    """Screenshots of ``page`` at phone (360x740) and desktop (1280x800) width, full page,
    into test-artifacts/pages/<name>-phone.png and <name>-desktop.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


class Proxy:
    """A TCP relay standing in for the network between a browser and a server: ``cut()``
    drops every connection through it and refuses new ones until ``restore()``."""

    def __init__(self, target: str) -> None:
        self._host, port = target.removeprefix("http://").rsplit(":", 1)
        self._port = int(port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.down = False
        self.url = ""

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def cut(self) -> None:
        self.down = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        self.down = False

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        self._open |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink, (writer, up_writer)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        both: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for writer in both:
                writer.transport.abort()
                self._open.discard(writer)
