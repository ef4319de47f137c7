"""The demo trader against the engine and the seeded synthetic market: every command is a
real order (or cancel, amend, leverage change), the events are their consequences, and
folding them gives the engine's own snapshot of the account at every step."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from tests.venue_fixtures import venue_symbols
from userstream.market.synthetic import SyntheticMarket
from userstream.protocol.events import (
    AccountConfigUpdate,
    Event,
    ExecutionType,
    OrderTradeUpdate,
    OrderType,
)
from userstream.protocol.fold import AccountFold
from userstream.simulator.trader import DemoTrader, engine_view
from userstream.venue import Command, Deposit, Engine, NewOrder, VenueError

SYMBOLS = ("BTCUSDT", "ETHUSDT")
ACCOUNT = 1


def run(seed: int, steps: int) -> tuple[list[Command], list[Event], int]:
    """`steps` decisions, 250 ms apart; returns the commands, the events and the number of
    commands the engine refused."""
    symbols = venue_symbols(*SYMBOLS)
    market = SyntheticMarket(symbols, seed=seed, start_ms=0)
    now = 1_000
    market.advance(now)
    engine = Engine(symbols, market)
    trader = DemoTrader(symbols, seed=seed)
    fold = AccountFold(engine.snapshot(ACCOUNT))
    events: list[Event] = []
    commands: list[Command] = []
    refused = 0

    def deliver(batch: Sequence[Event]) -> None:
        for event in batch:
            fold.apply(event)
            events.append(event)

    deliver(engine.handle(ACCOUNT, Deposit(asset="USDT", amount=Decimal(100_000)), now).events)
    for _ in range(steps):
        now += 250
        deliver(engine.on_market(market.advance(now), now).get(ACCOUNT, []))
        command = trader.decide(engine_view(engine, market, ACCOUNT))
        assert command is not None
        commands.append(command)
        outcome = engine.handle(ACCOUNT, command, now)
        refused += isinstance(outcome.result, VenueError)
        deliver(outcome.events)
        assert fold.state == engine.snapshot(ACCOUNT)
    return commands, events, refused


def test_the_demo_trader_places_real_orders_whose_events_fold_into_the_snapshot() -> None:
    commands, events, refused = run(seed=7, steps=300)
    kinds = Counter(type(c).__name__ for c in commands)
    assert set(kinds) == {"NewOrder", "CancelOrder", "ModifyOrder", "ChangeLeverage"}
    order_types = Counter(c.order_type for c in commands if isinstance(c, NewOrder))
    assert order_types[OrderType.LIMIT] > 0
    assert order_types[OrderType.MARKET] > 0
    assert refused <= len(commands) // 20  # it trades within the rules, with the odd miss
    executions = Counter(e.order.execution_type for e in events if isinstance(e, OrderTradeUpdate))
    for execution in (
        ExecutionType.NEW,
        ExecutionType.TRADE,
        ExecutionType.CANCELED,
        ExecutionType.AMENDMENT,
    ):
        assert executions[execution] > 0, executions
    assert any(isinstance(e, AccountConfigUpdate) for e in events)


def test_the_same_seed_makes_the_same_commands() -> None:
    first, _, _ = run(seed=3, steps=60)
    again, _, _ = run(seed=3, steps=60)
    other, _, _ = run(seed=4, steps=60)
    assert first == again
    assert first != other
