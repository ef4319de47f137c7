"""The thin async driver: runs a `Simulator` against a sink on a clock.

A sink is anything shaped like `EventBus.publish(account_id, events)`: the server's own bus
(in process, `userstream serve --demo`, `userstream simulate --in-process`) or
`AdminPublisher.publish` (`POST /admin/v1/accounts/{id}/events`). Each tick the driver takes
the events due, groups them per account (order kept) and hands each account's batch to the
sink; batches of different accounts run concurrently, one account's never overlap, so every
account's events arrive in the order the simulator made them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from userstream.clock import Clock
from userstream.exceptions import UserStreamError
from userstream.protocol.codec import event_name
from userstream.protocol.events import Event
from userstream.simulator.engine import AccountEvent, Simulator

__all__ = ["Feed", "RunStats", "Sink", "drive"]

Sink = Callable[[int, Sequence[Event]], Awaitable[None]]


@dataclass(slots=True)
class RunStats:
    """What a run did so far; `elapsed_s` is measured on the driver's clock."""

    target_rate: float
    published: int = 0
    failed: int = 0
    batches: int = 0
    errors: int = 0
    last_error: str | None = None
    elapsed_s: float = 0.0
    by_type: Counter[str] = field(default_factory=Counter)
    by_account: Counter[int] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        """Events the sink accepted per second."""
        return self.published / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "published": self.published,
            "failed": self.failed,
            "batches": self.batches,
            "errors": self.errors,
            "lastError": self.last_error,
            "elapsedS": round(self.elapsed_s, 3),
            "rate": round(self.rate, 1),
            "targetRate": self.target_rate,
            "byType": dict(self.by_type),
            "byAccount": {str(k): v for k, v in self.by_account.items()},
        }


async def drive(
    simulator: Simulator,
    sink: Sink,
    clock: Clock,
    *,
    duration_s: float | None,
    tick_ms: int = 50,
    unpaced_batch: int = 500,
    concurrency: int = 32,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[RunStats], None] | None = None,
) -> RunStats:
    """Feed `sink` from `simulator` until `duration_s` has passed on `clock` (or forever when
    None) or `stop` is set; return the counts.

    With `simulator.rate > 0` the driver wakes every `tick_ms` and publishes what is due;
    otherwise it publishes `unpaced_batch` events per tick as fast as the sink takes them.
    A sink that raises a `UserStreamError` (HTTP answer, transport failure) loses that batch
    (counted in `failed` and `errors`); the run goes on.
    """
    stats = RunStats(target_rate=simulator.rate)
    paced = simulator.rate > 0
    limit = asyncio.Semaphore(concurrency)
    start = clock.now_ms()
    end = None if duration_s is None else start + int(duration_s * 1000)

    async def send(account_id: int, events: list[Event]) -> None:
        async with limit:
            try:
                await sink(account_id, events)
            except UserStreamError as error:
                stats.errors += 1
                stats.failed += len(events)
                stats.last_error = str(error)
                return
        stats.batches += 1
        stats.published += len(events)
        stats.by_account[account_id] += len(events)
        stats.by_type.update(event_name(event) for event in events)

    while stop is None or not stop.is_set():
        now = clock.now_ms()
        last = end is not None and now >= end
        if end is not None and last:
            now = end  # what is due by the end still goes out
        due = simulator.next_events(now) if paced else simulator.take(unpaced_batch, now)
        await asyncio.gather(*(send(a, batch) for a, batch in _per_account(due).items()))
        stats.elapsed_s = (clock.now_ms() - start) / 1000
        if on_tick is not None:
            on_tick(stats)
        if last:
            break
        if paced:
            wake = now + tick_ms if end is None else min(now + tick_ms, end)
            await _sleep_until(clock, wake, stop)
        else:
            await asyncio.sleep(0)
    stats.elapsed_s = (clock.now_ms() - start) / 1000
    return stats


def _per_account(events: list[AccountEvent]) -> dict[int, list[Event]]:
    batches: dict[int, list[Event]] = {}
    for account_id, event in events:
        batches.setdefault(account_id, []).append(event)
    return batches


async def _sleep_until(clock: Clock, deadline_ms: int, stop: asyncio.Event | None) -> None:
    if stop is None:
        await clock.sleep_until(deadline_ms)
        return
    sleeper = asyncio.ensure_future(clock.sleep_until(deadline_ms))
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, waiter):
            task.cancel()
        await asyncio.gather(sleeper, waiter, return_exceptions=True)


class Feed:
    """`drive()` in the background until `aclose()`; for `userstream serve --demo`.

    Create it inside a running event loop; the feed owns its task and `aclose()` stops and
    awaits it, returning the run's counts.
    """

    def __init__(
        self, simulator: Simulator, sink: Sink, clock: Clock, *, tick_ms: int = 50
    ) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            drive(simulator, sink, clock, duration_s=None, tick_ms=tick_ms, stop=self._stop)
        )

    async def aclose(self) -> RunStats:
        self._stop.set()
        return await self._task
