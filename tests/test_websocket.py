"""The websocket loop under every connection (signaling.websocket), on a bare socket.io server.

Real sockets throughout: a python-socketio client where a page would be, and a raw TCP client
that speaks just enough websocket to misbehave (never answer pings, never read).
"""

from __future__ import annotations

import asyncio
import base64
import importlib.metadata
import inspect
import os
from collections.abc import AsyncIterator
from typing import Any

import engineio
import pytest
import socketio
from aiohttp import web

from signaling.websocket import MAX_BUFFERED, ServerWebSocket, frame, use_server_websocket
from tests.redis_server import free_port
from tests.signaling_harness import until
from tests.test_lock import pinned

PING_INTERVAL, PING_TIMEOUT = 1, 1


class Bare:
    """A socket.io server served through the module's websocket loop, recording its events."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            transports=["websocket"],
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            async_handlers=False,  # as the signaling server runs
        )
        use_server_websocket(self.sio)
        self.connected: list[str] = []
        self.gone: list[str] = []
        self.echoes: list[Any] = []
        self.sio.on("connect", lambda sid, environ, auth=None: self.connected.append(sid))
        self.sio.on("disconnect", lambda sid, *reason: self.gone.append(sid))

        async def echo(sid: str, data: Any) -> Any:
            self.echoes.append(data)
            return data

        self.sio.on("echo", echo)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        self.sio.attach(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def bare() -> AsyncIterator[Bare]:
    server = Bare()
    await server.start()
    yield server
    await server.stop()


class RawClient:
    """A websocket client over a plain TCP connection, written by hand so that it can behave
    badly: it only opens the Engine.IO connection and reads what it is told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.headers = ""

    @classmethod
    async def open(cls, port: int, extensions: str | None = None) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if extensions:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        client = cls(reader, writer)
        client.headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        assert client.headers.startswith("http/1.1 101"), client.headers
        return client

    async def read_text(self) -> str | None:
        """The next text frame's payload; None when the server closed the websocket."""
        head = await self.reader.readexactly(2)
        n = head[1] & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        payload = await self.reader.readexactly(n)
        if head[0] & 0x0F == 0x8:
            return None
        assert head[0] == 0x81, head  # FIN + text: the server sends nothing else
        return payload.decode()

    async def next_not_ping(self) -> str | None:
        """The next frame that is not an Engine.IO ping (which it leaves unanswered)."""
        while (text := await self.read_text()) == "2":
            pass
        return text

    def send_text(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        assert len(data) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.writer.write(bytes((0x81, 0x80 | len(data))) + mask + masked)

    async def closed_by_server(self) -> bool:
        """Read on until the server closes the websocket (a close frame) or the connection."""
        try:
            while await self.read_text() is not None:
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        return True

    def close(self) -> None:
        self.writer.close()


def test_frames_carry_their_payload_length_as_rfc_6455_spells_it() -> None:
    assert frame(b"") == b"\x81\x00"
    assert frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert frame(b"x" * 65535)[:4] == b"\x81\x7e\xff\xff"
    assert frame(b"x" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")
    assert frame(b"\x00\x01", 0x82) == b"\x82\x02\x00\x01"


async def test_messages_of_every_frame_length_arrive_whole_and_in_order(bare: Bare) -> None:
    client = socketio.AsyncClient(reconnection=False)
    received: list[str] = []
    client.on("text", received.append)
    await client.connect(bare.url, transports=["websocket"], wait_timeout=5)
    sizes = [0, 1, 100, 125, 126, 127, 1000, 65535, 65536, 300_000]
    (sid,) = bare.connected
    for n in sizes:
        await bare.sio.emit("text", "é" * (n // 2) + "x" * (n % 2), to=sid)
    await until(lambda: len(received) == len(sizes))
    assert [len(text.encode()) for text in received] == [n // 2 * 2 + n % 2 for n in sizes]
    # And the other way: the server reads what the client sends, and acknowledges it.
    assert await client.call("echo", {"n": 1}, timeout=5) == {"n": 1}
    await client.disconnect()
    await until(lambda: bare.gone == [sid])


async def test_a_client_that_stops_answering_pings_is_dropped(bare: Bare) -> None:
    raw = await RawClient.open(bare.port)
    opened = await raw.read_text()
    assert opened is not None and opened.startswith("0{")
    raw.send_text("40")
    await until(lambda: len(bare.connected) == 1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    # It reads what it is sent but never answers: dropped about a ping cycle later.
    await asyncio.wait_for(raw.closed_by_server(), 4 * (PING_INTERVAL + PING_TIMEOUT))
    assert loop.time() - start >= PING_INTERVAL
    await until(lambda: bare.gone == bare.connected)
    raw.close()


async def test_a_client_that_stops_reading_is_cut_off_without_holding_up_the_sender(
    bare: Bare,
) -> None:
    raw = await RawClient.open(bare.port)  # and never reads again
    await until(lambda: len(bare.sio.eio.sockets) == 1)
    ((eio_sid, socket),) = bare.sio.eio.sockets.items()
    chunk = "x" * (256 * 1024)
    loop = asyncio.get_running_loop()
    sent, start = 0, loop.time()
    while not socket.queue.closed and sent < 256:  # at most 64 MiB
        await bare.sio.eio.send(eio_sid, chunk)
        sent += 1
    # Cut off once the kernel's buffers and MAX_BUFFERED are full; no send ever waited.
    assert socket.queue.closed, f"still open after {sent} sends"
    assert sent * len(chunk) > MAX_BUFFERED
    assert loop.time() - start < 5
    await until(lambda: socket.closed and eio_sid not in bare.sio.eio.sockets)
    # A send to the gone client is dropped quietly.
    await bare.sio.eio.send(eio_sid, "late")
    raw.close()


async def test_websocket_compression_is_not_offered(bare: Bare) -> None:
    raw = await RawClient.open(bare.port, extensions="permessage-deflate; client_max_window_bits")
    assert "sec-websocket-extensions" not in raw.headers
    raw.close()


@pytest.mark.parametrize("junk", ["", "z", "9", "\u0664\u0660"])
async def test_a_packet_that_is_not_engine_io_closes_the_connection(bare: Bare, junk: str) -> None:
    """One warning line and a clean close (tests/test_malformed_frames.py checks the lines on
    the signaling server, whose wire.Server also checks the socket.io packets inside)."""
    raw = await RawClient.open(bare.port)
    assert (await raw.read_text() or "").startswith("0{")
    raw.send_text("40")
    assert (await raw.read_text() or "").startswith("40{")
    raw.send_text('421["echo",{"a":1}]')
    assert await asyncio.wait_for(raw.next_not_ping(), 5) == '431[{"a":1}]'
    raw.send_text(junk)
    assert await asyncio.wait_for(raw.closed_by_server(), 5)
    raw.close()
    await until(lambda: bare.gone == bare.connected)


async def test_connections_end_as_disconnects_when_the_server_stops() -> None:
    server = Bare()
    await server.start()
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(server.url, transports=["websocket"], wait_timeout=5)
    (sid,) = server.connected
    await server.stop()
    assert server.gone == [sid]
    await client.disconnect()


async def test_a_client_that_answers_pings_stays_connected_for_many_ping_cycles(
    bare: Bare,
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(bare.url, transports=["websocket"], wait_timeout=5)
    await asyncio.sleep(3 * (PING_INTERVAL + PING_TIMEOUT))  # it sends nothing but pongs
    assert not bare.gone
    assert await client.call("echo", "still here", timeout=5) == "still here"
    await client.disconnect()


async def _connected_raw(bare: Bare) -> tuple[RawClient, str, Any]:
    raw = await RawClient.open(bare.port)
    assert (await raw.read_text() or "").startswith("0{")
    raw.send_text("40")
    assert (await raw.read_text() or "").startswith("40{")
    ((eio_sid, socket),) = bare.sio.eio.sockets.items()
    return raw, eio_sid, socket


async def test_what_is_sent_to_a_connection_leaves_before_it_is_closed(bare: Bare) -> None:
    raw, eio_sid, socket = await _connected_raw(bare)
    socket.queue.write('42["last",1]')
    await bare.sio.disconnect(bare.connected[0])
    assert await raw.next_not_ping() == '42["last",1]'
    assert await raw.next_not_ping() == "41"  # socket.io's disconnect
    assert await asyncio.wait_for(raw.closed_by_server(), 5)
    await until(lambda: bare.gone == bare.connected and eio_sid not in bare.sio.eio.sockets)
    raw.close()


async def test_packets_sent_together_leave_in_one_write_and_in_order(bare: Bare) -> None:
    raw, eio_sid, socket = await _connected_raw(bare)
    transport = socket.queue._transport
    writes: list[bytes] = []
    write = transport.write
    transport.write = lambda data: (writes.append(data), write(data))[1]
    socket.queue.write_texts(['42["welcome",{"a":1}]', '42["room",' + "9" * 200 + "]"])
    assert len(writes) == 1
    assert await raw.next_not_ping() == '42["welcome",{"a":1}]'
    assert await raw.next_not_ping() == '42["room",' + "9" * 200 + "]"  # a 16-bit length
    await bare.sio.disconnect(bare.connected[0])
    assert await raw.next_not_ping() == "41"
    assert await asyncio.wait_for(raw.closed_by_server(), 5)
    await until(lambda: eio_sid not in bare.sio.eio.sockets)
    sent = len(writes)
    socket.queue.write_texts(['42["late",1]'])  # closed: nothing written, and no error
    assert len(writes) == sent
    raw.close()


def test_python_engineio_is_the_release_the_loop_was_measured_against() -> None:
    """signaling.websocket replaces python-engineio's websocket loop (kept: it saves more than
    15% of the server's CPU per join lifecycle, docs/performance.md). The library is pinned
    exactly; before moving the pin, run this file and `python -m bench --only overrides`."""
    assert importlib.metadata.version("python-engineio") == pinned("python-engineio")


def test_the_engineio_internals_the_loop_relies_on_are_there() -> None:
    """What signaling.websocket reaches into, by name: a rename upgrades into a failure here,
    not into connections that silently take python-engineio's own loop."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    assert sio.eio._async["websocket"] is engineio.async_drivers.aiohttp.WebSocket
    use_server_websocket(sio)
    assert sio.eio._async["websocket"] is ServerWebSocket
    socket = engineio.async_socket.AsyncSocket(sio.eio, "sid-1")
    for name in ("queue", "connected", "upgraded", "receive", "close", "sid", "server"):
        assert hasattr(socket, name), name
    assert list(inspect.signature(socket.close).parameters) == ["wait", "abort", "reason"]
    assert hasattr(sio.eio.reason, "TRANSPORT_CLOSE")
    assert inspect.iscoroutinefunction(engineio.async_drivers.aiohttp.WebSocket.__call__)
