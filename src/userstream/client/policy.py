"""The settings of a `UserDataStream`, grouped by what they govern (as httpx groups
`Timeout` and `Limits`): how it reconnects, how it keeps the key and the socket alive, and
how it hands events to the consumer."""

from __future__ import annotations

from dataclasses import dataclass, field

from userstream.client.backoff import Backoff
from userstream.client.buffer import OverflowPolicy
from userstream.client.keepalive import DEFAULT_INTERVAL_MS, KEY_VALIDITY_MS
from userstream.exceptions import ConfigurationError

__all__ = [
    "CLOSE_TIMEOUT_S",
    "DEFAULT_ROTATE_AFTER_MS",
    "STREAM_BACKOFF",
    "Delivery",
    "Keepalive",
    "Reconnect",
]

DEFAULT_ROTATE_AFTER_MS = 23 * 3600_000 + 30 * 60_000  # 30 minutes before the 24 h cap (§4.5)
STREAM_BACKOFF = Backoff(fast_ms=2_000, fast_cap_ms=100, refused_ms=60_000)
"""Stream redials: at once, then at most 100 ms apart for 2 s, and for up to 60 s (the
longest outage issue 9 asks to ride out at full speed) while every attempt is refused by the
kernel (ECONNREFUSED: a server process restarting on its port); then the default
`Backoff`'s 3 s cap until 90 s and 30 s after. A refused connect is a kernel RST, no work
for the server; each 50 ms the redial waits after it listens again is an event published to
no socket. The cost is ~20 refused attempts per second per client while the port refuses
(at most 60 s); any other failure (timeout, TLS or HTTP handshake, 5xx) grows the delays
as before from 2 s on (docs/client-faults.md gives the rates of 1,000 clients)."""
CLOSE_TIMEOUT_S = 1.0
"""How long a stream connection waits for the peer's part of the close handshake; a peer
that is gone never answers, so this adds to the time a half-open connection takes to end."""


@dataclass(frozen=True, slots=True)
class Reconnect:
    """How the stream comes back after a fault and replaces its connection before the cap.

    Attributes:
        backoff: delays between attempts to reopen the stream connection. Restarted (the next
            drop reconnects at once) as soon as a connection delivers a frame or answers a
            ping. Unlimited by default; a finite one ends the stream with `ReconnectGaveUp`.
            By default at most 100 ms apart for the first 2 s, and for up to 60 s while every
            attempt is a refused connect (`STREAM_BACKOFF`).
        key_backoff: delays between attempts to issue a new listenKey after the old one died;
            its own budget, so failed key requests do not lengthen reconnect waits and the
            other way round. No 100 ms phase: a key request fails only once the server
            answers (the socket opened first), and a failing request costs request weight.
        open_timeout_s: handshake timeout for a stream connection.
        rotate_after_ms: connection age at which make-before-break rotation starts.
        rotation_timeout_ms: longest the old connection is kept once the new one is open,
            waiting for the new one to deliver a frame the old one also had; if the old
            one delivered frames the new one never matched by then, a `StreamGap` follows.
    """

    backoff: Backoff = STREAM_BACKOFF
    key_backoff: Backoff = field(default_factory=Backoff)
    open_timeout_s: float = 10.0
    rotate_after_ms: int = DEFAULT_ROTATE_AFTER_MS
    rotation_timeout_ms: int = 60_000

    def __post_init__(self) -> None:
        if self.rotate_after_ms <= 0 or self.rotation_timeout_ms < 0 or self.open_timeout_s <= 0:
            raise ConfigurationError(
                "rotate_after_ms and open_timeout_s must be > 0, rotation_timeout_ms >= 0"
            )


@dataclass(frozen=True, slots=True)
class Keepalive:
    """How the listenKey and the stream socket are kept alive.

    Attributes:
        listen_key_interval_ms: time between listenKey keepalives (30 minutes; a key lives
            60, spec §2.3).
        ping_interval_s: seconds between client WebSocket pings.
        ping_timeout_s: a connection that answers no ping within this is closed and
            replaced. A half-open connection (peer gone, no FIN) is noticed within
            `ping_interval_s + ping_timeout_s + CLOSE_TIMEOUT_S` (websockets then waits
            that long for the close): 10 s with the defaults, where websockets' own 20 s +
            20 s took 33-40 s. `None` for either disables client pings.
    """

    listen_key_interval_ms: int = DEFAULT_INTERVAL_MS
    ping_interval_s: float | None = 5.0
    ping_timeout_s: float | None = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.listen_key_interval_ms < KEY_VALIDITY_MS:
            raise ConfigurationError("listen_key_interval_ms must be > 0 and < 60 minutes")
        for value in (self.ping_interval_s, self.ping_timeout_s):
            if value is not None and value <= 0:
                raise ConfigurationError("ping_interval_s and ping_timeout_s must be > 0")


@dataclass(frozen=True, slots=True)
class Delivery:
    """How received events reach the consumer.

    Attributes:
        reorder_window_ms: hold events up to this long to yield them in `E` order
            (spec §4.6); 0 yields each event as it arrives.
        reorder_max_held: most events held for reordering.
        max_buffered: most events waiting for the consumer.
        overflow: `"block"` stops reading the socket while the consumer is behind;
            `"drop_oldest"` drops the oldest waiting event and yields a `StreamGap`.
    """

    reorder_window_ms: int = 20
    reorder_max_held: int = 1_000
    max_buffered: int = 10_000
    overflow: OverflowPolicy = "block"

    def __post_init__(self) -> None:
        if self.overflow not in ("block", "drop_oldest"):
            raise ConfigurationError(
                f"overflow must be 'block' or 'drop_oldest', not {self.overflow!r}"
            )
        if self.max_buffered < 1 or self.reorder_window_ms < 0 or self.reorder_max_held < 1:
            raise ConfigurationError("max_buffered and reorder_max_held must be >= 1")
