"""The keepalive rules of a stream connection, sans-I/O (spec §4.5, change log 2023-08-31 and
2024-02-09).

The server sends a ping frame every 3 minutes; a connection that leaves a ping unanswered for
10 minutes is dropped; every connection is closed at the 24-hour mark. A pong counts only if it
echoes the payload of a ping the server sent: unsolicited pongs are allowed but do not keep a
connection alive. `PongRule` applies these to one connection given `now`; the server's adapter
(`server/liveness.py`) only schedules its timers and sends what it is told.
"""

from __future__ import annotations

from dataclasses import dataclass

from userstream.protocol.wsframes import CloseCode

MINUTE_MS = 60 * 1000


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    """Binance's figures by default; tests and demos shorten them."""

    ping_interval_ms: int = 3 * MINUTE_MS
    pong_timeout_ms: int = 10 * MINUTE_MS
    max_lifetime_ms: int = 24 * 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping to send now. `pong_deadline_ms` is set when this ping starts a wait for a pong
    (no ping was outstanding): the connection is dropped then unless `PongRule.pong` ended the
    wait first."""

    payload: bytes
    next_ping_ms: int
    pong_deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with this code and reason."""

    code: int
    reason: str


class PongRule:
    """The ping / pong state of one connection."""

    __slots__ = ("_outstanding", "connected_ms", "policy", "waiting_since_ms")

    def __init__(self, policy: LivenessPolicy, connected_ms: int) -> None:
        self.policy = policy
        self.connected_ms = connected_ms
        self._outstanding: set[bytes] = set()
        self.waiting_since_ms: int | None = None

    @property
    def first_ping_ms(self) -> int:
        return self.connected_ms + self.policy.ping_interval_ms

    @property
    def lifetime_end_ms(self) -> int:
        return self.connected_ms + self.policy.max_lifetime_ms

    def ping(self, due_ms: int) -> Ping:
        """The ping due at `due_ms` (its payload is the due time, so each ping is distinct)."""
        payload = str(due_ms).encode("ascii")
        self._outstanding.add(payload)
        deadline = None
        if self.waiting_since_ms is None:
            self.waiting_since_ms = due_ms
            deadline = due_ms + self.policy.pong_timeout_ms
        return Ping(payload, due_ms + self.policy.ping_interval_ms, deadline)

    def pong(self, payload: bytes) -> bool:
        """A pong arrived; True when it echoes an outstanding ping, which ends the wait (the
        pong deadline no longer applies). Unsolicited pongs change nothing."""
        if payload not in self._outstanding:
            return False
        self._outstanding.clear()
        self.waiting_since_ms = None
        return True

    def pong_overdue(self) -> Close:
        minutes = self.policy.pong_timeout_ms / MINUTE_MS
        return Close(CloseCode.POLICY_VIOLATION, f"no pong received within {minutes:g} minutes")

    def lifetime_over(self) -> Close:
        return Close(CloseCode.NORMAL, "connection reached the 24-hour limit")
