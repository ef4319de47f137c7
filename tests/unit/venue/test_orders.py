"""LIMIT and MARKET basics: answers, events in Binance's order, fees and PnL by hand."""

from __future__ import annotations

from tests.unit.venue.helpers import BTC, D, funded, limit, market_order
from userstream.protocol.codec import encode_event
from userstream.protocol.events import (
    AccountUpdate,
    OrderTradeUpdate,
    Side,
    TimeInForce,
    TradeLite,
)
from userstream.venue import (
    CancelOrder,
    OrderView,
    ResponseType,
    VenueError,
)


def test_market_buy_fills_at_the_ask_with_taker_fee_and_binances_event_order() -> None:
    engine, _ = funded()
    outcome = engine.handle(1, market_order(Side.BUY, "0.01", response_type=ResponseType.RESULT), 5)
    assert isinstance(outcome.result, OrderView)
    assert outcome.result.status == "FILLED"
    assert outcome.result.avg_price == D("100000.1")
    kinds = [type(e) for e in outcome.events]
    assert kinds == [OrderTradeUpdate, TradeLite, OrderTradeUpdate, AccountUpdate]
    new, _lite, trade, account = outcome.events
    assert isinstance(new, OrderTradeUpdate)
    assert new.order.execution_type == "NEW"
    assert isinstance(trade, OrderTradeUpdate)
    # Fee = 0.01 x 100000.1 x 0.0005 = 0.50000050 (spec §4.3).
    assert trade.order.commission == D("0.50000050")
    assert trade.order.order_status == "FILLED"
    assert isinstance(account, AccountUpdate)
    assert account.update.reason == "ORDER"
    assert account.update.balances[0].wallet_balance == D("9999.49999950")
    position = account.update.positions[0]
    assert position.position_amount == D("0.01")
    assert position.entry_price == D("100000.1")
    # bep = entry x (1 + taker rate) for a fresh long (spec §4.5).
    assert position.breakeven_price == D("100050.10005")


def test_ack_answers_the_order_as_accepted() -> None:
    engine, _ = funded()
    outcome = engine.handle(1, market_order(Side.BUY, "0.01"), 5)
    assert isinstance(outcome.result, OrderView)
    assert outcome.result.status == "NEW"
    assert outcome.result.executed_qty == 0


def test_resting_limit_then_maker_fill_realizes_pnl() -> None:
    engine, market = funded()
    engine.handle(1, market_order(Side.BUY, "0.01"), 5)
    outcome = engine.handle(1, limit(Side.SELL, "100100", "0.01"), 6)
    assert [type(e) for e in outcome.events] == [OrderTradeUpdate]
    new = outcome.events[0]
    assert isinstance(new, OrderTradeUpdate)
    assert new.order.ask_notional == D("1001")
    # A trade at the limit price does not fill it; one through it does.
    assert engine.on_market([market.trade(BTC, "100100", "1", buyer_is_maker=False)], 7) == {}
    events = engine.on_market([market.trade(BTC, "100100.5", "1", buyer_is_maker=False)], 8)[1]
    lite, trade, account = events
    assert isinstance(lite, TradeLite)
    assert lite.is_maker
    assert isinstance(trade, OrderTradeUpdate)
    # rp = 0.01 x (100100 - 100000.1) = 0.999; maker fee = 0.01 x 100100 x 0.0002 = 0.2002.
    assert trade.order.realized_profit == D("0.999")
    assert trade.order.commission == D("0.2002")
    assert trade.order.ask_notional == 0
    assert isinstance(account, AccountUpdate)
    assert account.update.positions[0].position_amount == 0
    # 10000 - 0.5000005 (taker) + 0.999 - 0.2002 = 10000.2987995
    assert account.update.balances[0].wallet_balance == D("10000.29879950")


def test_trade_size_caps_maker_fills_in_price_then_time_order() -> None:
    engine, market = funded()
    first = engine.handle(1, limit(Side.BUY, "99990", "0.002"), 5).result
    second = engine.handle(1, limit(Side.BUY, "99995", "0.002"), 6).result
    third = engine.handle(1, limit(Side.BUY, "99995", "0.002"), 7).result
    assert isinstance(first, OrderView)
    assert isinstance(second, OrderView)
    assert isinstance(third, OrderView)
    engine.on_market([market.trade(BTC, "99980", "0.003", buyer_is_maker=True)], 8)
    views = {o.order_id: o for o in engine.all_orders(1)}
    assert views[second.order_id].status == "FILLED"
    assert views[third.order_id].executed_qty == D("0.001")
    assert views[third.order_id].status == "PARTIALLY_FILLED"
    assert views[first.order_id].executed_qty == 0


