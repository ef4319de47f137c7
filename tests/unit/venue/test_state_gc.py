"""The venue's history stays out of the garbage collector's passes (venue/state.py)."""

from __future__ import annotations

import gc
from decimal import Decimal

from tests.venue_fixtures import make_engine
from userstream.protocol.events import OrderType, Side
from userstream.venue import Deposit, NewOrder


def test_orders_trades_positions_and_balances_are_not_tracked() -> None:
    engine, _ = make_engine()
    engine.handle(1, Deposit(asset="USDT", amount=Decimal(10**6)), 1)
    for side in (Side.BUY, Side.SELL):
        order = NewOrder(
            symbol="BTCUSDT", side=side, order_type=OrderType.MARKET, quantity=Decimal("0.01")
        )
        engine.handle(1, order, 2)
    account = engine.export_state().accounts[1]
    assert len(account.orders) == 2
    assert len(account.trades) == 2
    history = [*account.orders.values(), *account.trades, *account.balances.values()]
    history += [p for s in account.symbols.values() for p in s.positions.values()]
    assert not any(gc.is_tracked(item) for item in history)
    # A dict holding only untracked values is not traversed either.
    assert not gc.is_tracked(account.orders)
