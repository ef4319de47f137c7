"""The bounded hand-over between the socket readers and the consumer (issue 3 item 6), sans-I/O.

It holds at most `capacity` events (gap markers do not count and merge with each other).
What happens when it is full is the caller's policy: `"block"` means the reader must wait
for `has_room()` before offering (so it stops reading the socket, and TCP pushes back);
`"drop_oldest"` drops the oldest event and puts a `StreamGap` in front of what remains.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, TypeAlias

from userstream.client.health import GapReason, StreamGap
from userstream.protocol.events import Event

__all__ = ["EventBuffer", "Item", "OverflowPolicy", "Received", "Record"]


@dataclass(frozen=True, slots=True)
class Received:
    """One event as it arrived: the decoded model, the frame's exact bytes, and when."""

    event: Event
    raw: bytes
    received_ms: int


Item: TypeAlias = Event | StreamGap
"""What `async for item in stream` yields."""
Record: TypeAlias = Received | StreamGap
"""What `stream.received()` yields, and what the buffer holds."""
OverflowPolicy: TypeAlias = Literal["block", "drop_oldest"]


class EventBuffer:
    __slots__ = ("_items", "capacity", "dropped", "events", "policy")

    def __init__(self, capacity: int, policy: OverflowPolicy) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.policy = policy
        self._items: deque[Record] = deque()
        self.events = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def has_room(self) -> bool:
        return self.events < self.capacity

    def offer_event(self, event: Received) -> StreamGap | None:
        """Append `event`. With `"drop_oldest"` and no room, first drop the oldest event and
        return the gap marker now at the front (to be counted once by the caller).

        With `"block"` the caller must have waited for `has_room()`; offering anyway still
        appends (a bounded overshoot of at most the reorder window's release)."""
        gap: StreamGap | None = None
        if self.policy == "drop_oldest" and not self.has_room():
            gap = self._drop_oldest()
        self._items.append(event)
        self.events += 1
        return gap

    def _drop_oldest(self) -> StreamGap | None:
        head_gap = self._items[0] if isinstance(self._items[0], StreamGap) else None
        index = 0
        while isinstance(self._items[index], StreamGap):
            index += 1
        dropped = self._items[index]
        del self._items[index]
        self.events -= 1
        self.dropped += 1
        assert not isinstance(dropped, StreamGap)
        gap = StreamGap(dropped.event.event_time, GapReason.OVERFLOW, "consumer too slow")
        if index == 0:
            if self._items and isinstance(after := self._items[0], StreamGap):
                self._items[0] = gap.merged(after)
                return None
            self._items.appendleft(gap)
            return gap
        # Everything before the dropped event is gap markers: fold the new one into the first.
        assert head_gap is not None
        self._items[0] = head_gap.merged(gap)
        return None

    def offer_gap(self, gap: StreamGap) -> bool:
        """Append a gap marker; returns False if it merged into a trailing marker."""
        if self._items and isinstance(tail := self._items[-1], StreamGap):
            self._items[-1] = tail.merged(gap)
            return False
        self._items.append(gap)
        return True

    def take(self) -> Record | None:
        """The next item for the consumer, or None if empty."""
        if not self._items:
            return None
        item = self._items.popleft()
        if not isinstance(item, StreamGap):
            self.events -= 1
        return item
