"""One injectable notion of time for every deadline in the system.

listenKey expiry (60 min), server pings (3 min), the pong deadline (10 min), the 24-hour
connection cap, request-weight windows and client keepalives all read `Clock.now_ms()` and
wait with `Clock.sleep_until()`. Tests and `serve --clock virtual` use `ManualClock`, which
moves only when `advance()` is called, so an hour passes in a millisecond.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from userstream.timerfd import sleep_until_ns


class Clock(Protocol):
    """Wall-clock milliseconds since the Unix epoch, and a way to wait for a moment."""

    def now_ms(self) -> int: ...

    async def sleep_until(self, deadline_ms: int) -> None:
        """Return once `now_ms() >= deadline_ms` (or a little later)."""
        ...

    @property
    def is_virtual(self) -> bool: ...


_COARSE_S = 0.001
"""The error of an event loop's timer either side: uvloop's (libuv's) count whole
milliseconds of a clock read at the start of the wait, so one fires up to 1 ms early or late."""


class SystemClock:
    """The real clock: `time.time()` for reading, a timerfd or the loop's timer for waiting.

    A wait ends at the deadline, never before it and soon after it: the server's scheduler
    wakes on this, and every market tick's frames carry the deadline as their time, so a
    late wake is latency on every frame (issue 11). On Linux the loop polls a timerfd armed
    for the deadline (`userstream.timerfd`; the kernel's wake-up, 40-230 µs on this project's
    VM). Elsewhere the wait sleeps on the loop's timer to within its error of the deadline and
    yields the remaining fraction of a millisecond turn by turn: about 1 µs late, but the
    core is busy meanwhile (the loop keeps serving I/O).
    """

    is_virtual = False

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep_until(self, deadline_ms: int) -> None:
        deadline_ns = deadline_ms * 1_000_000
        if time.time_ns() >= deadline_ns or await sleep_until_ns(deadline_ns):
            return
        delay = (deadline_ns - time.time_ns()) / 1e9 - _COARSE_S
        if delay > 0:
            await asyncio.sleep(delay)
        # Under the timer's resolution nothing signals the deadline: only the clock can tell.
        while time.time_ns() < deadline_ns:  # noqa: ASYNC110
            await asyncio.sleep(0)


class ManualClock:
    """Virtual time: starts at `start_ms` and moves only through `advance()` or `set()`.

    Sleepers are woken as soon as an advance reaches their deadline, in deadline order.
    """

    is_virtual = True

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = start_ms if start_ms is not None else time.time_ns() // 1_000_000
        self._changed: asyncio.Condition | None = None

    def now_ms(self) -> int:
        return self._now

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def sleep_until(self, deadline_ms: int) -> None:
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: self._now >= deadline_ms)

    async def advance(self, ms: int) -> int:
        """Move time forward by `ms` (must be >= 0), wake due sleepers, return the new time."""
        if ms < 0:
            raise ValueError("a clock cannot go backwards")
        return await self.set(self._now + ms)

    async def set(self, now_ms: int) -> int:
        if now_ms < self._now:
            raise ValueError("a clock cannot go backwards")
        self._now = now_ms
        changed = self._condition()
        async with changed:
            changed.notify_all()
        # Let woken sleepers run before the caller observes the new time.
        for _ in range(3):
            await asyncio.sleep(0)
        return self._now
