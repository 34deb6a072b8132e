"""Fuzz: every client socket.io event, payloads drawn from its pydantic model in
``signaling.protocol.CLIENT_EVENTS`` (what it accepts and what it should refuse), sent by a
clinician and by an admitted patient to one real `homeroom serve` on a real Redis.

After each input: an answer in the protocol's shape (``ok`` or a known error code), a refused
input left the session's state and ledger as they were, an accepted one is one the model
accepts, and the server logged no error. Afterwards the server still serves a real join.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.protocol import CLIENT_EVENTS
from tests import fuzz_world as fw
from tests.fuzzing import BATCH, Portal, batch, fuzz_settings, fuzzed, planned, portal, ran

#: Inputs per run (each one event through the real server); the other fuzz suites add theirs.
INPUTS = planned("events")

#: Values that mean something to the server, mixed into what the models' schemas draw.
HINTS: dict[str, st.SearchStrategy[Any]] = {
    "attendee": st.sampled_from([*fw.ROSTER, "p-999", "c-17:ev", "e-" + "x" * 9]),
    "to": st.sampled_from([fw.HOST_EP, fw.PATIENT_EP, "e-nobody0"]),
    "token": st.sampled_from(
        [fw.PARTNER_TOKEN, fw.PATIENT_TOKEN, fw.HOST_TOKEN, fw.OTHER_TOKEN, "x" * 16]
    ),
}
#: One event and its payload.
EVENTS = st.one_of(
    [st.tuples(st.just(event), fuzzed(model, HINTS)) for event, model in CLIENT_EVENTS.items()]
)


@pytest.fixture
def loop() -> Iterator[Portal]:
    yield from portal()


@pytest.fixture
def world(loop: Portal, tmp_path: Path, redis_url: str, redis_prefix: str) -> Iterator[fw.World]:
    yield from fw.world(loop, tmp_path, redis_url, redis_prefix)


def test_every_client_event_fuzzed_through_the_real_server(loop: Portal, world: fw.World) -> None:
    one_event = st.tuples(st.sampled_from(["host", "patient"]), EVENTS)

    @fuzz_settings(INPUTS // BATCH)
    @given(batch(one_event))
    def run(inputs: list[tuple[str, tuple[str, Any]]]) -> None:
        loop.run(world.events([(sender, *event) for sender, event in inputs]))

    run()
    loop.run(world.real_join())
    ran("events", world.inputs, f"{world.accepted} accepted, {world.rebuilds} sessions")
