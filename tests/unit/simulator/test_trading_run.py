"""`trade()` paces the demo trader on a clock and counts what the venue did with each
command; here the venue is the engine in this process, on the seeded synthetic market."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from tests.venue_fixtures import venue_symbols
from userstream.clock import ManualClock
from userstream.market.synthetic import SyntheticMarket
from userstream.protocol.events import Event
from userstream.protocol.fold import AccountFold
from userstream.simulator.trader import DemoTrader, TraderView, engine_view
from userstream.simulator.trading import trade
from userstream.venue import Command, Deposit, Engine, VenueError

SYMBOLS = ("BTCUSDT", "ETHUSDT")
ACCOUNT = 1


class EnginePort:
    """The engine as a trading port; the market moves with the clock before each view."""

    def __init__(self, clock: ManualClock, deposit: Decimal) -> None:
        symbols = venue_symbols(*SYMBOLS)
        self.clock = clock
        self.market = SyntheticMarket(symbols, seed=5, start_ms=clock.now_ms())
        self.engine = Engine(symbols, self.market)
        self.fold = AccountFold(self.engine.snapshot(ACCOUNT))
        outcome = self.engine.handle(ACCOUNT, Deposit(asset="USDT", amount=deposit), clock.now_ms())
        self._deliver(outcome.events)

    def _deliver(self, events: Sequence[Event]) -> None:
        for event in events:
            self.fold.apply(event)

    async def view(self) -> TraderView:
        now = self.clock.now_ms()
        self._deliver(self.engine.on_market(self.market.advance(now), now).get(ACCOUNT, []))
        return engine_view(self.engine, self.market, ACCOUNT)

    async def submit(self, command: Command) -> None:
        outcome = self.engine.handle(ACCOUNT, command, self.clock.now_ms())
        self._deliver(outcome.events)
        assert self.fold.state == self.engine.snapshot(ACCOUNT)
        if isinstance(outcome.result, VenueError):
            raise outcome.result.to_api_error()


async def test_a_run_makes_rate_decisions_per_second_and_counts_refusals() -> None:
    clock = ManualClock(1_000)
    port = EnginePort(clock, Decimal(100_000))
    trader = DemoTrader(venue_symbols(*SYMBOLS), seed=9)
    run = asyncio.create_task(trade(trader, port, clock, rate=4, duration_s=30))
    while not run.done():
        await clock.advance(50)
        await asyncio.sleep(0)
    stats = run.result()
    assert stats.decisions == 120  # 4/s for 30 s of the clock
    assert stats.accepted + sum(stats.refused.values()) == stats.decisions
    assert stats.failures == 0
    assert stats.accepted >= 110
    assert port.engine.trades(ACCOUNT)  # it traded


async def test_an_account_without_margin_is_refused_and_the_run_goes_on() -> None:
    clock = ManualClock(1_000)
    port = EnginePort(clock, Decimal(1))  # not enough for any order
    trader = DemoTrader(venue_symbols(*SYMBOLS), seed=9)
    run = asyncio.create_task(trade(trader, port, clock, rate=2, duration_s=10))
    while not run.done():
        await clock.advance(100)
        await asyncio.sleep(0)
    stats = run.result()
    assert stats.decisions == 20
    assert stats.refused[-2019] > 0  # Margin is insufficient.
    assert stats.last_error is not None
