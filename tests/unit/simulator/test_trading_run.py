"""`trade()` paces the demo trader on a clock and counts what the venue did with each
command; here through `EnginePort`, to the engine in this process on the seeded synthetic
market."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from tests.venue_fixtures import venue_symbols
from userstream.clock import ManualClock
from userstream.market.synthetic import SyntheticMarket
from userstream.protocol.events import Event
from userstream.protocol.fold import AccountFold
from userstream.simulator.trader import DemoTrader
from userstream.simulator.trading import EnginePort, trade
from userstream.venue import Command, Deposit, Engine, VenueError

SYMBOLS = ("BTCUSDT", "ETHUSDT")
ACCOUNT = 1


class Venue:
    """The engine on the seeded synthetic market, as a server hosts it: the market moves
    with the clock, and every event folds into a mirror that must equal the snapshot."""

    def __init__(self, clock: ManualClock, deposit: Decimal) -> None:
        symbols = venue_symbols(*SYMBOLS)
        self.market = SyntheticMarket(symbols, seed=5, start_ms=clock.now_ms())
        self.engine = Engine(symbols, self.market)
        self.fold = AccountFold(self.engine.snapshot(ACCOUNT))
        self.port = EnginePort(self.engine, self.market, ACCOUNT, self.execute, clock)
        deposit_events = self.engine.handle(
            ACCOUNT, Deposit(asset="USDT", amount=deposit), clock.now_ms()
        ).events
        self._deliver(deposit_events)

    def _deliver(self, events: Sequence[Event]) -> None:
        for event in events:
            self.fold.apply(event)

    async def execute(self, command: Command, now_ms: int) -> object:
        self._deliver(self.engine.on_market(self.market.advance(now_ms), now_ms).get(ACCOUNT, []))
        outcome = self.engine.handle(ACCOUNT, command, now_ms)
        self._deliver(outcome.events)
        assert self.fold.state == self.engine.snapshot(ACCOUNT)
        if isinstance(outcome.result, VenueError):
            raise outcome.result.to_api_error()
        return outcome.result


async def test_a_run_makes_rate_decisions_per_second_and_counts_refusals() -> None:
    clock = ManualClock(1_000)
    venue = Venue(clock, Decimal(100_000))
    trader = DemoTrader(venue_symbols(*SYMBOLS), seed=9)
    run = asyncio.create_task(trade(trader, venue.port, clock, rate=4, duration_s=30))
    while not run.done():
        await clock.advance(50)
        await asyncio.sleep(0)
    stats = run.result()
    assert stats.decisions == 120  # 4/s for 30 s of the clock
    assert stats.accepted + sum(stats.refused.values()) == stats.decisions
    assert stats.failures == 0
    assert stats.accepted >= 110
    assert venue.engine.trades(ACCOUNT)  # it traded


async def test_an_account_without_margin_is_refused_and_the_run_goes_on() -> None:
    clock = ManualClock(1_000)
    venue = Venue(clock, Decimal(1))  # not enough for any order
    trader = DemoTrader(venue_symbols(*SYMBOLS), seed=9)
    run = asyncio.create_task(trade(trader, venue.port, clock, rate=2, duration_s=10))
    while not run.done():
        await clock.advance(100)
        await asyncio.sleep(0)
    stats = run.result()
    assert stats.decisions == 20
    assert stats.refused[-2019] > 0  # Margin is insufficient.
    assert stats.last_error is not None
