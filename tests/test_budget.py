"""Per-sender budgets: a participant who floods is refused with rate_limited; the one it
floods stays connected. Real socket.io clients against a real signaling node."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from rooms.ids import SessionId
from rooms.store import SessionStore
from signaling.budget import Budget, BudgetLimits, Budgets
from tests.signaling_harness import Client, Node, create, link, until
from tests.test_websocket import RawClient

OFFER = {"type": "offer", "sdp": "v=0\r\n" + "a=x-pad:" + "x" * (48 * 1024 - 64) + "\r\n"}
FLOOD = 250


#: Small enough that no machine is fast enough to send a flood within them.
LIMITS = BudgetLimits(
    events_per_second=5, event_burst=50, bytes_per_second=64 * 1024, byte_burst=512 * 1024
)


@pytest.fixture
async def node(store: SessionStore) -> AsyncIterator[Node]:
    started = await Node(store).start()
    started.server.sio.budgets = Budgets(LIMITS)
    yield started
    await started.stop()


async def _flood(sender: Client, to: str, count: int, event: str = "signal") -> list[Any]:
    """Send ``count`` events without waiting between them; every answer, in order."""
    answers: list[Any] = [None] * count
    done = asyncio.Event()

    def answered(i: int) -> Any:
        def record(answer: Any) -> None:
            answers[i] = answer
            if all(a is not None for a in answers):
                done.set()

        return record

    payload = {"to": to, "description": OFFER} if event == "signal" else {}
    for i in range(count):
        await sender.sio.emit(event, payload, callback=answered(i))
    await asyncio.wait_for(done.wait(), 60)
    return answers


async def _connected(node: Node, session: str, endpoint: str) -> bool:
    state = await node.rooms.get_session(SessionId(session))
    return state.endpoints[endpoint].connected  # type: ignore[index]


async def test_a_flood_of_offers_refuses_the_sender_and_keeps_a_slow_receiver(
    node: Node,
) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    # The clinician is a client that reads its first frames and then nothing more.
    host_raw = await _raw_join(node, link(state, "c-17"))
    host_endpoint = host_raw[1]
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    _send(host_raw[0], '421["admit",{"attendee":"p-201"}]')
    await until(lambda: patient.room["admitted"], within=10)
    with capture_logs() as lines:
        answers = await _flood(patient, host_endpoint, FLOOD)
    refused = [a for a in answers if a.get("error") == "rate_limited"]
    relayed = [a for a in answers if a.get("ok")]
    assert refused and relayed and len(refused) + len(relayed) == FLOOD, answers[:3]
    assert "slow_client_dropped" not in [line["event"] for line in lines]
    # A line for a run of refusals, not one each.
    assert [line["event"] for line in lines].count("rate_limited") < len(refused) / 4
    assert await _connected(node, state.spec.id, host_endpoint)
    host_raw[0].close()
    await patient.close()


def _send(raw: RawClient, text: str) -> None:
    raw.send_text(text)


async def _raw_join(node: Node, token: str) -> tuple[RawClient, str]:
    """Join as a raw client (the token is too long for one short frame: sent in parts is not
    websocket; so a long frame is written by hand)."""
    import os

    raw = await RawClient.open(node.port)
    await raw.read_text()
    data, mask = ('40{"v":1,"token":"' + token + '"}').encode(), os.urandom(4)
    head = bytes((0x81, 0x80 | 126)) + len(data).to_bytes(2, "big")
    raw.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    while True:
        text = await raw.next_not_ping()
        assert text is not None
        if text.startswith('42["welcome"'):
            return raw, json.loads(text[2:])[1]["endpoint"]


async def test_a_flood_to_a_reading_receiver_is_refused_too(node: Node) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    host = await Client(node.url).connect(token=link(state, "c-17"))
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"]
    await until(lambda: patient.room["admitted"])
    answers = await _flood(patient, host.endpoint, FLOOD)
    relayed = sum(1 for a in answers if a.get("ok"))
    assert 0 < relayed < FLOOD
    assert all(a.get("ok") or a["error"] == "rate_limited" for a in answers)
    await until(lambda: len(host.signals) == relayed, within=20)
    assert all(s["description"] == OFFER for s in host.signals)
    assert host.sio.connected and await _connected(node, state.spec.id, host.endpoint)
    await host.close()
    await patient.close()


async def test_every_event_is_charged_not_only_signal(node: Node) -> None:
    state = await create(node.rooms, "individual", "c-17", "p-201")
    patient = await Client(node.url).connect(token=link(state, "p-201"))
    answers = await _flood(patient, "", 100, event="hello")
    assert any(a.get("error") == "rate_limited" for a in answers)
    assert patient.sio.connected
    await patient.close()


def test_a_budget_refills_with_time_and_a_refusal_costs_nothing() -> None:
    limits = BudgetLimits(events_per_second=2, event_burst=2, bytes_per_second=100, byte_burst=100)
    budget = Budget(limits, now=0.0)
    assert budget.charge(10, 0.0) == 0.0 and budget.charge(10, 0.0) == 0.0
    assert budget.charge(10, 0.0) == pytest.approx(0.5)  # out of events
    assert budget.charge(10, 0.5) == 0.0  # one event back after half a second
    assert budget.charge(90, 10.0) == 0.0
    assert budget.charge(20, 10.0) > 0  # over the bytes
    assert budget.charge(10, 10.0) == 0.0  # the refusal took nothing
    assert budget.charge(500, 20.0) == 0.0  # larger than the burst: the whole burst, when full
    assert budget.charge(1, 20.0) > 0
