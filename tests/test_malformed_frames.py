"""Malformed Engine.IO / socket.io frames: one warning line and a clean close, never an
error-level line or a traceback; and every connect gets an answer.

A raw websocket client (tests/test_websocket.py) sends what no socket.io client would, to a
real signaling node on each store backend.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from rooms.store import SessionStore
from tests.signaling_harness import Client, Node, connect_error, create, link
from tests.test_websocket import RawClient

DEEP = 5000


@pytest.fixture
async def node(store: SessionStore) -> AsyncIterator[Node]:
    started = await Node(store).start()
    yield started
    await started.stop()


def send(raw: RawClient, text: str) -> None:
    """One masked text frame of any length (RawClient.send_text takes short ones only)."""
    data, mask = text.encode(), os.urandom(4)
    n = len(data)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    raw.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


async def _answer_then_close(raw: RawClient) -> list[str]:
    """Every frame the server sends until it closes the websocket (pings left unanswered)."""
    frames: list[str] = []
    async with asyncio.timeout(10):
        try:
            while (text := await raw.next_not_ping()) is not None:
                frames.append(text)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
    return frames


BEFORE_CONNECT = [
    "",  # an empty Engine.IO packet
    "4",  # a MESSAGE with no socket.io packet in it
    "4\u0663",  # a socket.io type in non-ASCII digits
    "\u0664\u0660",  # an Engine.IO type in non-ASCII digits
    "4\u0662" + '["hello"]',
    "42" + "[" * DEEP + '"x"' + "]" * DEEP,
]
BAD_CONNECTS = [
    '40{"v":1,"token":',  # cut short
    "40" + "[" * DEEP + "]" * DEEP,
    '40{"v":' + "[" * DEEP + "]" * DEEP + "}",
]


def _errors(records: list[logging.LogRecord], lines: list[dict[str, object]]) -> list[object]:
    bad: list[object] = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    bad += [line for line in lines if line["log_level"] in ("error", "critical")]
    bad += [r.getMessage() for r in records if r.exc_info]
    return bad


@pytest.mark.parametrize("text", BEFORE_CONNECT + BAD_CONNECTS)
async def test_a_malformed_frame_is_one_warning_and_a_clean_close(
    node: Node, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    raw = await RawClient.open(node.port)
    opened = await raw.read_text()
    assert opened is not None and opened.startswith("0{")
    with capture_logs() as lines:
        send(raw, text)
        frames = await _answer_then_close(raw)
    raw.close()
    assert _errors(caplog.records, lines) == []
    warnings = [line for line in lines if line["log_level"] == "warning"]
    assert [line["event"] for line in warnings] == ["malformed_packet"], lines
    if text.startswith("40"):
        # Every connect is answered: a connect_error naming the code, then the close.
        assert frames and frames[0].startswith('44{"message":"invalid_message"'), frames
    else:
        assert frames == []


async def test_a_malformed_frame_from_a_joined_endpoint_closes_it_as_a_disconnect(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    raw = await RawClient.open(node.port)
    await raw.read_text()
    send(raw, '40{"v":1,"token":"' + link(state, "p-201") + '"}')
    with capture_logs() as lines:
        send(raw, "42" + "[" * DEEP + "]" * DEEP)
        await _answer_then_close(raw)
    raw.close()
    assert _errors(caplog.records, lines) == []
    assert "malformed_packet" in [line["event"] for line in lines]
    # The server is still serving: a real join works.
    host = await Client(node.url).connect(token=link(state, "c-17"))
    await host.close()


@pytest.mark.parametrize("suffix", [":ev", ":spec"])
async def test_a_resume_credential_naming_another_key_is_refused(
    node: Node, suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    session, endpoint, secret = patient.welcome["resume"].split(".")
    with capture_logs() as lines:
        refused = await connect_error(node.url, resume=f"{session}{suffix}.{endpoint}.{secret}")
    assert refused["error"] == "token_invalid"
    assert _errors(caplog.records, lines) == []
    await patient.close()
