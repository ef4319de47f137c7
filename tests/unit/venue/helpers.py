"""Set-ups the venue engine's tests share: a funded account and order commands on BTCUSDT."""

from __future__ import annotations

from decimal import Decimal

from tests.venue_fixtures import HandMarket, make_engine
from userstream.protocol.events import OrderTradeUpdate, OrderType, Side, TimeInForce
from userstream.venue import Deposit, Engine, ModifyOrder, NewOrder

D = Decimal
BTC = "BTCUSDT"


def funded(amount: str = "10000") -> tuple[Engine, HandMarket]:
    """`make_engine()` with account 1 holding `amount` USDT (deposited at t=1)."""
    engine, market = make_engine()
    engine.handle(1, Deposit(asset="USDT", amount=D(amount)), 1)
    return engine, market


def limit(
    side: Side, price: str, qty: str = "0.01", tif: TimeInForce = TimeInForce.GTC, **kw: object
) -> NewOrder:
    """A BTCUSDT LIMIT order; `kw` overrides any other field (`time_in_force` too)."""
    fields: dict[str, object] = {"time_in_force": tif, **kw}
    return NewOrder(
        symbol=BTC,
        side=side,
        order_type=OrderType.LIMIT,
        price=D(price),
        quantity=D(qty),
        **fields,  # type: ignore[arg-type]
    )


def market_order(side: Side, qty: str, **kw: object) -> NewOrder:
    return NewOrder(symbol=BTC, side=side, order_type=OrderType.MARKET, quantity=D(qty), **kw)  # type: ignore[arg-type]


def amend(order_id: int, price: str | None, qty: str = "0.01", **kw: object) -> ModifyOrder:
    """An amend of a BTCUSDT BUY order by id; `kw` sets the other fields."""
    return ModifyOrder(
        symbol=BTC,
        side=Side.BUY,
        order_id=order_id,
        quantity=D(qty),
        price=None if price is None else D(price),
        **kw,  # type: ignore[arg-type]
    )


def order_events(events: object) -> list[tuple[str, str, str]]:
    """(execution type, status, expiry reason) of each ORDER_TRADE_UPDATE in `events`."""
    assert isinstance(events, (list, tuple))
    return [
        (e.order.execution_type, e.order.order_status, e.order.expiry_reason)
        for e in events
        if isinstance(e, OrderTradeUpdate)
    ]
