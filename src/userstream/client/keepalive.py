"""When to extend the listenKey, and when to give it up (spec §2.3; issue 3 items 1–2), sans-I/O.

A key lives 60 minutes after its creation or its last successful keepalive. The schedule
extends it every `interval_ms` (30 minutes by default, well inside Binance's advice of
"about every 60 minutes"); a failed keepalive is retried with backoff, but only while the
key can still be alive. Once the validity has run out without a success, the key is
"lost": the stream must POST a new one and resynchronise.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from dataclasses import dataclass

from userstream.client.backoff import Backoff
from userstream.exceptions import ConfigurationError

__all__ = ["KEY_VALIDITY_MS", "KeepaliveAction", "KeepaliveSchedule"]

KEY_VALIDITY_MS = 60 * 60 * 1000  # spec §2.3
DEFAULT_INTERVAL_MS = 30 * 60 * 1000
_RETRY_BACKOFF = Backoff(
    first_ms=1_000, base_ms=2_000, factor=2.0, early_cap_ms=None, cap_ms=60_000, jitter=0.2
)


class KeepaliveAction(enum.Enum):
    WAIT = "wait"
    """Nothing to do before `next_due_ms`."""
    PING = "ping"
    """Send the keepalive (PUT /fapi/v1/listenKey or `userDataStream.ping`) now."""
    KEY_LOST = "key_lost"
    """The validity ran out without a successful keepalive: get a new key."""


@dataclass(slots=True)
class KeepaliveSchedule:
    """The keepalive plan for the current key.

    Call `key_created(now)` when a key is issued, `due(now)` when the clock reaches
    `next_due_ms`, then `succeeded(now)` or `failed(now)` after each attempt.
    """

    interval_ms: int = DEFAULT_INTERVAL_MS
    validity_ms: int = KEY_VALIDITY_MS
    retry: Backoff = _RETRY_BACKOFF
    rng: random.Random | None = None
    next_due_ms: int = 0
    valid_until_ms: int = 0
    failures: int = 0
    _delays: Iterator[int] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.interval_ms < self.validity_ms:
            raise ConfigurationError("keepalive interval must be > 0 and < the key validity")

    def key_created(self, now_ms: int) -> None:
        """A key was issued (or re-issued by POST) at `now_ms`."""
        self.succeeded(now_ms)

    def succeeded(self, now_ms: int) -> None:
        """The key was extended at `now_ms`: next keepalive one interval later."""
        self.valid_until_ms = now_ms + self.validity_ms
        self.next_due_ms = now_ms + self.interval_ms
        self.failures = 0
        self._delays = None

    def failed(self, now_ms: int, retry_after_ms: int = 0) -> KeepaliveAction:
        """A keepalive failed (not with -1125, which means the key is gone: that is
        `KEY_LOST` at once). Schedules a retry inside the validity, or gives the key up.

        `retry_after_ms` is the wait a 429/418 answer asked for: Binance bans an IP that
        keeps sending after a 429 (spec §6.2), so no retry comes sooner than that."""
        self.failures += 1
        if self._delays is None:
            self._delays = self.retry.delays(self.rng or random.Random())
        delay = next(self._delays, None)
        if delay is None or now_ms >= self.valid_until_ms:
            self.next_due_ms = now_ms
            return KeepaliveAction.KEY_LOST
        # Never retry later than the moment the key dies; at that moment, give up.
        self.next_due_ms = min(now_ms + max(delay, retry_after_ms), self.valid_until_ms)
        return KeepaliveAction.WAIT

    def check_soon(self, now_ms: int) -> None:
        """The stream reconnected: the key may have died while no socket could hear its
        `listenKeyExpired`, so extend it at `now_ms` instead of at the next interval. A
        retry already planned after a failure keeps its time: it waits out the backoff
        and any Retry-After the server asked for, and it checks the key as well."""
        if self.failures == 0:
            self.next_due_ms = min(self.next_due_ms, now_ms)

    def due(self, now_ms: int) -> KeepaliveAction:
        """What to do at `now_ms`."""
        if now_ms >= self.valid_until_ms:
            return KeepaliveAction.KEY_LOST
        if now_ms >= self.next_due_ms:
            return KeepaliveAction.PING
        return KeepaliveAction.WAIT
