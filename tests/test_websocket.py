"""The connection's transport in the websocket writer: one write per turn of the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from signaling.websocket import CorkedTransport
from tests.signaling_harness import until


@dataclass
class _Pair:
    """A real TCP connection on 127.0.0.1: our end's transport, and what the peer received."""

    transport: asyncio.Transport
    received: bytearray
    writes: list[bytes] = field(default_factory=list)

    async def until_received(self, size: int) -> bytes:
        await until(lambda: len(self.received) >= size)
        return bytes(self.received)


@pytest.fixture
async def pair() -> AsyncIterator[_Pair]:
    loop = asyncio.get_running_loop()
    received = bytearray()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            received.extend(chunk)
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    made = _Pair(transport, received)
    real_write = transport.write

    def counting(data: bytes) -> None:  # counts the writes reaching the real transport
        made.writes.append(bytes(data))
        real_write(data)

    transport.write = counting  # type: ignore[method-assign]
    yield made
    transport.close()
    server.close()
    await server.wait_closed()


async def test_writes_of_one_turn_leave_in_one_write_in_order(pair: _Pair) -> None:
    corked = CorkedTransport(pair.transport, asyncio.get_running_loop())
    frames = [b"\x81\x05hello", b"\x81\x04room", bytearray(b"\x81\x0240")]
    for frame in frames:
        corked.write(frame)
    assert pair.writes == []  # held until the turn ends
    assert await pair.until_received(17) == b"".join(frames)
    assert pair.writes == [b"".join(frames)]
    corked.write(b"\x81\x01x")
    await pair.until_received(20)
    assert len(pair.writes) == 2


async def test_a_close_frame_goes_out_at_once_with_what_waits_before_it(pair: _Pair) -> None:
    corked = CorkedTransport(pair.transport, asyncio.get_running_loop())
    corked.write(b"\x81\x03bye")
    corked.write(b"\x88\x02\x03\xe8")  # close, 1000
    assert pair.writes == [b"\x81\x03bye\x88\x02\x03\xe8"]
    pair.transport.close()  # as aiohttp may do right after the close frame
    await asyncio.sleep(0.05)
    assert bytes(pair.received) == b"\x81\x03bye\x88\x02\x03\xe8"


async def test_what_is_held_when_the_transport_closes_is_dropped_quietly(pair: _Pair) -> None:
    corked = CorkedTransport(pair.transport, asyncio.get_running_loop())
    corked.write(b"\x81\x01x")
    pair.transport.close()
    assert corked.is_closing()
    await asyncio.sleep(0.05)
    assert pair.writes == []


async def test_a_large_batch_is_written_without_waiting_for_the_turn(pair: _Pair) -> None:
    corked = CorkedTransport(pair.transport, asyncio.get_running_loop())
    corked.write(b"\x82\x7f" + bytes(70_000))
    assert len(pair.writes) == 1
    assert corked.get_write_buffer_size() >= 0  # everything else is the real transport's
