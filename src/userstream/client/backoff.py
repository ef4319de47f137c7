"""Retry delays: capped exponential backoff with full jitter, as a pure generator
(DESIGN.md rule 7).

The generator never sleeps and never reads a clock; the caller waits on its own `Clock`.
"Reset once a connection proved itself" is done by the caller starting a fresh generator.
Modelled on websockets' `client.py::backoff`, with the randomness injected, and on AWS's
"Exponential Backoff And Jitter" (full jitter: each delay drawn from `[0, d]`, which spreads
a crowd of clients best for the fewest attempts).

Why up to three caps: the time from the server answering again to the client being back is
on average a third of the cap in force (the residual of a uniform draw). A server process
restarting on its port is back within a second or two, and while it is down every connect
is refused by the kernel at once; for a stream every 50 ms of that residual is an event
published to no socket, so `fast_cap_ms` (off by default, on for stream redials:
`Reconnect.backoff`) keeps the wait tiny while the failure is younger than `fast_ms`. After
that a young failure is a blip or a short outage, and `early_cap_ms` brings clients back
within about a second of the server. Past `early_ms` the failure is an outage and the long
cap keeps a crowd of clients from hammering a server that is down.

A refused connect (ECONNREFUSED: the host is up and nothing listens on the port, as while
a server process restarts) costs the server nothing, the kernel answers with a reset; so
while every failure so far was refused, `refused_ms` keeps the fast cap in force for longer
(up to the outage the client must ride out at full speed). Any other failure (a timeout, a
failed TLS or HTTP handshake, a rejected upgrade, a 5xx) means the server or the network
is struggling, and the delays grow as above from then on. The caller says which kind each
failure was by `send`ing a flag into the generator.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass

from userstream.exceptions import ConfigurationError

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Settings for a sequence of retry delays, in milliseconds.

    The first retry waits `first_ms` (0 by default: reconnect at once after a drop); retry
    `n >= 1` waits `min(cap, base_ms * factor**(n-1))`, shortened by up to `jitter` of
    itself at random. `cap` is `fast_cap_ms` while the delays so far add up to less than
    `fast_ms` (or less than `refused_ms` while every failure so far was a refused
    connect), then `early_cap_ms` while they add up to less than `early_ms`, `cap_ms`
    after.

    Attributes:
        first_ms: delay before the first retry.
        base_ms: delay before the second retry, before jitter.
        factor: growth per retry.
        fast_ms: how long (sum of the delays) a failure counts as a restart; 0 (the default)
            for no such phase.
        fast_cap_ms: largest delay while the failure counts as a restart.
        refused_ms: how long (sum of the delays) a failure counts as a restart while every
            failed attempt was refused (ECONNREFUSED); 0 (the default) for no such phase.
        early_cap_ms: largest delay while the failure is young; `None` for `cap_ms` always.
        early_ms: how long (sum of the delays) a failure counts as young.
        cap_ms: largest delay once the failure is old, before jitter.
        jitter: fraction in [0, 1]; each delay is drawn from `[d * (1 - jitter), d]`
            (1, the default, is full jitter).
        max_attempts: `None` for unlimited retries (the default), else the number of delays.
    """

    first_ms: int = 0
    base_ms: int = 250
    fast_ms: int = 0
    fast_cap_ms: int = 100
    refused_ms: int = 0
    factor: float = 2.0
    early_cap_ms: int | None = 3_000
    early_ms: int = 90_000
    cap_ms: int = 30_000
    jitter: float = 1.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if (
            min(
                self.first_ms,
                self.base_ms,
                self.cap_ms,
                self.early_ms,
                self.fast_ms,
                self.refused_ms,
            )
            < 0
        ):
            raise ConfigurationError("backoff delays must be >= 0")
        if (self.fast_ms or self.refused_ms) and not 0 < self.fast_cap_ms <= self.cap_ms:
            raise ConfigurationError("backoff fast_cap_ms must be > 0 and at most cap_ms")
        if self.early_cap_ms is not None and not 0 <= self.early_cap_ms <= self.cap_ms:
            raise ConfigurationError("backoff early_cap_ms must be between 0 and cap_ms")
        if self.factor < 1:
            raise ConfigurationError("backoff factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError("backoff jitter must be between 0 and 1")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ConfigurationError("backoff max_attempts must be >= 0 or None")

    def delays(self, rng: random.Random) -> Generator[int, bool | None, None]:
        """Yield the delay before each retry; ends only after `max_attempts` delays.

        `send(True)` instead of `next()` says the attempt just made was refused
        (ECONNREFUSED); `next()` (or `send(False)`) counts it as any other failure.

        Args:
            rng: the source of jitter; pass `random.Random(seed)` for repeatable runs.
        """
        attempt = 0
        elapsed = 0
        nominal = float(self.base_ms)
        all_refused = True
        refused: bool | None = None
        while self.max_attempts is None or attempt < self.max_attempts:
            if attempt == 0:
                delay = self.first_ms
            else:
                all_refused = all_refused and bool(refused)
                restarting = all_refused and elapsed < self.refused_ms
                cap = float(self.fast_cap_ms if restarting else self._cap(elapsed))
                delay = round(min(nominal, cap) * (1 - self.jitter * rng.random()))
                # Growth stops at the cap in force, so an old failure's delays grow on from
                # the early cap instead of jumping to `cap_ms`.
                nominal = min(nominal * self.factor, cap)
            elapsed += delay
            refused = yield delay
            attempt += 1

    def _cap(self, elapsed_ms: int) -> int:
        """The cap in force once the delays so far add up to `elapsed_ms`."""
        if elapsed_ms < self.fast_ms:
            return self.fast_cap_ms
        if self.early_cap_ms is not None and elapsed_ms < self.early_ms:
            return self.early_cap_ms
        return self.cap_ms
