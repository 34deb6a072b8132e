"""The store's forwarder pins, on both backends: one pin per session that every node agrees on,
changed only by a caller that saw the pin it replaces."""

from __future__ import annotations

import asyncio

from rooms.ids import SessionId
from rooms.store import SessionStore

S = SessionId("s-pinned")


async def test_first_pin_wins_and_later_ones_get_it(store: SessionStore) -> None:
    assert await store.forwarder_pin(S) is None
    assert await store.pin_forwarder(S, "janus-a", replacing=None) == "janus-a"
    # Another node that also saw no pin chose differently: it is told the pin that holds.
    assert await store.pin_forwarder(S, "janus-b", replacing=None) == "janus-a"
    assert await store.forwarder_pin(S) == "janus-a"
    assert await store.forwarder_pin(SessionId("s-other")) is None


async def test_racing_pins_agree_on_one(store: SessionStore) -> None:
    names = [f"janus-{i}" for i in range(8)]
    held = await asyncio.gather(*(store.pin_forwarder(S, n, replacing=None) for n in names))
    assert len(set(held)) == 1 and held[0] in names
    assert await store.forwarder_pin(S) == held[0]


async def test_failover_replaces_only_the_pin_it_saw(store: SessionStore) -> None:
    await store.pin_forwarder(S, "janus-a", replacing=None)
    # Two nodes find janus-a dead at once and choose a new instance: the first one wins.
    assert await store.pin_forwarder(S, "janus-b", replacing="janus-a") == "janus-b"
    assert await store.pin_forwarder(S, "janus-c", replacing="janus-a") == "janus-b"
    assert await store.forwarder_pin(S) == "janus-b"


async def test_unpin_needs_the_pin_it_saw(store: SessionStore) -> None:
    await store.pin_forwarder(S, "janus-a", replacing=None)
    assert await store.pin_forwarder(S, None, replacing="janus-b") == "janus-a"
    assert await store.pin_forwarder(S, None, replacing="janus-a") is None
    assert await store.forwarder_pin(S) is None
    assert await store.pin_forwarder(S, "janus-b", replacing=None) == "janus-b"
