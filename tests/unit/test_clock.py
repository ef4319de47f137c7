"""`SystemClock.sleep_until` returns at its deadline, never before it, on either event loop
(uvloop's timers count whole milliseconds and fire up to one early)."""

from __future__ import annotations

import asyncio
import random

import pytest
import uvloop

from userstream.clock import SystemClock


async def _early_wakes(count: int) -> list[int]:
    clock = SystemClock()
    rng = random.Random(11)
    early = []
    for _ in range(count):
        # a deadline a few ms ahead, read at a random point inside a millisecond
        await asyncio.sleep(rng.random() / 1000)
        deadline = clock.now_ms() + rng.randint(2, 4)
        await clock.sleep_until(deadline)
        woke = clock.now_ms()
        if woke < deadline:
            early.append(deadline - woke)
    return early


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sleep_until_never_returns_before_the_deadline(loop: str) -> None:
    run = uvloop.run if loop == "uvloop" else asyncio.run
    assert run(_early_wakes(200)) == []


async def test_sleep_until_a_past_deadline_returns_at_once() -> None:
    clock = SystemClock()
    await asyncio.wait_for(clock.sleep_until(clock.now_ms() - 10_000), 1.0)
