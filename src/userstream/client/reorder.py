"""Yield events in `E` order within a small window (issue 3 item 5; spec §4.6), sans-I/O.

Binance orders one event type by `T` and `E` on one connection and advises ordering across
types by `E` (spec §4.6, User Data Streams page). An event is held at most `window_ms`
(of the caller's clock) after it arrived, and at most `max_held` events are held, so the
delay and the memory are both bounded. An event whose `E` is older than one already
released cannot be put in order any more and is released at once.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Reorderer"]

T = TypeVar("T")


class Reorderer(Generic[T]):
    """A bounded `E`-ordered holding area.

    Call `push(item, event_time, now_ms)` for each arrival and `pop_due(now_ms)` when the
    clock reaches `next_deadline()`; both return the items to hand on, in order.
    `window_ms=0` disables holding (every item is released as it arrives).
    """

    __slots__ = (
        "_arrivals",
        "_heap",
        "_released",
        "_seq",
        "last_released_time",
        "max_held",
        "window_ms",
    )

    def __init__(self, window_ms: int = 0, max_held: int = 1000) -> None:
        if window_ms < 0 or max_held < 1:
            raise ValueError("window_ms must be >= 0 and max_held >= 1")
        self.window_ms = window_ms
        self.max_held = max_held
        self._heap: list[tuple[int, int, T]] = []
        self._arrivals: deque[tuple[int, int]] = deque()  # (deadline, seq), arrival order
        self._released: set[int] = set()
        self._seq = 0
        self.last_released_time: int | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def next_deadline(self) -> int | None:
        """When the oldest held item must go (a clock time), or None if nothing is held."""
        self._skip_released()
        return self._arrivals[0][0] if self._arrivals else None

    def push(self, item: T, event_time: int, now_ms: int) -> list[T]:
        """Hold `item` (its `E` is `event_time`); return whatever is due now, in order."""
        if self.last_released_time is not None and event_time < self.last_released_time:
            return [item]
        self._seq += 1
        heapq.heappush(self._heap, (event_time, self._seq, item))
        self._arrivals.append((now_ms + self.window_ms, self._seq))
        return self.pop_due(now_ms)

    def pop_due(self, now_ms: int) -> list[T]:
        """Release items held for `window_ms` or more (and everything with a smaller `E`),
        and the smallest items beyond `max_held`."""
        out: list[T] = []
        while self._heap:
            self._skip_released()
            due = bool(self._arrivals) and self._arrivals[0][0] <= now_ms
            if not due and len(self._heap) <= self.max_held:
                break
            out.append(self._pop())
        return out

    def flush(self) -> list[T]:
        """Release everything, in `E` order (before a gap marker, or when closing)."""
        out = [self._pop() for _ in range(len(self._heap))]
        self._arrivals.clear()
        self._released.clear()
        return out

    def _pop(self) -> T:
        event_time, seq, item = heapq.heappop(self._heap)
        self._released.add(seq)
        if self.last_released_time is None or event_time > self.last_released_time:
            self.last_released_time = event_time
        return item

    def _skip_released(self) -> None:
        while self._arrivals and self._arrivals[0][1] in self._released:
            self._released.discard(self._arrivals.popleft()[1])
