"""One task runs every server deadline, in time order, on the injected clock.

listenKey expiry, server pings, pong deadlines and the 24-hour cap are all timers here, so a
`ManualClock.advance()` of an hour fires exactly what an hour of real time would. Callbacks get
the moment they were due (not the moment they ran) so events stamped from them carry the
virtual deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable

from userstream.clock import Clock

log = logging.getLogger(__name__)

TimerCallback = Callable[[int], None]


class Timer:
    """A handle to a scheduled callback; `cancel()` is O(1) (the entry is skipped when due)."""

    __slots__ = ("callback", "cancelled", "due_ms")

    def __init__(self, due_ms: int, callback: TimerCallback) -> None:
        self.due_ms = due_ms
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def call_at(self, due_ms: int, callback: TimerCallback) -> Timer:
        timer = Timer(due_ms, callback)
        head = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (due_ms, next(self._seq), timer))
        if head is None or due_ms < head:
            self._wake.set()
        return timer

    def call_later(self, delay_ms: int, callback: TimerCallback) -> Timer:
        return self.call_at(self.clock.now_ms() + delay_ms, callback)

    def run_due(self) -> int:
        """Fire every timer due by now, oldest first; returns how many fired."""
        fired = 0
        now = self.clock.now_ms()
        while self._heap and self._heap[0][0] <= now:
            _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            fired += 1
            try:
                timer.callback(timer.due_ms)
            except Exception:  # a broken callback must not stop every other deadline
                log.exception("timer callback failed")
        return fired

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="scheduler")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self.run_due()
            self._wake.clear()
            waiters: list[asyncio.Task[object]] = [
                asyncio.ensure_future(self._wake.wait()),
            ]
            if self._heap:
                waiters.append(asyncio.ensure_future(self.clock.sleep_until(self._heap[0][0])))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
