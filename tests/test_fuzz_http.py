"""Fuzz: HTTP request lines, paths, query strings and headers, written as raw bytes over TCP to
one real `homeroom serve` on a real Redis while a clinician and an admitted patient are in a
call on it.

Methods the server serves and odd ones (PROPFIND, TRACE, lower case, a NUL inside); every
route's path with its segments replaced by drawn text (dot segments, ``%00``, non-ASCII,
malformed escapes, 5,000 characters), absolute and asterisk forms; query strings with repeated,
malformed and huge parameters; versions 1.0, 1.1 and made-up ones; headers: Authorization (real
admin and clinician staff tokens, a patient's link token, tampered, wrong scheme, empty,
non-ASCII, huge), cookies, Content-Type against the body, Content-Length and Transfer-Encoding
against the body (shorter, longer, both, negative, not a number, chunks that are not chunks),
Expect, Upgrade, X-Forwarded-For, header names no client may send. Bodies are the REST
models' (tests/test_fuzz_rest.py) or drawn bytes.

After each request: no 5xx (nor any 5xx in the access log), a refused request changed nothing
in the store (sessions, the session's state and ledger, the admin audit log), the call's
connections are still up, the server logged no error. Afterwards it still serves a real join.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import fuzz_world as fw
from tests.fuzzing import ANY_JSON, BATCH, Portal, batch, fuzz_settings, planned, portal, ran
from tests.test_fuzz_frames import weighted
from tests.test_fuzz_rest import ADMIN, CLINICIAN, REQUESTS, SESSION, STRANGER, RestWorld

#: Inputs per run (each one request on a connection of its own).
INPUTS = planned("http")

ROUTES = [
    "/", "/healthz", "/readyz", "/join", "/host", "/console", "/admin", "/program",
    "/static/signaling.js", "/static/", "/metrics", "/socket.io/", "/api/openapi.json",
    "/api/sessions", f"/api/sessions/{SESSION}", f"/api/sessions/{SESSION}/links",
    "/api/links/verify", "/api/attendance", "/api/audit", "/api/audit/verify", "/api/archive",
    "/api/tokens/revoke", "/api/program", f"/api/program/sessions/{SESSION}/link",
    "/api/program/checkins", "/api/program/checkins/k-1", "/api/patients",
    "/api/patients/p-201/link", "/api/checkins", "/api/checkins/report",
]  # fmt: skip
METHOD = weighted(
    (6, st.sampled_from(["GET", "POST"])),
    (2, st.sampled_from(["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"])),
    (1, st.sampled_from(["TRACE", "CONNECT", "PROPFIND", "get", "G\x00ET", "GET GET", "-", ""])),
    (1, st.text(min_size=1, max_size=8)),
)
SEGMENT = st.one_of(
    st.sampled_from([".", "..", "%2e%2e", "%00", "%", "%zz", "%C0%AF", "", "//", "\u00e9", ";x"]),
    st.text(max_size=12),
    st.just("s-x:ev"),
    st.integers(0, 5000).map(lambda n: "a" * n),
)


@st.composite
def path(draw: st.DrawFn) -> str:
    route = draw(st.sampled_from(ROUTES))
    how = draw(st.sampled_from(["as is", "as is", "segment", "append", "odd form"]))
    if how == "segment":
        parts = route.split("/")
        parts[draw(st.integers(1, len(parts) - 1))] = draw(SEGMENT)
        return "/".join(parts)
    if how == "append":
        return route.rstrip("/") + "/" + draw(SEGMENT)
    if how == "odd form":
        return draw(st.sampled_from(["*", "http://x" + route, "//" + route, route + "#x", "x"]))
    return route


QUERY = st.one_of(
    st.just(""),
    st.lists(st.tuples(st.text(max_size=10), ANY_JSON.map(str)), max_size=4).map(
        lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    ),
    st.sampled_from(["%", "a=%zz", "a=1&a=2", "=", "&&", "a", "session=" + SESSION, "t=1;x=2"]),
    st.sampled_from(["start=9999-12-31", "from=0001-01-01&to=9999-12-31", "kind=\u00e9"]),
    st.integers(0, 9000).map(lambda n: "q=" + "x" * n),
)
VERSION = weighted(
    (8, st.just("HTTP/1.1")),
    (1, st.sampled_from(["HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "HTTP/1", "", "http/1.1"])),
)
BEARERS = [ADMIN, CLINICIAN, STRANGER, fw.PATIENT_TOKEN]
AUTHORIZATION = st.one_of(
    st.sampled_from(BEARERS).map(lambda t: "Bearer " + t),
    st.sampled_from(BEARERS).map(lambda t: "Bearer " + t + "x"),
    st.sampled_from(BEARERS).map(lambda t: "bearer  " + t),
    st.sampled_from(
        ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "", "Bearer a.b.c", "Bearer \u00e9"]
    ),
    st.integers(100, 10000).map(lambda n: "Bearer " + "x" * n),
    st.text(max_size=30),
)
CONTENT_TYPES = ["application/json", "text/plain", "multipart/form-data", "json", "", "\u00e9/e"]
CONTENT_TYPES += ["application/x-www-form-urlencoded", "application/json; charset=latin-1"]
CONTENT_TYPE = st.sampled_from(CONTENT_TYPES)
#: Header names and values a client may send, and some it may not.
HEADER = st.one_of(
    st.tuples(st.just("Authorization"), AUTHORIZATION),
    st.tuples(st.just("Cookie"), st.text(max_size=40)),
    st.tuples(st.just("Content-Type"), CONTENT_TYPE),
    st.tuples(st.just("X-Forwarded-For"), st.sampled_from(["1.2.3.4", "::1, x", "", "\u00e9"])),
    st.tuples(st.sampled_from(["Expect", "Upgrade", "Range", "Origin", "Accept-Encoding"]),
              st.sampled_from(["100-continue", "websocket", "h2c", "bytes=0-1", "gzip", "x"])),
    st.tuples(st.sampled_from(["Host", "Content-Length", "Transfer-Encoding"]),
              st.text(max_size=8)),
    st.tuples(st.text(max_size=10), st.text(max_size=20)),
)  # fmt: skip
BODY = st.one_of(
    REQUESTS.map(lambda r: json.dumps(r.body).encode() if r.body is not None else b""),
    st.binary(max_size=64),
    ANY_JSON.map(lambda v: json.dumps(v).encode()),
)
#: How the body is framed: its true length, a shorter or longer one declared, chunked (well or
#: not), Content-Length and chunked both, none at all.
FRAMING = weighted(
    (6, st.just("length")),
    (1, st.sampled_from(["short", "long", "chunked", "bad chunks", "both", "none", "negative"])),
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes | None
    framing: str

    def render(self, resolve: Any) -> tuple[bytes, bool]:
        """The request's bytes, stand-ins resolved by ``resolve``; and whether the server is
        left waiting for more (the client then stops sending)."""
        target = resolve(self.path) + (f"?{resolve(self.query)}" if self.query else "")
        lines = [f"{self.method} {target} {self.version}".rstrip()]
        lines += [f"{resolve(k)}: {resolve(v)}" for k, v in self.headers]
        body, waiting = self.body or b"", False
        if self.body is not None:
            n = len(body)
            if self.framing in ("length", "short", "long", "both", "negative"):
                declared = {"short": n + 40, "long": max(0, n - 2), "negative": -1}
                lines.append(f"Content-Length: {declared.get(self.framing, n)}")
                waiting = self.framing == "short"
            if self.framing in ("chunked", "both"):
                lines.append("Transfer-Encoding: chunked")
                body = f"{n:x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
            if self.framing == "bad chunks":
                lines.append("Transfer-Encoding: chunked")
                body, waiting = b"zz\r\n" + body, True
        lines.append("Connection: close")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogatepass") + body, waiting


REQUEST = st.builds(
    Request,
    METHOD,
    path(),
    QUERY,
    VERSION,
    st.lists(HEADER, max_size=5),
    st.none() | BODY,
    FRAMING,
)


class HttpWorld:
    """Raw requests against the fuzz world's server, with the REST suite's snapshots."""

    def __init__(self, world: fw.World, rest: RestWorld):
        self.world, self.rest = world, rest
        self.port = int(world.node.url.rsplit(":", 1)[1])
        self.inputs = self.accepted = self.unanswered = 0
        self._known: tuple[Any, ...] | None = None

    def resolve(self, text: str) -> str:
        world = self.world
        for stand_in in (SESSION, *world.tokens):
            if stand_in in text:
                value = world.session if stand_in == SESSION else world.tokens[stand_in]
                text = text.replace(stand_in, value)
        return text

    async def send_all(self, requests: list[Request]) -> None:
        for request in requests:
            await self.send(request)

    async def send(self, request: Request) -> None:
        world = self.world
        if not world.connected():
            await world.rebuild()
            self._known = None
        data, waiting = request.render(self.resolve)
        # Only inputs change the store: what the last refused one left is still there.
        before = self._known or await self.rest.snapshot()
        self._known = None
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(data)
            if waiting:
                writer.write_eof()  # the server would wait for the rest
            async with asyncio.timeout(30):
                answer = await reader.read()
        except ConnectionError:
            answer = b""  # the server closed while the request was still being written
        finally:
            writer.close()
        self.inputs += 1
        status = _status(answer)
        assert status is None or status < 500, (request, answer[:300])
        if status is None:
            self.unanswered += 1
        if status is not None and status < 400 and request.method not in ("GET", "HEAD"):
            self.accepted += 1
        elif status is not None and status < 400:
            pass  # a read: its export may be audited, so the audit log may move
        else:
            self._known = await self.rest.snapshot()
            assert self._known == before, f"refused {request!r:.300} changed the store"
        assert world.connected(), f"{request!r:.300} cut the call's connections"
        world.check_logs()


def _status(answer: bytes) -> int | None:
    """The status of the answer's final response (after any 100 Continue); None for none."""
    while answer.startswith(b"HTTP/1.1 100"):
        answer = answer.split(b"\r\n\r\n", 1)[-1]
    if not answer.startswith(b"HTTP/"):
        assert answer == b"", answer[:200]
        return None
    return int(answer.split(b" ", 2)[1])


@pytest.fixture
def loop() -> Iterator[Portal]:
    yield from portal()


@pytest.fixture
def world(loop: Portal, tmp_path: Path, redis_url: str, redis_prefix: str) -> Iterator[fw.World]:
    yield from fw.world(loop, tmp_path, redis_url, redis_prefix)


async def _http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def test_http_lines_paths_and_headers_fuzzed_through_the_real_server(
    loop: Portal, world: fw.World
) -> None:
    http = loop.run(_http())
    raw = HttpWorld(world, RestWorld(world, http))

    @fuzz_settings(INPUTS // BATCH)
    @given(batch(REQUEST))
    def run(requests: list[Request]) -> None:
        loop.run(raw.send_all(requests), timeout=600)

    try:
        run()
    finally:
        loop.run(http.close())
    loop.run(world.real_join())
    ran("http", raw.inputs, f"{raw.accepted} changes accepted, {raw.unanswered} unanswered")