def test_crossing_limit_takes_then_rests_the_remainder() -> None:
    engine, market = funded()
    market.set_book(BTC, [("99999.9", "1")], [("100000.1", "0.004"), ("100000.2", "0.003")])
    outcome = engine.handle(
        1, limit(Side.BUY, "100000.2", "0.01", response_type=ResponseType.RESULT), 5
    )
    assert isinstance(outcome.result, OrderView)
    assert outcome.result.status == "PARTIALLY_FILLED"
    assert outcome.result.executed_qty == D("0.007")
    # ap = (0.004 x 100000.1 + 0.003 x 100000.2) / 0.007
    assert outcome.result.avg_price == D("100000.14285714")
    assert [o.order_id for o in engine.open_orders(1)] == [outcome.result.order_id]


def test_ioc_remainder_expires_with_reason_2_and_market_with_9() -> None:
    engine, market = funded()
    market.set_book(BTC, [("99999.9", "1")], [("100000.1", "0.004")])
    ioc = engine.handle(1, limit(Side.BUY, "100000.1", "0.01", TimeInForce.IOC), 5)
    last = ioc.events[-1]
    assert isinstance(last, OrderTradeUpdate)
    assert (last.order.execution_type, last.order.order_status) == ("EXPIRED", "EXPIRED")
    assert last.order.expiry_reason == "2"
    mkt = engine.handle(1, market_order(Side.BUY, "0.01"), 6)
    last = mkt.events[-1]
    assert isinstance(last, OrderTradeUpdate)
    assert last.order.expiry_reason == "9"
    assert last.order.filled_accumulated_quantity == D("0.004")


def test_fok_that_cannot_fill_is_rejected_without_events() -> None:
    engine, market = funded()
    market.set_book(BTC, [("99999.9", "1")], [("100000.1", "0.004")])
    outcome = engine.handle(1, limit(Side.BUY, "100000.1", "0.01", TimeInForce.FOK), 5)
    assert outcome.result == VenueError(
        -5021,
        "Due to the order could not be filled immediately, the FOK order has been rejected. "
        "The order will not be recorded in the order history",
    )
    assert outcome.events == ()
    assert engine.all_orders(1) == []


def test_post_only_that_would_take_is_rejected() -> None:
    engine, _ = funded()
    outcome = engine.handle(1, limit(Side.BUY, "100000.1", "0.01", TimeInForce.GTX), 5)
    assert isinstance(outcome.result, VenueError)
    assert outcome.result.code == -5022
    assert outcome.events == ()
    resting = engine.handle(1, limit(Side.BUY, "100000", "0.01", TimeInForce.GTX), 6)
    assert isinstance(resting.result, OrderView)
    assert resting.result.status == "NEW"


def test_cancel_by_client_id_then_unknown() -> None:
    engine, _ = funded()
    engine.handle(1, limit(Side.BUY, "99000", "0.01", new_client_order_id="my-1"), 5)
    outcome = engine.handle(1, CancelOrder(symbol=BTC, orig_client_order_id="my-1"), 6)
    assert isinstance(outcome.result, OrderView)
    assert outcome.result.status == "CANCELED"
    (event,) = outcome.events
    assert isinstance(event, OrderTradeUpdate)
    assert event.order.execution_type == "CANCELED"
    assert event.order.bids_notional == 0
    again = engine.handle(1, CancelOrder(symbol=BTC, orig_client_order_id="my-1"), 7)
    assert again.result == VenueError(-2011, "Unknown order sent.")
    assert engine.order(1, BTC, order_id=999) == VenueError(-2013, "Order does not exist.")


def test_position_flip_realizes_the_closed_part_and_reopens_at_the_fill() -> None:
    engine, market = funded("100000")
    engine.handle(1, market_order(Side.BUY, "0.01"), 5)
    market.set_book(BTC, [("101000.0", "5")], [("101000.1", "5")], mark="101000")
    outcome = engine.handle(1, market_order(Side.SELL, "0.03"), 6)
    trade = outcome.events[2]
    account = outcome.events[3]
    assert isinstance(trade, OrderTradeUpdate)
    # rp = 0.01 x (101000 - 100000.1) = 9.999
    assert trade.order.realized_profit == D("9.999")
    assert isinstance(account, AccountUpdate)
    position = account.update.positions[0]
    assert position.position_amount == D("-0.02")
    assert position.entry_price == D("101000")
    # bep of a short = entry x (1 - taker rate)
    assert position.breakeven_price == D("100949.5")


def test_trade_lite_writes_prices_and_quantities_at_the_symbols_precision() -> None:
    engine, _ = funded()
    outcome = engine.handle(1, market_order(Side.BUY, "0.01"), 5)
    lite = outcome.events[1]
    assert isinstance(lite, TradeLite)
    assert encode_event(lite) == (
        b'{"e":"TRADE_LITE","E":5,"T":5,"s":"BTCUSDT","q":"0.010","p":"0.00","m":false,'
        b'"c":"' + lite.client_order_id.encode() + b'","S":"BUY","L":"100000.10",'
        b'"l":"0.010","t":1,"i":1}'
    )
    assert len(lite.client_order_id) == 22
    assert lite.client_order_id.isalnum()
