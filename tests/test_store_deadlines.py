"""One timer bounding every store call (rooms.store.deadlines), on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from rooms.store.deadlines import Deadlines

WINDOW = 0.05


async def bounded(deadlines: Deadlines, seconds: float) -> str:
    """Sleep ``seconds`` as a bounded call; "expired" when the deadline cut it short."""
    call = deadlines.start()
    try:
        await asyncio.sleep(seconds)
        return "done"
    except asyncio.CancelledError:
        if call.expired():
            return "expired"
        raise
    finally:
        call.done = True


async def test_calls_past_their_deadline_are_cut_short_and_the_others_are_not() -> None:
    deadlines = Deadlines(WINDOW)
    results = await asyncio.gather(
        bounded(deadlines, 0), bounded(deadlines, 10), bounded(deadlines, WINDOW / 5)
    )
    assert results == ["done", "expired", "done"]
    # The timer is armed again for calls that start later, after the queue emptied.
    assert await bounded(deadlines, 10) == "expired"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_calls_started_at_different_times_each_get_the_whole_window() -> None:
    deadlines = Deadlines(WINDOW)
    loop = asyncio.get_running_loop()
    first = asyncio.create_task(bounded(deadlines, 10))
    await asyncio.sleep(WINDOW * 0.6)
    started = loop.time()
    second = asyncio.create_task(bounded(deadlines, 10))
    assert await first == "expired"
    assert not second.done()  # its own deadline is later
    assert await second == "expired"
    assert loop.time() - started >= WINDOW * 0.9


async def test_a_call_its_caller_cancels_stays_cancelled() -> None:
    deadlines = Deadlines(10)
    call = asyncio.create_task(bounded(deadlines, 10))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_an_outer_timeout_is_not_taken_for_the_deadline() -> None:
    deadlines = Deadlines(WINDOW)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(WINDOW / 5):
            await bounded(deadlines, 10)


def test_a_store_used_on_a_new_event_loop_is_still_bounded() -> None:
    deadlines = Deadlines(WINDOW)

    left: list[asyncio.Task[str]] = []

    async def abandoned() -> None:
        left.append(asyncio.create_task(bounded(deadlines, 10)))  # running when its loop ends
        await asyncio.sleep(0)

    asyncio.run(abandoned())
    assert asyncio.run(bounded(deadlines, 10)) == "expired"


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Deadlines(0)
