"""`MarketService.start()`: the source's first advance (what it did up to the server's start,
such as a replay's first record) reaches the listeners and streams set up after `start()`, as
the server sets them up (the venue's listener is added once the market has started)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal

from tests.market_source import TinyMarket
from userstream.clock import ManualClock
from userstream.market.types import MarketUpdate, Trade
from userstream.protocol.market import parse_market_stream
from userstream.server.market import TICK_MS, MarketService
from userstream.server.scheduler import Scheduler
from userstream.symbols import load_symbol_table

START = 1_000_030  # between two ticks: the first advance is at the start, then on the grid


class FirstRecord(TinyMarket):
    """TinyMarket whose first advance returns one trade, as a replay shows its first record."""

    def __init__(self) -> None:
        super().__init__(("BTCUSDT",))
        self.first: Trade | None = None

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        if self.first is None:
            bid = self.book("BTCUSDT").best_bid()
            assert bid is not None
            self.first = Trade("BTCUSDT", 42, bid.price, Decimal("0.005"), True, now_ms)
            super().advance(now_ms)
            return [self.first]
        return super().advance(now_ms)


class Sink:
    combined = False

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_frames(self, frames: list[bytes]) -> None:
        self.frames.extend(frames)


async def test_first_advance_reaches_listeners_and_streams_added_after_start() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    source = FirstRecord()
    market = MarketService(source, load_symbol_table(), clock, scheduler)
    market.start()
    heard: list[tuple[int, list[MarketUpdate]]] = []

    def venue(updates: Sequence[MarketUpdate], now_ms: int) -> None:
        heard.append((now_ms, list(updates)))

    market.add_listener(venue)
    sink = Sink()
    topic = parse_market_stream("btcusdt@trade")
    assert topic is not None
    market.hub.subscribe(sink, "btcusdt@trade", topic)

    scheduler.run_due()
    assert heard == [(START, [source.first])]
    (frame,) = sink.frames
    assert json.loads(frame[2:])["t"] == 42  # a short text frame: 2-byte header
    assert [t.trade_id for t in market.state.trades("BTCUSDT")] == [42]

    await clock.advance(100)
    scheduler.run_due()
    first_tick = START - START % TICK_MS + TICK_MS
    assert [now for now, _ in heard] == [START, first_tick, first_tick + TICK_MS]


async def test_rest_reads_before_the_first_timer_run_the_first_advance() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    source = FirstRecord()
    market = MarketService(source, load_symbol_table(), clock, scheduler)
    market.start()
    heard: list[int] = []
    market.add_listener(lambda updates, now_ms: heard.append(now_ms))
    assert market.sync() == START
    assert heard == [START]
    assert [t.trade_id for t in market.state.trades("BTCUSDT")] == [42]
    scheduler.run_due()  # the timer finds the advance done
    assert heard == [START]
