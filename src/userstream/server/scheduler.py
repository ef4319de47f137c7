"""One task runs every server deadline, in time order, on the injected clock.

listenKey expiry, server pings, pong deadlines and the 24-hour cap are all timers here, so a
`ManualClock.advance()` of an hour fires exactly what an hour of real time would. Callbacks get
the moment they were due (not the moment they ran) so events stamped from them carry the
virtual deadline.

Cancelling is O(1): the timer forgets its callback at once (so whatever the callback reaches,
such as a closed connection, is free to go) and its heap entry is skipped when due. Every
connection leaves a cancelled 24-hour timer behind, so when cancelled entries make up more
than half of a heap of at least `_COMPACT_MIN` entries the heap is rebuilt without them, as
asyncio's own loop does (`BaseEventLoop._run_once`): memory stays proportional to the live
timers, and each entry is removed at most once, so the rebuild costs O(1) amortised per cancel.
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

_COMPACT_MIN = 100


def _cancelled_callback(due_ms: int) -> None:
    """Stands in for a cancelled timer's callback, which is released at `cancel()`."""


class Timer:
    """A handle to a scheduled callback; `cancel()` is O(1) and releases the callback."""

    __slots__ = ("_scheduler", "callback", "due_ms")

    def __init__(self, scheduler: Scheduler, due_ms: int, callback: TimerCallback) -> None:
        self._scheduler: Scheduler | None = scheduler
        self.due_ms = due_ms
        self.callback = callback

    @property
    def cancelled(self) -> bool:
        return self.callback is _cancelled_callback

    def cancel(self) -> None:
        """Stop the callback from running; a timer that already ran or was cancelled is left."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            self.callback = _cancelled_callback
            scheduler._timer_cancelled()


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[int, int, Timer]] = []
        self._cancelled = 0  # entries in `_heap` whose timer was cancelled
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Heap entries, cancelled ones included (what the scheduler holds in memory)."""
        return len(self._heap)

    @property
    def pending(self) -> int:
        """Timers that are still to run."""
        return len(self._heap) - self._cancelled

    def call_at(self, due_ms: int, callback: TimerCallback) -> Timer:
        timer = Timer(self, due_ms, callback)
        head = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (due_ms, next(self._seq), timer))
        if head is None or due_ms < head:
            self._wake.set()
        return timer

    def _timer_cancelled(self) -> None:
        self._cancelled += 1
        heap = self._heap
        if len(heap) >= _COMPACT_MIN and self._cancelled * 2 > len(heap):
            heap[:] = [entry for entry in heap if not entry[2].cancelled]
            heapq.heapify(heap)
            self._cancelled = 0

    def run_due(self) -> int:
        """Fire every timer due by now, oldest first; returns how many fired."""
        fired = 0
        now = self.clock.now_ms()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if timer._scheduler is None:
                self._cancelled -= 1
                continue
            timer._scheduler = None  # it has run: a later cancel() is a no-op
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
            if self.run_due():
                # Off Linux the clock waits on the loop's timer (on Linux on a timerfd, which
                # this does not affect). uvloop (libuv) times its next poll from the clock it
                # read when the loop turn began, and the work the callbacks queued (a market
                # tick's write to every connection: ~10 ms at 1,000 connections, done at the
                # end of the next turn) makes that reading stale: the poll then sleeps that
                # much past the next deadline. Two turns, the first behind that work, make the
                # loop read the clock again before it next sleeps.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
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
