"""Schedules every WebSocket connection's pings, pong deadline and 24-hour cap.

The rules (intervals, which pong counts, close codes and reasons) are `protocol.liveness`'s;
this adapter only puts its deadlines on the scheduler and applies its answers to the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from userstream.protocol.liveness import LivenessPolicy, PongRule
from userstream.server.scheduler import Scheduler, Timer
from userstream.server.websocket import WebSocketConnection

__all__ = ["Liveness", "LivenessContext", "LivenessPolicy", "PongWatch"]


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
    """One connection's timers. `stop()` cancels them all, which releases the connection."""

    __slots__ = (
        "_conn",
        "_lifetime_timer",
        "_ping_timer",
        "_pong_timer",
        "_pongs",
        "_rule",
        "_scheduler",
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
        self._rule = PongRule(policy, scheduler.clock.now_ms())
        self._ping_timer: Timer = scheduler.call_at(self._rule.first_ping_ms, self._ping)
        self._pong_timer: Timer | None = None
        self._lifetime_timer = scheduler.call_at(self._rule.lifetime_end_ms, self._lifetime_over)

    def _ping(self, due_ms: int) -> None:
        scheduler = self._scheduler
        ping = self._rule.ping(due_ms)
        self._conn.ping(ping.payload)
        if ping.pong_deadline_ms is not None:
            self._pongs.pinged()
            self._pong_timer = scheduler.call_at(ping.pong_deadline_ms, self._pong_overdue)
        self._ping_timer = scheduler.call_at(ping.next_ping_ms, self._ping)

    def on_pong(self, payload: bytes) -> None:
        if self._rule.pong(payload):
            self._end_wait()

    def _end_wait(self) -> None:
        if self._pong_timer is not None:
            self._pongs.answered()
            self._pong_timer.cancel()
            self._pong_timer = None

    def _pong_overdue(self, due_ms: int) -> None:
        close = self._rule.pong_overdue()
        self._conn.close(close.code, close.reason)

    def _lifetime_over(self, due_ms: int) -> None:
        close = self._rule.lifetime_over()
        self._conn.close(close.code, close.reason)

    def stop(self) -> None:
        self._ping_timer.cancel()
        self._lifetime_timer.cancel()
        self._end_wait()


@dataclass(frozen=True, slots=True)
class LivenessContext:
    """What every WebSocket session needs to keep its connection's liveness."""

    scheduler: Scheduler
    policy: LivenessPolicy
    pongs: PongWatch

    def now_ms(self) -> int:
        return self.scheduler.clock.now_ms()

    def message_time_ms(self) -> int:
        """The time the incoming-message rate (10 per second) is counted on.

        The limit guards the server against floods, which happen in real time: a virtual
        clock that stands still between advances would otherwise put every ping of a long
        session into one second and cut a well-behaved client off. Under a virtual clock real
        time moves this time too, and so does every advance.
        """
        clock = self.scheduler.clock
        if clock.is_virtual:
            return clock.now_ms() + time.monotonic_ns() // 1_000_000
        return clock.now_ms()

    def watch(self, conn: WebSocketConnection) -> Liveness:
        return Liveness(conn, self.scheduler, self.policy, self.pongs)
