"""`userstream.timerfd`: a wait that ends at a wall-clock instant, polled by the loop, and
that gives its descriptor back however the wait ends."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import uvloop

from userstream import timerfd
from userstream.clock import SystemClock

pytestmark = pytest.mark.skipif(not timerfd.AVAILABLE, reason="timerfd is Linux's")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _wakes(count: int) -> tuple[list[int], int]:
    """Nanoseconds from each deadline to the wake (negative: early), and the descriptors
    opened meanwhile and not closed."""
    before = _open_fds()
    after = []
    for index in range(count):
        deadline = time.time_ns() + 1_000_000 + index * 37_000  # 1-2 ms ahead, any phase
        assert await timerfd.sleep_until_ns(deadline)
        after.append(time.time_ns() - deadline)
    return after, _open_fds() - before


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_wait_never_ends_before_its_deadline_and_keeps_no_descriptor(loop: str) -> None:
    run = uvloop.run if loop == "uvloop" else asyncio.run
    after, kept = run(_wakes(30))
    assert min(after) >= 0
    assert kept == 0


async def test_a_past_deadline_returns_at_once() -> None:
    started = time.monotonic()
    assert await timerfd.sleep_until_ns(time.time_ns() - 10**9)
    assert time.monotonic() - started < 1.0


async def test_a_cancelled_wait_closes_its_descriptor_and_its_reader() -> None:
    before = _open_fds()
    waiter = asyncio.ensure_future(timerfd.sleep_until_ns(time.time_ns() + 60 * 10**9))
    await asyncio.sleep(0.01)
    assert _open_fds() == before + 1  # the armed timerfd
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert _open_fds() == before


async def test_without_timerfd_the_clock_waits_the_loop_s_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timerfd, "_CALLS", None)
    assert not await timerfd.sleep_until_ns(time.time_ns() + 10**9)  # refused at once
    clock = SystemClock()
    deadline = clock.now_ms() + 3
    await clock.sleep_until(deadline)
    assert clock.now_ms() >= deadline


async def test_the_loop_serves_other_work_while_a_wait_is_armed() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.ensure_future(ticker())
    await timerfd.sleep_until_ns(time.time_ns() + 30_000_000)
    task.cancel()
    assert ticks >= 5
