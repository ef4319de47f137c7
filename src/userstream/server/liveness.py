"""Ping, pong deadline and the 24-hour cap for every WebSocket connection (spec §3.1, §4.5).

The server pings every 3 minutes; a connection with a ping unanswered for 10 minutes is
dropped; every connection is closed at 24 hours. A pong counts only if it echoes the payload
of a ping we sent: unsolicited pongs are allowed but do not prevent disconnection
(change log 2024-02-09).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from userstream.protocol.wsframes import CloseCode
from userstream.server.scheduler import Scheduler, Timer
from userstream.server.websocket import WebSocketConnection


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    ping_interval_ms: int = 3 * 60 * 1000
    pong_timeout_ms: int = 10 * 60 * 1000
    max_lifetime_ms: int = 24 * 60 * 60 * 1000


class PongWatch:
    """Counts connections with a ping still unanswered, server-wide.

    A virtual-clock advance steps through time and, after each step that sent pings, gives
    clients a moment of real time to answer them (see `UserStreamServer.advance_clock`), so a
    jump of hours behaves like hours passing while a client that never answers is still
    dropped at its deadline.
    """

    __slots__ = ("_settled", "waiting")

    def __init__(self) -> None:
        self.waiting = 0
        self._settled = asyncio.Event()
        self._settled.set()

    def pinged(self) -> None:
        self.waiting += 1
        self._settled.clear()

    def answered(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self._settled.set()

    async def settle(self, timeout_s: float) -> None:
        """Wait until every ping is answered (or closed), at most `timeout_s` of real time."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout_s)


class Liveness:
    __slots__ = (
        "_conn",
        "_lifetime_timer",
        "_oldest_unanswered_ms",
        "_outstanding",
        "_ping_timer",
        "_policy",
        "_pong_timer",
        "_pongs",
        "_scheduler",
        "connected_ms",
    )

    def __init__(
        self,
        conn: WebSocketConnection,
        scheduler: Scheduler,
        policy: LivenessPolicy,
        pongs: PongWatch,
    ) -> None:
        self._conn = conn
        self._pongs = pongs
        self._scheduler = scheduler
        self._policy = policy
        self.connected_ms = scheduler.clock.now_ms()
        self._outstanding: set[bytes] = set()
        self._oldest_unanswered_ms: int | None = None
        self._ping_timer: Timer = scheduler.call_at(
            self.connected_ms + policy.ping_interval_ms, self._ping
        )
        self._pong_timer: Timer | None = None
        self._lifetime_timer = scheduler.call_at(
            self.connected_ms + policy.max_lifetime_ms, self._lifetime_over
        )

    def _ping(self, due_ms: int) -> None:
        payload = str(due_ms).encode("ascii")
        self._outstanding.add(payload)
        self._conn.ping(payload)
        if self._oldest_unanswered_ms is None:
            self._oldest_unanswered_ms = due_ms
            self._pongs.pinged()
            self._pong_timer = self._scheduler.call_at(
                due_ms + self._policy.pong_timeout_ms, self._pong_overdue
            )
        self._ping_timer = self._scheduler.call_at(
            due_ms + self._policy.ping_interval_ms, self._ping
        )

    def on_pong(self, payload: bytes) -> None:
        if payload in self._outstanding:
            self._answered()

    def _answered(self) -> None:
        self._outstanding.clear()
        if self._oldest_unanswered_ms is not None:
            self._pongs.answered()
        self._oldest_unanswered_ms = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None

    def _pong_overdue(self, due_ms: int) -> None:
        minutes = self._policy.pong_timeout_ms / 60_000
        self._conn.close(CloseCode.POLICY_VIOLATION, f"no pong received within {minutes:g} minutes")

    def _lifetime_over(self, due_ms: int) -> None:
        self._conn.close(CloseCode.NORMAL, "connection reached the 24-hour limit")

    def stop(self) -> None:
        self._ping_timer.cancel()
        self._lifetime_timer.cancel()
        self._answered()


@dataclass(frozen=True, slots=True)
class LivenessContext:
    """What every WebSocket session needs to keep its connection's liveness."""

    scheduler: Scheduler
    policy: LivenessPolicy
    pongs: PongWatch

    def now_ms(self) -> int:
        return self.scheduler.clock.now_ms()

    def watch(self, conn: WebSocketConnection) -> Liveness:
        return Liveness(conn, self.scheduler, self.policy, self.pongs)
