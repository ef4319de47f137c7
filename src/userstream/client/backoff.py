"""Retry delays: jittered exponential backoff as a pure generator (DESIGN.md rule 7).

The generator never sleeps and never reads a clock; the caller waits on its own `Clock`.
"Reset after a healthy connection" is done by the caller starting a fresh generator.
Modelled on websockets' `client.py::backoff`, with the randomness injected.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from userstream.exceptions import ConfigurationError

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Settings for a sequence of retry delays, in milliseconds.

    The first retry waits `first_ms` (0 by default: reconnect at once after a drop); retry
    `n >= 1` waits `min(cap_ms, base_ms * factor**(n-1))`, shortened by up to `jitter` of
    itself at random so that many clients do not retry in lock step.

    Attributes:
        first_ms: delay before the first retry.
        base_ms: delay before the second retry, before jitter.
        factor: growth per retry.
        cap_ms: largest delay, before jitter.
        jitter: fraction in [0, 1]; each delay is drawn from `[d * (1 - jitter), d]`.
        max_attempts: `None` for unlimited retries (the default), else the number of delays.
    """

    first_ms: int = 0
    base_ms: int = 500
    factor: float = 2.0
    cap_ms: int = 30_000
    jitter: float = 0.5
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.first_ms < 0 or self.base_ms < 0 or self.cap_ms < 0:
            raise ConfigurationError("backoff delays must be >= 0")
        if self.factor < 1:
            raise ConfigurationError("backoff factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError("backoff jitter must be between 0 and 1")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ConfigurationError("backoff max_attempts must be >= 0 or None")

    def delays(self, rng: random.Random) -> Iterator[int]:
        """Yield the delay before each retry; ends only after `max_attempts` delays.

        Args:
            rng: the source of jitter; pass `random.Random(seed)` for repeatable runs.
        """
        attempt = 0
        delay = float(self.base_ms)
        while self.max_attempts is None or attempt < self.max_attempts:
            if attempt == 0:
                yield self.first_ms
            else:
                capped = min(delay, float(self.cap_ms))
                yield round(capped * (1 - self.jitter * rng.random()))
                delay = min(delay * self.factor, float(self.cap_ms))
            attempt += 1
