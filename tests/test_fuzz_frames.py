"""Fuzz: raw Engine.IO / socket.io frames over a real websocket, and long-polling requests,
to one real `homeroom serve` on a real Redis while a clinician and an admitted patient are in
a call on it.

Each input is a connection of its own, written byte by byte (tests/test_websocket.py's raw
client): a handshake whose query may name another connection's session id or an unsupported
version, then maybe a connect (the waiting partner's real link, or an auth no client sends),
then frames: every Engine.IO and socket.io packet type, in ASCII and other digits,
namespaces, acknowledgement ids (huge, negative, non-ASCII), binary attachments and their
placeholders, nesting thousands deep, frames cut short (the socket.io text, or the websocket
frame itself), huge frames beyond the server's limit, binary, fragmented, unmasked and
reserved websocket frames; then a close. A polling input is an HTTP request to the socket.io
path with drawn method, query (transport, version, session id, JSONP index) and body.

After each input: the handshake or request got no 5xx; the server ended the connection once
asked; every connect in it got an answer; a connection that was refused throughout left the
session's state and ledger exactly as they were, and an accepted one (the partner's link),
once closed, left no live endpoint and recorded events of that person only; the call's own
connections are still up; the server logged no error. Afterwards it still serves a real join.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.protocol import CLIENT_EVENTS, MAX_EVENT_BYTES
from tests import fuzz_world as fw
from tests.fuzzing import ANY_JSON, BATCH, Portal, batch, fuzz_settings, planned, portal, ran

#: Inputs per run (each one connection or request through the real server).
INPUTS = planned("frames")

#: The server's largest websocket message (python-engineio's max_http_buffer_size).
LARGEST = 4 * MAX_EVENT_BYTES
#: Stand-in for the Engine.IO session id of the patient's live connection.
LIVE_SID = "\x00live-sid"
PARTNER = "p-202"

# --- strategies -----------------------------------------------------------------------------


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices``, each drawn about in proportion to its weight."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


#: Digits of other scripts where a packet type or an ack id goes (``int()`` reads them all).
ODD_DIGITS = st.sampled_from(["\u0664", "\u0662", "\u0663", "\u09e8", "\uff14", "\u00b2", "x", ""])
EIO_TYPE = st.sampled_from("0123456") | ODD_DIGITS
SIO_TYPE = st.sampled_from("0123456") | ODD_DIGITS
NAMESPACE = st.sampled_from(["", "", "", "/,", "/admin,", "/x,", "/\u00e9,", "/" + "n" * 300 + ","])
ACK = st.sampled_from(["", "", "0", "7", "\u0663", "1" * 101, "-1", "1e3", " 1"]) | st.integers(
    0, 2**70
).map(str)
ATTACHMENTS = st.sampled_from(["", "", "1-", "0-", "2-", "-", "99999999999999999999-", "\u0661-"])
EVENT_NAME = (
    st.sampled_from(sorted(CLIENT_EVENTS))
    | st.sampled_from(["connect", "disconnect", "connect_error", "newListener", "message", "*"])
    | st.text(max_size=12)
)
PLACEHOLDER = st.fixed_dictionaries(
    {"_placeholder": st.just(True) | ANY_JSON, "num": st.integers(-2, 4) | ANY_JSON}
)
TOKEN = st.sampled_from([fw.PARTNER_TOKEN, fw.PARTNER_TOKEN, "x" * 20, ""]) | ANY_JSON
AUTH = st.fixed_dictionaries(
    {"v": st.just(1) | ANY_JSON},
    optional={"token": TOKEN, "resume": ANY_JSON | st.just("s.e.x"), "takeover": ANY_JSON},
)


def _deep(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth  # never closed


DEEP = st.builds(_deep, st.integers(1, 6000), st.sampled_from(["list", "object", "open"]))
HUGE = st.integers(LARGEST - 64, LARGEST + 4096).map(lambda n: '["hello",{"x":"' + "x" * n + '"}]')
#: The JSON after a socket.io packet's header: an event, its arguments and placeholders,
#: a connect's auth, nesting, anything at all.
SIO_DATA = st.one_of(
    st.tuples(EVENT_NAME, st.lists(ANY_JSON | PLACEHOLDER, max_size=3)).map(
        lambda t: json.dumps([t[0], *t[1]])
    ),
    AUTH.map(json.dumps),
    ANY_JSON.map(json.dumps),
    DEEP,
    st.text(max_size=30),
    st.just(""),
)


@st.composite
def sio_packet(draw: st.DrawFn) -> str:
    kind = draw(SIO_TYPE)
    attachments = draw(ATTACHMENTS) if kind in ("5", "6") or draw(st.booleans()) else ""
    text = kind + attachments + draw(NAMESPACE) + draw(ACK) + draw(SIO_DATA)
    if draw(st.integers(0, 9)) == 0:  # cut short somewhere
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    return text


#: An Engine.IO text packet: mostly a MESSAGE carrying a socket.io packet.
EIO_TEXT = weighted(
    (6, sio_packet().map(lambda s: "4" + s)),
    (1, st.tuples(EIO_TYPE, st.text(max_size=20)).map("".join)),
    (1, st.sampled_from(["2", "3", "3probe", "5", "6", "1", "0", ""])),
)


@dataclass(frozen=True)
class Frame:
    """One websocket frame: ``how`` it is framed and its payload."""

    how: str
    data: bytes


FRAME = weighted(
    (6, st.builds(Frame, st.just("text"), EIO_TEXT.map(str.encode))),
    (
        2,
        st.builds(
            Frame,
            st.sampled_from(["binary", "fragmented", "unmasked", "reserved", "ping", "rsv", "cut"]),
            EIO_TEXT.map(str.encode) | st.binary(max_size=40),
        ),
    ),
    (1, st.builds(Frame, st.just("text"), st.binary(max_size=20))),  # not UTF-8
)
#: Huge frames are costly (the server reads each whole): one input in about fifty.
FRAMES = weighted(
    (49, st.lists(FRAME, min_size=1, max_size=3)),
    (1, HUGE.map(lambda text: [Frame("text", ("4" + text).encode())])),
)

QUERY_PART = st.sampled_from(
    ["", "", "", "&sid=" + LIVE_SID, "&sid=nobody", "&EIO=3", "&j=1", "&b64=1", "&transport=x"]
)


@dataclass(frozen=True)
class Socket:
    """A websocket connection: extra query, an optional connect (its auth), then frames."""

    query: str
    connect: Any
    frames: list[Frame]


SOCKETS = st.builds(
    Socket,
    QUERY_PART,
    weighted((2, st.none()), (1, AUTH), (1, st.just({"v": 1, "token": fw.PARTNER_TOKEN}))),
    FRAMES,
)


@dataclass(frozen=True)
class Poll:
    """A long-polling request: its method, query and body."""

    method: str
    query: str
    body: bytes | None


#: What a polling request's query may hold (``sid`` of the patient's live websocket too).
POLL_PARTS = ["EIO=4", "EIO=3", "EIO=\u0664", "transport=polling", "transport=websocket"]
POLL_PARTS += ["t=x1", f"sid={LIVE_SID}", "sid=nobody", "j=0", "j=x", "b64=1", "transport=polling"]
POLL_QUERY = st.lists(st.sampled_from(POLL_PARTS), max_size=4).map("&".join)
POLLS = st.builds(
    Poll,
    st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "DELETE", "HEAD", "PATCH"]),
    POLL_QUERY,
    st.none() | st.lists(EIO_TEXT, min_size=1, max_size=3).map(lambda p: "\x1e".join(p).encode()),
)
#: Three websocket connections to one polling request.
INPUT = weighted((3, SOCKETS), (1, POLLS))


# --- sending ---------------------------------------------------------------------------------


def _frame(how: str, data: bytes) -> bytes:
    """``data`` framed as a client would (masked), or as ``how`` says a client must not."""
    first = {"binary": 0x82, "reserved": 0x83, "ping": 0x89, "rsv": 0xC1}.get(how, 0x81)
    if how == "ping":
        data = data[:125]  # a control frame's limit
    if how == "fragmented":
        half = len(data) // 2
        return _masked(0x01, data[:half]) + _masked(0x80, data[half:])
    if how == "unmasked":
        return _head(first, len(data), masked=False) + data
    framed = _masked(first, data)
    if how == "cut":  # the frame's length says more than follows
        return framed[: max(2, len(framed) - 1 - len(data) // 2)]
    return framed


def _head(first: int, n: int, *, masked: bool = True) -> bytes:
    bit = 0x80 if masked else 0
    if n < 126:
        return bytes((first, bit | n))
    if n < 1 << 16:
        return bytes((first, bit | 126)) + n.to_bytes(2, "big")
    return bytes((first, bit | 127)) + n.to_bytes(8, "big")


def _masked(first: int, data: bytes) -> bytes:
    mask = os.urandom(4)
    key = (mask * (len(data) // 4 + 1))[: len(data)]
    body = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")
    return _head(first, len(data)) + mask + body


CLOSE = _masked(0x88, b"")


class Connection:
    """A websocket over a plain TCP connection, framed by hand (see the module doc)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        #: Every text the server sent, in order.
        self.texts: list[str] = []

    @classmethod
    async def open(cls, port: int, query: str) -> tuple[int, Connection]:
        """The handshake; the status it got, and the connection (closed unless 101)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET /socket.io/?EIO=4&transport=websocket{query} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        connection = cls(reader, writer)
        if status != 101:
            writer.close()
        return status, connection

    async def next_text(self) -> str | None:
        """The next text the server sends (None once it closed); pings are answered."""
        while True:
            head = await self.reader.readexactly(2)
            n = head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(n)
            if head[0] & 0x0F == 0x8:
                return None
            if head[0] == 0x8A:
                continue  # the pong to a ping of ours
            assert head[0] == 0x81, head  # FIN + text: the server sends nothing else
            text = payload.decode()
            self.texts.append(text)
            if text != "2":
                return text

    async def until_closed(self) -> None:
        try:
            while await self.next_text() is not None:
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def close(self) -> None:
        self.writer.close()


# --- the world ---------------------------------------------------------------------------


class FrameWorld:
    """Raw connections and polling requests against the fuzz world's server."""

    def __init__(self, world: fw.World, http: aiohttp.ClientSession):
        self.world, self.http = world, http
        self.port = int(world.node.url.rsplit(":", 1)[1])
        self.inputs = self.connections = self.polls = self.accepted = 0
        self.accepted_since_rebuild = 0
        self._known: tuple[Any, ...] | None = None

    def resolve(self, text: str) -> str:
        """``text`` with the stand-ins replaced: tokens, and the live connection's id."""
        world = self.world
        for stand_in in (fw.PARTNER_TOKEN, LIVE_SID):
            escaped = json.dumps(stand_in)[1:-1]  # as it is written inside JSON
            if stand_in in text or escaped in text:
                value = world.tokens[stand_in] if stand_in != LIVE_SID else self._live_sid()
                text = text.replace(escaped, value).replace(stand_in, value)
        return text

    def _live_sid(self) -> str:
        patient = self.world.patient
        return str(patient.sio.eio.sid) if patient is not None else "gone"

    async def send_all(self, inputs: list[Socket | Poll]) -> None:
        for one in inputs:
            await self.send(one)

    async def send(self, one: Socket | Poll) -> None:
        world = self.world
        if not world.connected() or self.accepted_since_rebuild >= REBUILD_AFTER:
            await world.rebuild()
            self.accepted_since_rebuild = 0
            self._known = None
        # Only inputs change the session: what the last refused one left is still there.
        before = self._known or await world.snapshot()
        self._known = None
        async with asyncio.timeout(60):
            if isinstance(one, Poll):
                accepted = await self._poll(one)
            else:
                accepted = await self._socket(one)
        self.inputs += 1
        if accepted:
            self.accepted += 1
            self.accepted_since_rebuild += 1
            await self._settled(before)
        else:
            self._known = await world.snapshot()
            assert self._known == before, f"refused {one!r:.300} changed the session"
        assert world.connected(), f"{one!r:.300} cut the call's connections"
        world.check_logs()

    async def _poll(self, poll: Poll) -> bool:
        self.polls += 1
        url = self.world.node.url + "/socket.io/?" + self.resolve(poll.query)
        async with self.http.request(poll.method, url, data=poll.body) as response:
            body = await response.read()
        assert response.status < 500, (poll, response.status, body[:200])
        return False

    async def _socket(self, socket: Socket) -> bool:
        self.connections += 1
        status, conn = await Connection.open(self.port, self.resolve(socket.query))
        assert status < 500, (socket.query, status)
        if status != 101:
            return False
        try:
            opened = await conn.next_text()
            assert opened is not None and opened.startswith("0{"), opened
            if socket.connect is not None:
                conn.writer.write(
                    _masked(0x81, ("40" + self.resolve(json.dumps(socket.connect))).encode())
                )
                # Every connect is answered: connected, or refused with a code (a welcome
                # and the room come before the socket.io answer).
                answer = await conn.next_text()
                while answer is not None and answer.startswith("42"):
                    answer = await conn.next_text()
                assert answer is not None and answer[:2] in ("40", "44"), answer
            cut = False
            for frame in socket.frames:
                conn.writer.write(_frame(frame.how, self.resolve_bytes(frame.data)))
                cut = frame.how == "cut"
                if cut:
                    break
            # The server may have closed already (it does on a malformed frame).
            with contextlib.suppress(OSError):
                if cut:
                    conn.writer.write_eof()  # what follows would be read as the frame's rest
                else:
                    conn.writer.write(CLOSE)
            await conn.until_closed()
        finally:
            conn.close()
        return any(t.startswith(("40{", "40/")) and '"sid"' in t for t in conn.texts)

    def resolve_bytes(self, data: bytes) -> bytes:
        try:
            text = data.decode()
        except UnicodeDecodeError:
            return data
        return self.resolve(text).encode()

    async def _settled(self, before: tuple[Any, ...]) -> None:
        """After an accepted connection closed: its endpoint no longer live (the disconnect
        is written after the close, so wait for it), and every event it added names the
        partner alone."""
        world = self.world
        live = {world.host.endpoint, world.patient.endpoint} if world.connected() else set()
        key = f"{world.prefix}:s:{world.session}"
        async with asyncio.timeout(30):
            while True:
                doc = json.loads(await world.redis.hget(key, "doc"))
                connected = {e for e, v in doc["endpoints"].items() if v["connected"]}
                if connected <= live:
                    break
                await asyncio.sleep(0.01)
        last = before[2][0][0] if before[2] else "0"
        added = await world.redis.xrange(f"{key}:ev", min=f"({last}")
        people = {json.loads(fields["e"]).get("attendee") for _, fields in added}
        assert people <= {PARTNER}, people


