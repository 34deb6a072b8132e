"""Closing an aiortc connection that is already closing by itself, and giving up the wait."""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection

from media.negotiation import close_connection


async def _closing_by_itself() -> tuple[RTCPeerConnection, asyncio.Task[None]]:
    """A connection whose own close() is under way, as when aiortc closes it after the other
    side hung up (its DTLS transports closed)."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    first = asyncio.ensure_future(pc.close())
    await asyncio.sleep(0)  # it has begun: the signaling state is already "closed"
    assert pc.signalingState == "closed" and not first.done()
    return pc, first


async def test_a_cancelled_wait_leaves_the_closing_to_finish() -> None:
    pc, first = await _closing_by_itself()
    waiter = asyncio.ensure_future(close_connection(pc))
    await asyncio.sleep(0)
    waiter.cancel()
    await first  # awaited bare, pc.close() here fails with InvalidStateError
    assert waiter.cancelled()
    assert pc.connectionState == "closed"


async def test_a_wait_that_is_not_cancelled_returns_once_closed() -> None:
    pc, first = await _closing_by_itself()
    await close_connection(pc)
    assert pc.connectionState == "closed"
    await first
