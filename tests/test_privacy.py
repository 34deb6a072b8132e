"""42 CFR Part 2: logs and exports carry pseudonymous ids only, whatever clients send.

A couples session with a shared device runs through the real signaling server while every log
line is rendered by the production JSON pipeline; clients also try to push a name, a phone
number and an e-mail address through every field they can. Nothing of it may be logged.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from config.logging import configure_logging
from rooms.ids import ID_PATTERN
from rooms.store import SessionStore
from tests.signaling_harness import Client, Node, connect_error, create, link, until

NAME, PHONE, EMAIL, PROGRAM = "Maria Lopez", "+1 (555) 201-4477", "maria@example.org", "Opioid IOP"
PII = (NAME, "Maria", "Lopez", PHONE, "555", "201-4477", EMAIL, PROGRAM)
#: What may not appear anywhere in a line, ids and timestamps included.
WHOLE_PII = (NAME, PHONE, "201-4477", EMAIL, PROGRAM)
ID_KEYS = {"attendee", "session", "endpoint", "node", "actor"}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("json", level="debug", stream=out)
    yield out  # tests/conftest.py undoes the configuration


@pytest.fixture
async def node(store: SessionStore, log_lines: io.StringIO) -> AsyncIterator[Node]:
    started = await Node(store).start()
    yield started
    await started.stop()


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key, inner
            yield from walk(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from walk(inner)


async def test_no_patient_data_in_logs_whatever_clients_send(
    node: Node, log_lines: io.StringIO
) -> None:
    state = await create(node.rooms, "couples", "c-17", "p-201", "p-202")
    host = await Client(node.url).connect(token=link(state, "c-17"))
    device = await Client(node.url).connect(token=link(state, "p-201"))
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    assert (await device.call("attach", {"token": link(state, "p-202")}))["ok"] is True
    # Attempts to smuggle identifying data through every kind of field.
    attempts = [
        ("attach", {"token": link(state, "p-202"), "name": NAME}),
        ("admit", {"attendee": NAME}),
        ("mute", {"attendee": EMAIL}),
        (
            "signal",
            {"to": host.endpoint, "description": {"type": "offer", "sdp": f"s={NAME} {PHONE}"}},
        ),
        (f"hello {NAME}", {}),
        ("mark", {"attendee": "p-202", "present": False, "note": f"{NAME} went to get {PHONE}"}),
    ]
    for event, data in attempts:
        reply = await device.call(event, data)
        assert "error" in reply or event == "signal", (event, reply)
        assert not any(p in json.dumps(reply) for p in (NAME, PHONE, EMAIL)), reply
    # A refused connect is logged by its code only, never with what the client sent.
    refusal = await connect_error(node.url, token=f"{NAME} {PHONE} {EMAIL}")
    assert refusal["error"] == "token_invalid"
    assert (await host.call("mute", {"attendee": "p-202"}))["ok"] is True
    assert (await host.call("end"))["ok"] is True
    await until(lambda: bool(device.byes))
    await host.close()
    await device.close()
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines() if line.strip()]
    assert len(lines) >= 6, "the flow should have been logged"
    assert {"joined", "control", "refused", "connect_refused"} <= {line["event"] for line in lines}
    for line in lines:
        text = json.dumps(line)
        assert not any(p in text for p in WHOLE_PII), line
        for key, value in walk(line):
            if key in ID_KEYS and value is not None:
                # Pseudonymous ids only (random ids may hold "555" by chance: that is fine).
                assert re.match(ID_PATTERN, str(value)), (key, value)
            elif key != "timestamp":  # the clock's digits may hold "555" too
                assert not any(p in json.dumps(value) for p in PII), (key, value)
