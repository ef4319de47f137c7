"""The scheduler: time order, cancellation that releases what a timer holds, compaction."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest
import uvloop

from userstream.clock import ManualClock, SystemClock
from userstream.server.scheduler import Scheduler

START = 1_000_000


class Owner:
    """Something a timer's callback keeps alive (a connection, in the server)."""

    def __init__(self, fired: list[int]) -> None:
        self.fired = fired

    def on_due(self, due_ms: int) -> None:
        self.fired.append(due_ms)


async def test_timers_fire_in_time_order_with_their_due_time() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    fired: list[tuple[str, int]] = []
    scheduler.call_at(START + 30, lambda due: fired.append(("c", due)))
    scheduler.call_at(START + 10, lambda due: fired.append(("a", due)))
    scheduler.call_at(START + 10, lambda due: fired.append(("b", due)))
    assert scheduler.run_due() == 0
    await clock.advance(100)
    assert scheduler.run_due() == 3
    assert fired == [("a", START + 10), ("b", START + 10), ("c", START + 30)]
    assert len(scheduler) == 0


async def test_only_timers_due_by_now_fire() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    fired: list[int] = []
    scheduler.call_at(START + 10, fired.append)
    scheduler.call_at(START + 11, fired.append)
    await clock.advance(10)
    assert scheduler.run_due() == 1
    assert fired == [START + 10]
    assert scheduler.pending == 1


async def test_cancelled_timer_never_fires_and_releases_its_callback() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    fired: list[int] = []
    owner = Owner(fired)
    timer = scheduler.call_at(START + 10, owner.on_due)
    alive = weakref.ref(owner)
    del owner
    timer.cancel()
    timer.cancel()  # twice is harmless
    gc.collect()
    assert alive() is None  # the heap entry remains, but no longer holds the owner
    assert timer.cancelled
    assert scheduler.pending == 0
    await clock.advance(10)
    assert scheduler.run_due() == 0
    assert fired == []
    assert len(scheduler) == 0


async def test_cancel_after_firing_changes_nothing() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    fired: list[int] = []
    timer = scheduler.call_at(START, fired.append)
    scheduler.call_at(START + 5, fired.append)
    assert scheduler.run_due() == 1
    timer.cancel()
    assert not timer.cancelled
    assert scheduler.pending == 1
    await clock.advance(5)
    assert scheduler.run_due() == 1


def test_heap_is_compacted_when_cancelled_entries_dominate() -> None:
    scheduler = Scheduler(ManualClock(START))
    live = [scheduler.call_at(START + 1000 + i, lambda due: None) for i in range(10)]
    for round_ in range(100):
        timers = [scheduler.call_at(START + 86_400_000, lambda due: None) for _ in range(1000)]
        for timer in timers:
            timer.cancel()
        # Never more cancelled entries than live ones once the heap reaches 100 entries.
        assert len(scheduler) < 100
        del round_
    assert scheduler.pending == len(live) == 10


def test_a_small_heap_keeps_its_cancelled_entries_until_due() -> None:
    scheduler = Scheduler(ManualClock(START))
    timers = [scheduler.call_at(START + 10, lambda due: None) for _ in range(50)]
    for timer in timers:
        timer.cancel()
    assert (len(scheduler), scheduler.pending) == (50, 0)


async def test_compaction_keeps_time_order() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    fired: list[int] = []
    keep = [scheduler.call_at(START + due, fired.append) for due in range(300, 0, -3)]
    drop = [scheduler.call_at(START + due, fired.append) for due in range(1, 400)]
    for timer in drop:
        timer.cancel()
    assert scheduler.pending == len(keep)
    assert len(scheduler) <= 2 * len(keep)  # compacted: at most as many cancelled as live
    await clock.advance(1000)
    assert scheduler.run_due() == len(keep)
    assert fired == sorted(fired)


async def test_a_failing_callback_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    fired: list[int] = []

    def broken(due_ms: int) -> None:
        raise ValueError("broken")

    scheduler.call_at(START, broken)
    scheduler.call_at(START, fired.append)
    assert scheduler.run_due() == 2
    assert fired == [START]
    assert "timer callback failed" in caplog.text


async def test_the_running_scheduler_fires_on_clock_advance() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    scheduler.start()
    try:
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        scheduler.call_at(START + 60_000, done.set_result)
        await asyncio.sleep(0)
        later: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        scheduler.call_at(START + 1_000, later.set_result)  # an earlier head wakes the task
        await clock.advance(1_000)
        assert await asyncio.wait_for(later, 1) == START + 1_000
        assert not done.done()
        await clock.advance(59_000)
        assert await asyncio.wait_for(done, 1) == START + 60_000
    finally:
        await scheduler.aclose()


async def _lateness_after_queued_work(block_s: float) -> float:
    """A timer's callback queues work (as a market tick queues its writes) that blocks the
    loop for `block_s`; how late (s) the next timer fires."""
    clock = SystemClock()
    scheduler = Scheduler(clock)
    loop = asyncio.get_running_loop()
    fired: asyncio.Future[float] = loop.create_future()
    start = clock.now_ms() + 20
    nxt = start + round(block_s * 1000) + 100

    def flusher() -> None:
        # uvloop makes a turn's queued writes after every callback of that turn, so they
        # follow whatever the turn's callbacks do: a callback queued from here stands for them
        loop.call_soon(time.sleep, block_s)

    def tick(due_ms: int) -> None:
        loop.call_soon(flusher)  # as the tick's frames queue the flusher
        scheduler.call_at(nxt, lambda due: fired.set_result(time.time() - due / 1000))

    scheduler.call_at(start, tick)
    scheduler.start()
    try:
        return await asyncio.wait_for(fired, 5.0)
    finally:
        await scheduler.aclose()


def test_a_timer_after_a_long_loop_turn_fires_at_its_deadline_on_uvloop() -> None:
    # uvloop times a poll from the clock read when the turn began: without a fresh reading
    # the next timer fires as late as the queued work took (here 300 ms).
    late = uvloop.run(_lateness_after_queued_work(0.3))
    assert late < 0.15