#: Accepted connections leave an endpoint each (disconnected, within its grace): a fresh
#: session after this many keeps the room's views small.
REBUILD_AFTER = 40


@pytest.fixture
def loop() -> Iterator[Portal]:
    yield from portal()


@pytest.fixture
def world(loop: Portal, tmp_path: Path, redis_url: str, redis_prefix: str) -> Iterator[fw.World]:
    # A grace longer than the run: no disconnected endpoint expires during it (which would
    # change the session while a later input is being checked).
    yield from fw.world(
        loop, tmp_path, redis_url, redis_prefix, HOMEROOM_RECONNECT_GRACE_SECONDS="3600"
    )


async def _http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))


def test_raw_frames_and_polling_fuzzed_through_the_real_server(
    loop: Portal, world: fw.World
) -> None:
    http = loop.run(_http())
    frames = FrameWorld(world, http)

    @fuzz_settings(INPUTS // BATCH)
    @given(batch(INPUT))
    def run(inputs: list[Socket | Poll]) -> None:
        loop.run(frames.send_all(inputs), timeout=600)

    try:
        run()
    finally:
        loop.run(http.close())
    loop.run(world.real_join())
    ran(
        "frames",
        frames.inputs,
        f"{frames.connections} websockets, {frames.polls} polling requests, "
        f"{frames.accepted} connects accepted",
    )
