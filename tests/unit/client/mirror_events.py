"""Builders for the events and REST rows the mirror's unit tests feed it."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from tests.conftest import event_fixture
from userstream.client.rest import Snapshot
from userstream.protocol.codec import decode_event
from userstream.protocol.events import (
    AccountUpdate,
    AccountUpdateData,
    Balance,
    OrderTradeUpdate,
    Position,
)
from userstream.protocol.snapshot import AccountInfo, AssetRow, OpenOrder, PositionRisk


def _base_order() -> OrderTradeUpdate:
    event = decode_event(msgspec.json.encode(event_fixture("order_trade_update_real_2026")))
    assert isinstance(event, OrderTradeUpdate)
    return event


_BASE_ORDER = _base_order()


def order_event(
    order_id: int,
    *,
    time: int,
    x: str = "NEW",
    status: str = "NEW",
    filled: str = "0",
    last: str = "0",
    trade_id: int = 0,
    client_id: str | None = None,
    quantity: str = "1",
    price: str = "100",
    symbol: str = "BTCUSDT",
) -> OrderTradeUpdate:
    """An ORDER_TRADE_UPDATE for a LIMIT GTC BUY order."""
    order = msgspec.structs.replace(
        _BASE_ORDER.order,
        symbol=symbol,
        client_order_id=client_id or f"c{order_id}",
        order_type="LIMIT",
        original_order_type="LIMIT",
        original_quantity=Decimal(quantity),
        original_price=Decimal(price),
        average_price=Decimal(price) if Decimal(filled) else Decimal(0),
        execution_type=x,
        order_status=status,
        order_id=order_id,
        last_filled_quantity=Decimal(last),
        filled_accumulated_quantity=Decimal(filled),
        last_filled_price=Decimal(price) if Decimal(last) else Decimal(0),
        trade_time=time,
        trade_id=trade_id,
    )
    return OrderTradeUpdate(transaction_time=time, event_time=time, order=order)


def account_event(
    *,
    time: int,
    wallet: str | None = None,
    position: str | None = None,
    entry: str = "100",
    symbol: str = "BTCUSDT",
    reason: str = "ORDER",
) -> AccountUpdate:
    """An ACCOUNT_UPDATE with a USDT balance and/or a one-way cross position."""
    balances = (
        (
            Balance(
                asset="USDT",
                wallet_balance=Decimal(wallet),
                cross_wallet_balance=Decimal(wallet),
                balance_change=Decimal(0),
            ),
        )
        if wallet is not None
        else ()
    )
    positions = (
        (
            Position(
                symbol=symbol,
                position_amount=Decimal(position),
                entry_price=Decimal(entry) if Decimal(position) else Decimal(0),
                accumulated_realized=Decimal(0),
                unrealized_pnl=Decimal(0),
                margin_type="cross",
                isolated_wallet=Decimal(0),
                position_side="BOTH",
                margin_asset="USDT",
                breakeven_price=Decimal(entry) if Decimal(position) else Decimal(0),
            ),
        )
        if position is not None
        else ()
    )
    return AccountUpdate(
        transaction_time=time,
        event_time=time,
        update=AccountUpdateData(balances=balances, positions=positions, reason=reason),
    )


def open_order(
    order_id: int, *, time: int, filled: str = "0", quantity: str = "1", price: str = "100"
) -> OpenOrder:
    status = "PARTIALLY_FILLED" if Decimal(filled) else "NEW"
    return OpenOrder(
        symbol="BTCUSDT",
        order_id=order_id,
        client_order_id=f"c{order_id}",
        side="SELL",
        order_type="LIMIT",
        status=status,
        price=Decimal(price),
        average_price=Decimal(price) if Decimal(filled) else Decimal(0),
        original_quantity=Decimal(quantity),
        executed_quantity=Decimal(filled),
        time=time,
        update_time=time,
    )


def snapshot(
    *,
    wallet: str = "1000",
    wallet_time: int = 0,
    positions: tuple[tuple[str, int], ...] = (),
    orders: tuple[OpenOrder, ...] = (),
) -> Snapshot:
    """A snapshot with a USDT balance, BTCUSDT positions `(amount, updateTime)`, orders."""
    rows = tuple(
        PositionRisk(
            symbol="BTCUSDT",
            position_amount=Decimal(amount),
            entry_price=Decimal(100),
            breakeven_price=Decimal(100),
            update_time=time,
        )
        for amount, time in positions
    )
    account = AccountInfo(
        assets=(
            AssetRow(
                asset="USDT",
                wallet_balance=Decimal(wallet),
                cross_wallet_balance=Decimal(wallet),
                update_time=wallet_time,
            ),
        )
    )
    return Snapshot(
        taken_ms=0,
        account=account,
        positions=rows,
        orders=orders,
        algo_orders=None,
        symbol_config=None,
        account_config=None,
        weight=50,
    )
