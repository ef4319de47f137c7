"""The async driver on a clock that jumps to each deadline: pacing, per-account order,
failed batches counted and skipped, and `Feed` stopping on `aclose()`."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from userstream.exceptions import BinanceAPIError
from userstream.protocol.codec import encode_event
from userstream.protocol.events import Event
from userstream.simulator import Simulator
from userstream.simulator.driver import Feed, drive

START_MS = 1_767_225_600_000


class JumpClock:
    """Virtual time that moves to whatever deadline is awaited."""

    is_virtual = True

    def __init__(self) -> None:
        self.now = START_MS

    def now_ms(self) -> int:
        return self.now

    async def sleep_until(self, deadline_ms: int) -> None:
        self.now = max(self.now, deadline_ms)
        await asyncio.sleep(0)


async def test_paced_run_publishes_the_rate_per_account_in_order() -> None:
    received: dict[int, list[Event]] = defaultdict(list)

    async def sink(account_id: int, events: Sequence[Event]) -> None:
        received[account_id].extend(events)

    simulator = Simulator((1, 2, 3), seed=5, rate=100)
    stats = await drive(simulator, sink, JumpClock(), duration_s=10, tick_ms=50)
    assert 1_000 <= stats.published <= 1_010
    assert stats.elapsed_s == 10
    assert stats.errors == 0
    assert sum(stats.by_type.values()) == stats.published
    assert {a: len(e) for a, e in received.items()} == dict(stats.by_account)
    # The same seed and ticks give the same events, and each account's arrive in order.
    again: dict[int, list[Event]] = defaultdict(list)
    clock = JumpClock()
    replay = Simulator((1, 2, 3), seed=5, rate=100)
    while clock.now <= START_MS + 10_000:
        for account_id, event in replay.next_events(clock.now):
            again[account_id].append(event)
        clock.now += 50
    for account_id, events in received.items():
        assert [encode_event(e) for e in events] == [encode_event(e) for e in again[account_id]]


async def test_a_rejected_batch_is_counted_and_the_run_goes_on() -> None:
    async def sink(account_id: int, events: Sequence[Event]) -> None:
        if account_id == 2:
            raise BinanceAPIError(-1121, "No account '2'.", 404)

    stats = await drive(Simulator((1, 2), seed=1, rate=200), sink, JumpClock(), duration_s=2)
    assert stats.errors > 0
    assert stats.failed > 0
    assert stats.last_error == "-1121: No account '2'."
    assert set(stats.by_account) == {1}
    assert stats.published + stats.failed >= 400


async def test_unpaced_run_takes_batches_until_the_duration() -> None:
    clock = JumpClock()
    batches: list[int] = []

    async def sink(account_id: int, events: Sequence[Event]) -> None:
        batches.append(len(events))
        clock.now += 100

    stats = await drive(Simulator((1,), seed=1), sink, clock, duration_s=1, unpaced_batch=50)
    assert len(batches) == 11  # ticks at 0, 100, ... 900 ms, and the final one at 1 s
    assert all(50 <= n < 60 for n in batches)
    assert stats.published == sum(batches)


async def test_feed_runs_until_aclose() -> None:
    published: list[int] = []
    enough = asyncio.Event()

    async def sink(account_id: int, events: Sequence[Event]) -> None:
        published.append(len(events))
        if sum(published) >= 100:
            enough.set()

    feed = Feed(Simulator((1,), seed=1, rate=1000), sink, JumpClock(), tick_ms=10)
    await asyncio.wait_for(enough.wait(), 5)
    stats = await feed.aclose()
    assert stats.published == sum(published)
