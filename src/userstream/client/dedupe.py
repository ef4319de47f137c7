"""Drop exact duplicate frames (issue 3 item 5), sans-I/O.

Binance events carry no sequence number. During a make-before-break rotation two
connections on one listenKey receive the same events, byte for byte (the server serializes
each event once). A frame is identified by a digest of its raw bytes; the last `window`
digests are remembered, so memory is bounded whatever the stream does.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

__all__ = ["Deduplicator"]


class Deduplicator:
    """Remember the digests of the last `window` distinct frames.

    Two different events never have identical bytes in practice: each carries its own `E`
    (and mostly `T`, order and trade ids).
    """

    __slots__ = ("_seen", "duplicates", "window")

    def __init__(self, window: int = 4096) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def is_duplicate(self, raw: bytes) -> bool:
        """Return True if `raw` was seen within the window; otherwise remember it."""
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if digest in self._seen:
            self._seen.move_to_end(digest)
            self.duplicates += 1
            return True
        self._seen[digest] = None
        if len(self._seen) > self.window:
            self._seen.popitem(last=False)
        return False
