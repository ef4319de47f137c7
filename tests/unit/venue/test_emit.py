"""`emit.order_update` builds `o` from a template in parts, or from an earlier `o` of the
same order: each way gives the event a one-call build of every field gives."""

from __future__ import annotations

from decimal import Decimal

from userstream.protocol.codec import encode_event
from userstream.protocol.events import (
    ExecutionType,
    ExpiryReason,
    OrderStatus,
    OrderTradeUpdate,
    OrderType,
    OrderUpdate,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
)
from userstream.venue import emit
from userstream.venue.state import Order, TradeRecord

D = Decimal


def _order() -> Order:
    return Order(
        order_id=7,
        client_order_id="abc",
        symbol="BTCUSDT",
        side=Side.SELL,
        position_side=PositionSide.BOTH,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.IOC,
        quantity=D("0.010"),
        price=D("90000.1"),
        reduce_only=True,
        price_match=PriceMatch.NONE,
        self_trade_prevention_mode=SelfTradePreventionMode.EXPIRE_TAKER,
        good_till_date=0,
        time=5,
        update_time=5,
    )


def _by_keyword(
    order: Order,
    execution: ExecutionType,
    now_ms: int,
    notional: tuple[Decimal, Decimal],
    fill: TradeRecord | None,
) -> OrderTradeUpdate:
    """The event built in one call, every field by keyword."""
    bids, asks = notional
    return OrderTradeUpdate(
        transaction_time=now_ms,
        event_time=now_ms,
        order=OrderUpdate(
            symbol=order.symbol,
            client_order_id=order.client_order_id,
            side=order.side,
            order_type=order.order_type,
            time_in_force=order.time_in_force,
            original_quantity=order.quantity,
            original_price=order.price,
            average_price=order.average_price,
            stop_price=order.stop_price,
            execution_type=execution,
            order_status=order.status,
            order_id=order.order_id,
            last_filled_quantity=fill.qty if fill else D(0),
            filled_accumulated_quantity=order.executed_qty,
            last_filled_price=fill.price if fill else D(0),
            commission=fill.commission if fill else D(0),
            commission_asset="USDT",
            trade_time=fill.time if fill else now_ms,
            trade_id=fill.trade_id if fill else 0,
            bids_notional=bids,
            ask_notional=asks,
            is_maker=fill.maker if fill else False,
            reduce_only=order.reduce_only,
            working_type=order.working_type,
            original_order_type=order.order_type,
            position_side=order.position_side,
            close_position=order.close_position,
            realized_profit=fill.realized_pnl if fill else D(0),
            price_protection=order.price_protect,
            strategy_id=0,
            ignored_ss=0,
            self_trade_prevention_mode=order.self_trade_prevention_mode,
            price_match=order.price_match,
            good_till_date=order.good_till_date,
            expiry_reason=(
                order.expiry_reason if execution is ExecutionType.EXPIRED else ExpiryReason.NONE
            ),
        ),
    )


def test_order_update_equals_a_one_call_build_with_and_without_an_earlier_o() -> None:
    order = _order()
    notional = (D(0), D("900.001"))
    new = emit.order_update(order, ExecutionType.NEW, 5, notional, "USDT")
    assert new == _by_keyword(order, ExecutionType.NEW, 5, notional, None)
    assert encode_event(new) == encode_event(
        _by_keyword(order, ExecutionType.NEW, 5, notional, None)
    )

    fill = TradeRecord(
        trade_id=3,
        order_id=7,
        symbol="BTCUSDT",
        side=Side.SELL,
        position_side=PositionSide.BOTH,
        price=D("90000.1"),
        qty=D("0.004"),
        quote_qty=D("360.0004"),
        realized_pnl=D("1.25"),
        commission=D("0.18000020"),
        commission_asset="USDT",
        maker=False,
        time=6,
    )
    order.executed_qty = fill.qty
    order.cum_quote = fill.quote_qty
    order.status = OrderStatus.PARTIALLY_FILLED
    after = (D(0), D("540.0006"))
    expected = _by_keyword(order, ExecutionType.TRADE, 6, after, fill)
    for earlier in (None, new.order):
        trade = emit.order_update(order, ExecutionType.TRADE, 6, after, "USDT", fill, None, earlier)
        assert trade == expected
        assert encode_event(trade) == encode_event(expected)

    order.status = OrderStatus.EXPIRED
    order.expiry_reason = ExpiryReason.IOC_NOT_FILLED
    expected = _by_keyword(order, ExecutionType.EXPIRED, 6, (D(0), D(0)), None)
    for earlier in (None, new.order):
        expired = emit.order_update(
            order, ExecutionType.EXPIRED, 6, (D(0), D(0)), "USDT", None, None, earlier
        )
        assert expired == expected
        assert encode_event(expired) == encode_event(expected)
