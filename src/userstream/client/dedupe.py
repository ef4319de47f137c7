"""Duplicates between the two connections of a make-before-break rotation, sans-I/O.

Binance events carry no sequence number, and two genuine events can have identical bytes
(two leverage updates in the same millisecond), so a frame is never a duplicate because its
bytes were seen before. It is a duplicate only when it is the *other* connection's copy:
during a rotation two connections on one listenKey receive the same events, byte for byte
(the server serializes each event once), in the same order (spec §4.6: one account's
events go out in `E` order on every connection).

So the two sides are matched like two copies of one sequence. The side that is ahead keeps
the frames it delivered that the other side has not had yet (`_ahead`). A frame on the
lagging side that matches one of them is the copy: dropped, along with the older entries
(frames published before the lagging side subscribed, which it will never receive). A frame
that matches none is new: the other side's entries can then never be matched (its copies
would have come first), so they are forgotten and this side is ahead.
"""

from __future__ import annotations

from collections import deque
from typing import Literal, TypeAlias

__all__ = ["Overlap", "Side"]

Side: TypeAlias = Literal["old", "new"]


class Overlap:
    """Match the frames of the old and the new connection of one rotation.

    Call `admit(side, raw)` for every frame read on either connection, deliver it if that
    returns True. `joined` becomes True once the new connection delivered a frame the old
    one also had: from then on the old connection may be closed.
    """

    __slots__ = ("_ahead", "_leader", "duplicates", "joined", "old_frames", "window")

    def __init__(self, window: int = 4096) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self._ahead: deque[bytes] = deque()
        self._leader: Side = "old"
        self.duplicates = 0
        self.joined = False
        self.old_frames = 0
        """Frames the old connection delivered during the overlap."""

    @property
    def old_unmatched(self) -> int:
        """Frames the old connection delivered that the new one has not had yet. Once the
        old connection is closed and this is 0, the new connection is on its own."""
        return len(self._ahead) if self._leader == "old" else 0

    def admit(self, side: Side, raw: bytes) -> bool:
        """Return True to deliver `raw` (first copy), False to drop it (the other's copy)."""
        if side == "old":
            self.old_frames += 1
        if side != self._leader:
            for index, seen in enumerate(self._ahead):
                if seen == raw:
                    for _ in range(index + 1):
                        self._ahead.popleft()
                    self.duplicates += 1
                    self.joined = True
                    return False
            self._ahead.clear()
            self._leader = side
        self._ahead.append(raw)
        if len(self._ahead) > self.window:
            self._ahead.popleft()
        return True
