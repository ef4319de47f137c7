"""Virtual time shared by every node of a cluster (`serve --bus ... --clock virtual`).

The clock's value lives in the JetStream key-value bucket `userstream_clock` and each step is
also published on `userstream.clock`. An admin advance on any node publishes its steps; every
node (the advancing one too) moves its `ManualClock` to each step and runs the server's step
routine (fire due timers, give clients the pong grace). A node joining later adopts the shared
time; the clock only moves forward, so the nodes converge on the largest time any has seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from userstream.bus.base import ClockStep
from userstream.bus.nats import kv
from userstream.bus.nats.connection import NatsConnection
from userstream.clock import ManualClock
from userstream.exceptions import UserStreamError

log = logging.getLogger(__name__)

CLOCK_BUCKET = "userstream_clock"
CLOCK_KEY = "now"
CLOCK_SUBJECT = "userstream.clock"
CAS_ATTEMPTS = 100


class NatsClockSync:
    """`SharedClock` on NATS: `join` once, then `advance` from the admin API and `sync` after
    a reconnect; `aclose` when the connection is about to close."""

    def __init__(self, connection: NatsConnection) -> None:
        self._connection = connection
        self._clock: ManualClock | None = None
        self._apply: ClockStep | None = None
        self._bucket: kv.Bucket | None = None
        self._targets: asyncio.Queue[int] = asyncio.Queue()
        self._applied = asyncio.Condition()
        self._worker: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None

    async def join(self, clock: ManualClock, apply: ClockStep) -> None:
        """Follow the shared clock with `clock`, calling `apply(now_ms)` for each step; then
        adopt the shared time or publish ours."""
        self._clock, self._apply = clock, apply
        self._bucket = await kv.open_bucket(
            self._connection.js, CLOCK_BUCKET, self._connection.replicas
        )
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="clock-sync")
        self._sub = await self._connection.client.subscribe(CLOCK_SUBJECT, cb=self._on_message)
        self._connection.on_reconnect(self.sync)
        await self.sync()

    async def aclose(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await self._sub.unsubscribe()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    @property
    def _joined(self) -> tuple[ManualClock, kv.Bucket]:
        if self._clock is None or self._bucket is None:
            raise UserStreamError("the shared clock was not joined")
        return self._clock, self._bucket

    async def sync(self) -> None:
        """Adopt the shared time if it is ahead of ours, else publish ours (never backwards)."""
        clock, bucket = self._joined
        entry = await kv.read(bucket, CLOCK_KEY)
        shared = int(entry.value) if entry.value else None
        local = clock.now_ms()
        if shared is not None and shared > local:
            self._targets.put_nowait(shared)
            await self._wait_applied(shared)
        elif shared is None or shared < local:
            await self._store(local)
            await self._connection.client.publish(CLOCK_SUBJECT, str(local).encode())

    async def _store(self, now_ms: int) -> None:
        """Raise the shared time to `now_ms` (compare-and-set, so it never goes backwards)."""
        _, bucket = self._joined
        for _ in range(CAS_ATTEMPTS):
            entry = await kv.read(bucket, CLOCK_KEY)
            if entry.value and int(entry.value) >= now_ms:
                return
            with contextlib.suppress(kv.Conflict):  # lost a race with another node: read again
                await kv.cas_put(bucket, CLOCK_KEY, str(now_ms).encode(), entry.revision)
                return
        raise UserStreamError("the shared clock could not be updated (too much contention)")

    async def advance(self, ms: int, step_ms: int) -> None:
        """Advance every node: publish each step, return once this node has applied all."""
        clock, _ = self._joined
        target = clock.now_ms() + ms
        step_to = clock.now_ms()
        while step_to < target:
            step_to = min(step_to + step_ms, target)
            await self._store(step_to)
            await self._connection.client.publish(CLOCK_SUBJECT, str(step_to).encode())
            self._targets.put_nowait(step_to)
            await self._wait_applied(step_to)

    async def _wait_applied(self, now_ms: int) -> None:
        clock, _ = self._joined
        async with self._applied:
            await self._applied.wait_for(lambda: clock.now_ms() >= now_ms)

    async def _on_message(self, msg: Msg) -> None:
        with contextlib.suppress(ValueError):
            self._targets.put_nowait(int(msg.data))

    async def _run(self) -> None:
        clock, _ = self._joined
        assert self._apply is not None
        while True:
            target = await self._targets.get()
            if target > clock.now_ms():
                try:
                    await self._apply(target)
                except Exception:
                    log.exception("applying a clock step failed")
            async with self._applied:
                self._applied.notify_all()
