"""Settings, transfers, timers, amends, self-trade prevention, reduce-only and isolated
margin: each rule with its events and hand-computed numbers."""

from __future__ import annotations

from tests.unit.venue.helpers import BTC, D, amend, funded, limit, market_order, order_events
from tests.venue_fixtures import make_engine, venue_symbols
from userstream.protocol.events import (
    AccountConfigUpdate,
    AccountUpdate,
    MarginCallMarginType,
    OrderTradeUpdate,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
)
from userstream.venue import (
    Ack,
    BalanceView,
    CancelAllOrders,
    CancelOrder,
    ChangeLeverage,
    ChangeMarginType,
    CommissionView,
    CountdownCancelAll,
    CountdownView,
    Deposit,
    Engine,
    LeverageView,
    OrderView,
    ResponseType,
    SetCommission,
    VenueError,
    Withdraw,
)

# --- transfers and settings


def test_deposit_and_withdraw_events() -> None:
    engine, _ = make_engine()
    deposit = engine.handle(1, Deposit(asset="USDT", amount=D("1000")), 5)
    assert isinstance(deposit.result, BalanceView)
    (event,) = deposit.events
    assert isinstance(event, AccountUpdate)
    assert event.update.reason == "DEPOSIT"
    assert event.update.positions == ()
    assert event.update.balances[0].balance_change == D("1000")
    withdraw = engine.handle(1, Withdraw(asset="USDT", amount=D("400")), 6)
    (event,) = withdraw.events
    assert isinstance(event, AccountUpdate)
    assert event.update.reason == "WITHDRAW"
    assert event.update.balances[0].balance_change == D("-400")
    assert event.update.balances[0].wallet_balance == D("600")
    too_much = engine.handle(1, Withdraw(asset="USDT", amount=D("601")), 7)
    assert too_much.result == VenueError(-2018, "Balance is insufficient.")
    assert engine.balances(1)[0].update_time == 6


def test_withdraw_is_limited_by_margin_in_use() -> None:
    engine, _ = funded("1000")
    engine.handle(1, limit(Side.BUY, "99000", "0.1"), 2)  # 9900 / 20 = 495 reserved
    assert engine.balances(1)[0].available_balance == D("505")
    assert isinstance(
        engine.handle(1, Withdraw(asset="USDT", amount=D("506")), 3).result, VenueError
    )
    assert isinstance(
        engine.handle(1, Withdraw(asset="USDT", amount=D("505")), 4).result, BalanceView
    )


def test_leverage_change_and_its_event() -> None:
    engine, _ = funded()
    outcome = engine.handle(1, ChangeLeverage(symbol=BTC, leverage=50), 5)
    # maxNotionalValue: the cap of the 50x tier of BTCUSDT (venue/brackets.py, FAQ tiers).
    assert outcome.result == LeverageView(BTC, 50, D("1000000"))
    (event,) = outcome.events
    assert isinstance(event, AccountConfigUpdate)
    assert event.leverage_config is not None
    assert (event.leverage_config.symbol, event.leverage_config.leverage) == (BTC, 50)
    same = engine.handle(1, ChangeLeverage(symbol=BTC, leverage=50), 6)
    assert isinstance(same.result, LeverageView)  # re-setting the value succeeds (§2.6)
    bad = engine.handle(1, ChangeLeverage(symbol=BTC, leverage=126), 7)
    assert bad.result == VenueError(-4028, "Leverage 126 is not valid")


def test_leverage_above_the_position_cap_is_refused() -> None:
    engine, _ = funded("100000")
    engine.handle(1, market_order(Side.BUY, "1"), 5)  # 100000 notional
    outcome = engine.handle(1, ChangeLeverage(symbol=BTC, leverage=125), 6)
    assert outcome.result == VenueError(
        -2027, "Exceeded the maximum allowable position at current leverage."
    )


def test_margin_type_change_rules_and_event() -> None:
    engine, _ = funded()
    same = engine.handle(
        1, ChangeMarginType(symbol=BTC, margin_type=MarginCallMarginType.CROSSED), 2
    )
    assert same.result == VenueError(-4046, "No need to change margin type.")
    engine.handle(1, limit(Side.BUY, "99000"), 3)
    blocked = engine.handle(
        1, ChangeMarginType(symbol=BTC, margin_type=MarginCallMarginType.ISOLATED), 4
    )
    assert blocked.result == VenueError(
        -4047, "Margin type cannot be changed if there exists open orders."
    )
    engine.handle(1, CancelAllOrders(symbol=BTC), 5)
    outcome = engine.handle(
        1, ChangeMarginType(symbol=BTC, margin_type=MarginCallMarginType.ISOLATED), 6
    )
    assert outcome.result == Ack(200, "success")
    (event,) = outcome.events
    assert isinstance(event, AccountUpdate)
    assert event.update.reason == "MARGIN_TYPE_CHANGE"
    assert event.update.balances == ()
    assert event.update.positions[0].margin_type == "isolated"
    assert engine.symbol_config(1)[0].margin_type == "ISOLATED"
    engine.handle(1, market_order(Side.BUY, "0.01"), 7)
    with_position = engine.handle(
        1, ChangeMarginType(symbol=BTC, margin_type=MarginCallMarginType.CROSSED), 8
    )
    assert with_position.result == VenueError(
        -4048, "Margin type cannot be changed if there exists position."
    )


def test_isolated_wallet_funded_on_open_and_released_on_close() -> None:
    engine, market = funded()
    engine.handle(1, ChangeMarginType(symbol=BTC, margin_type=MarginCallMarginType.ISOLATED), 2)
    opened = engine.handle(1, market_order(Side.BUY, "0.02"), 3)
    account = opened.events[-1]
    assert isinstance(account, AccountUpdate)
    # iw = 0.02 x 100000.1 / 20 = 100.0001; cw = wb - iw; fee 0.02 x 100000.1 x 0.0005 = 1.000001
    assert account.update.positions[0].isolated_wallet == D("100.0001")
    assert account.update.balances[0].wallet_balance == D("9998.999999")
    assert account.update.balances[0].cross_wallet_balance == D("9898.999899")
    market.set_book(BTC, [("101000.0", "5")], [("101000.1", "5")], mark="101000")
    half = engine.handle(1, market_order(Side.SELL, "0.01"), 4)
    account = half.events[-1]
    assert isinstance(account, AccountUpdate)
    # Half the position closes: half the isolated wallet returns to the cross wallet.
    assert account.update.positions[0].isolated_wallet == D("50.00005")
    # rp = 0.01 x (101000 - 100000.1) = 9.999; fee = 0.01 x 101000 x 0.0005 = 0.505
    assert account.update.balances[0].wallet_balance == D("10008.493999")
    assert account.update.balances[0].cross_wallet_balance == D("9958.493949")


def test_commission_rates_apply_to_later_fills() -> None:
    engine, _ = funded()
    outcome = engine.handle(1, SetCommission(maker_rate=D("0.0001"), taker_rate=D("0.0003")), 2)
    assert outcome.result == CommissionView(D("0.0001"), D("0.0003"))
    assert engine.commission(1) == CommissionView(D("0.0001"), D("0.0003"))
    trade = engine.handle(1, market_order(Side.BUY, "0.01"), 3).events[2]
    assert isinstance(trade, OrderTradeUpdate)
    assert trade.order.commission == D("0.3000003")  # 1000.001 x 0.0003


# --- timers


def test_countdown_cancels_the_symbols_open_orders_once() -> None:
    engine, _ = funded()
    engine.handle(1, limit(Side.BUY, "99000"), 2)
    engine.handle(1, limit(Side.BUY, "98000"), 3)
    assert engine.handle(1, CountdownCancelAll(symbol=BTC, countdown_ms=1000), 10).result == (
        CountdownView(BTC, 1000)
    )
    assert engine.tick(1009) == {}
    fired = engine.tick(1010)[1]
    assert order_events(fired) == [("CANCELED", "CANCELED", "0")] * 2
    engine.handle(1, limit(Side.BUY, "99000"), 1011)
    assert engine.tick(5000) == {}
    engine.handle(1, CountdownCancelAll(symbol=BTC, countdown_ms=100), 6000)
    engine.handle(1, CountdownCancelAll(symbol=BTC, countdown_ms=0), 6050)
    assert engine.tick(7000) == {}
    assert len(engine.open_orders(1)) == 1


def test_gtd_order_expires_at_its_date_truncated_to_seconds() -> None:
    engine, _ = funded()
    outcome = engine.handle(
        1, limit(Side.BUY, "99000", time_in_force=TimeInForce.GTD, good_till_date=701_234), 100
    )
    assert isinstance(outcome.result, OrderView)
    assert outcome.result.good_till_date == 701_000
    new = outcome.events[0]
    assert isinstance(new, OrderTradeUpdate)
    assert new.order.good_till_date == 701_000
    assert engine.on_market([], 700_999) == {}
    expired = engine.on_market([], 701_000)[1]
    assert order_events(expired) == [("EXPIRED", "EXPIRED", "0")]


# --- amend


def test_amend_moves_price_and_quantity_with_an_amendment_event() -> None:
    engine, _ = funded()
    placed = engine.handle(1, limit(Side.BUY, "99000"), 2).result
    assert isinstance(placed, OrderView)
    outcome = engine.handle(
        1,
        amend(placed.order_id, "99100", "0.02", modify_id="m-1"),
        3,
    )
    assert isinstance(outcome.result, OrderView)
    assert (outcome.result.price, outcome.result.orig_qty) == (D("99100"), D("0.02"))
    (event,) = outcome.events
    assert isinstance(event, OrderTradeUpdate)
    assert (event.order.execution_type, event.order.order_status) == ("AMENDMENT", "NEW")
    assert event.order.modify_id == "m-1"
    assert event.order.bids_notional == D("1982")
    same = engine.handle(
        1,
        amend(placed.order_id, "99100", "0.02"),
        4,
    )
    assert same.result == VenueError(-5027, "No need to modify the order.")


def test_amend_that_crosses_trades_and_gtx_amend_that_crosses_cancels() -> None:
    engine, _ = funded()
    placed = engine.handle(1, limit(Side.BUY, "99000"), 2).result
    gtx = engine.handle(1, limit(Side.BUY, "98000", time_in_force=TimeInForce.GTX), 3).result
    assert isinstance(placed, OrderView)
    assert isinstance(gtx, OrderView)
    crossing = engine.handle(
        1,
        amend(placed.order_id, "100000.1"),
        4,
    )
    assert order_events(crossing.events) == [("AMENDMENT", "NEW", "0"), ("TRADE", "FILLED", "0")]
    post_only = engine.handle(
        1,
        amend(gtx.order_id, "100000.1"),
        5,
    )
    assert order_events(post_only.events) == [("CANCELED", "CANCELED", "0")]


def test_amend_below_the_filled_quantity_cancels() -> None:
    engine, market = funded()
    placed = engine.handle(1, limit(Side.BUY, "99000", "0.02"), 2).result
    assert isinstance(placed, OrderView)
    engine.on_market([market.trade(BTC, "98990", "0.01", buyer_is_maker=True)], 3)
    outcome = engine.handle(
        1,
        amend(placed.order_id, "99000"),
        4,
    )
    assert order_events(outcome.events) == [("CANCELED", "CANCELED", "0")]


def test_amend_of_unknown_order() -> None:
    engine, _ = funded()
    outcome = engine.handle(1, amend(77, "1", "1"), 2)
    assert outcome.result == VenueError(-2013, "Order does not exist.")


# --- self-trade prevention


def resting_sell(engine: Engine) -> OrderView:
    view = engine.handle(1, limit(Side.SELL, "100000.1", "0.01"), 2).result
    assert isinstance(view, OrderView)
    return view


def test_stp_expire_maker_expires_the_resting_order_and_takes_the_book() -> None:
    engine, _ = funded()
    maker = resting_sell(engine)
    outcome = engine.handle(
        1,
        limit(
            Side.BUY,
            "100000.1",
            self_trade_prevention_mode=SelfTradePreventionMode.EXPIRE_MAKER,
            response_type=ResponseType.RESULT,
        ),
        3,
    )
    events = order_events(outcome.events)
    assert events == [
        ("NEW", "NEW", "0"),
        ("EXPIRED", "EXPIRED_IN_MATCH", "1"),
        ("TRADE", "FILLED", "0"),
    ]
    assert engine.order(1, BTC, maker.order_id) == OrderView.of(
        engine.export_state().accounts[1].orders[maker.order_id]
    )
    assert isinstance(outcome.result, OrderView)
    assert outcome.result.status == "FILLED"


def test_stp_expire_taker_and_both() -> None:
    engine, _ = funded()
    resting_sell(engine)
    taker = engine.handle(
        1,
        limit(
            Side.BUY, "100000.1", self_trade_prevention_mode=SelfTradePreventionMode.EXPIRE_TAKER
        ),
        3,
    )
    assert order_events(taker.events) == [("NEW", "NEW", "0"), ("EXPIRED", "EXPIRED_IN_MATCH", "1")]
    ioc = engine.handle(
        1,
        limit(
            Side.BUY,
            "100000.1",
            time_in_force=TimeInForce.IOC,
            self_trade_prevention_mode=SelfTradePreventionMode.EXPIRE_BOTH,
        ),
        4,
    )
    assert order_events(ioc.events) == [
        ("NEW", "NEW", "0"),
        ("EXPIRED", "EXPIRED_IN_MATCH", "1"),
        ("EXPIRED", "EXPIRED_IN_MATCH", "3"),
    ]
    assert engine.open_orders(1) == []


def test_stp_none_trades_with_itself_at_the_resting_price() -> None:
    engine, _ = funded()
    resting_sell(engine)
    outcome = engine.handle(
        1, limit(Side.BUY, "100000.1", self_trade_prevention_mode=SelfTradePreventionMode.NONE), 3
    )
    assert order_events(outcome.events) == [
        ("NEW", "NEW", "0"),
        ("TRADE", "FILLED", "0"),
        ("TRADE", "FILLED", "0"),
    ]
    assert engine.positions(1)[0].position_amt == 0
    trades = engine.trades(1)
    assert [t.maker for t in trades] == [False, True]


# --- reduce-only


def test_reduce_only_orders_are_knocked_out_when_the_position_shrinks() -> None:
    engine, _ = funded()
    engine.handle(1, market_order(Side.BUY, "0.02"), 2)
    engine.handle(1, limit(Side.SELL, "101000", "0.01", reduce_only=True), 3)
    engine.handle(1, limit(Side.SELL, "102000", "0.01", reduce_only=True), 4)
    outcome = engine.handle(1, market_order(Side.SELL, "0.015"), 5)
    # 0.005 left: the older order still covers it (trimmed when it fills), the newer goes.
    assert order_events(outcome.events) == [
        ("NEW", "NEW", "0"),
        ("TRADE", "FILLED", "0"),
        ("EXPIRED", "EXPIRED", "4"),
    ]
    assert [o.price for o in engine.open_orders(1)] == [D("101000")]


def test_reduce_only_market_fills_no_more_than_the_position() -> None:
    engine, _ = funded()
    engine.handle(1, market_order(Side.BUY, "0.01"), 2)
    outcome = engine.handle(
        1, market_order(Side.SELL, "0.05", reduce_only=True, response_type=ResponseType.RESULT), 3
    )
    assert isinstance(outcome.result, OrderView)
    assert outcome.result.executed_qty == D("0.01")
    assert outcome.result.status == "EXPIRED"
    assert engine.positions(1)[0].position_amt == 0


# --- persistence


def test_ids_continue_after_restore() -> None:
    engine, market = funded()
    engine.handle(1, limit(Side.BUY, "99000"), 2)
    engine.handle(1, market_order(Side.BUY, "0.01"), 3)
    engine.handle(1, limit(Side.SELL, "105000", new_client_order_id="keep"), 3)
    raw = engine.encode_state()
    restored = Engine(venue_symbols(BTC), market, state=Engine.decode_state(raw))
    assert restored.snapshot(1) == engine.snapshot(1)
    nxt = restored.handle(1, market_order(Side.BUY, "0.01"), 4)
    assert isinstance(nxt.result, OrderView)
    assert nxt.result.order_id == 4
    assert restored.trades(1)[-1].trade_id == 2
    cancel = restored.handle(1, CancelOrder(symbol=BTC, orig_client_order_id="keep"), 4)
    assert isinstance(cancel.result, OrderView)
    assert cancel.result.order_id == 3
    # The restored resting order still fills from the market.
    events = restored.on_market([market.trade(BTC, "98000", "1", buyer_is_maker=True)], 5)
    assert order_events(events[1]) == [("TRADE", "FILLED", "0")]


def test_resting_reduce_only_larger_than_the_position_fills_it_then_expires() -> None:
    engine, market = funded()
    engine.handle(1, market_order(Side.BUY, "0.01"), 2)
    engine.handle(1, limit(Side.SELL, "101000", "0.03", reduce_only=True), 3)
    events = engine.on_market([market.trade(BTC, "101001", "1", buyer_is_maker=False)], 4)[1]
    assert order_events(events) == [("TRADE", "PARTIALLY_FILLED", "0"), ("EXPIRED", "EXPIRED", "4")]
    assert engine.positions(1)[0].position_amt == 0


def test_position_and_balance_figures_by_hand() -> None:
    engine, market = funded()
    engine.handle(1, market_order(Side.BUY, "0.02"), 2)  # entry 100000.1, fee 1.000001
    engine.handle(1, limit(Side.BUY, "99000", "0.01"), 3)
    market.set_mark(BTC, "101000")
    (position,) = engine.positions(1)
    # uPnL = 0.02 x (101000 - 100000.1) = 19.998; IM = 0.02 x 101000 / 20 = 101
    assert position.unrealized_pnl == D("19.998")
    assert position.position_initial_margin == D("101")
    # open-order IM: the resting BUY adds exposure, 0.01 x 99000 / 20 = 49.5
    assert position.open_order_initial_margin == D("49.5")
    assert position.initial_margin == D("150.5")
    assert position.bid_notional == D("990")
    # MM = 2020 x 0.004 (first bracket) = 8.08
    assert position.maint_margin == D("8.08")
    (usdt,) = engine.balances(1)
    assert usdt.wallet_balance == D("9998.999999")
    assert usdt.margin_balance == D("10018.997999")
    # available = 9998.999999 + 19.998 - 101 - 49.5
    assert usdt.available_balance == D("9868.497999")


def test_hedge_mode_orders_need_long_or_short_and_open_their_own_row() -> None:
    engine, _ = funded()
    # No command switches the mode here (the risk engine's); the state carries the flag.
    engine.export_state().accounts[1].dual_side_position = True
    both = engine.handle(1, market_order(Side.BUY, "0.01"), 2)
    assert both.result == VenueError(-4061, "Order's position side does not match user's setting.")
    reduce = engine.handle(
        1, market_order(Side.BUY, "0.01", position_side=PositionSide.LONG, reduce_only=False), 3
    )
    assert reduce.result == VenueError(-1106, "Parameter 'reduceOnly' sent when not required.")
    outcome = engine.handle(1, market_order(Side.BUY, "0.01", position_side=PositionSide.LONG), 4)
    account = outcome.events[-1]
    assert isinstance(account, AccountUpdate)
    assert account.update.positions[0].position_side == "LONG"
    assert {(p.position_side, p.position_amt) for p in engine.positions(1)} == {
        ("BOTH", D(0)),
        ("LONG", D("0.01")),
    }


def test_amend_with_price_match_resolves_and_records_it() -> None:
    engine, _ = funded()
    placed = engine.handle(1, limit(Side.BUY, "99000"), 2).result
    assert isinstance(placed, OrderView)
    outcome = engine.handle(
        1,
        amend(placed.order_id, None, price_match=PriceMatch.QUEUE),
        3,
    )
    assert isinstance(outcome.result, OrderView)
    assert (outcome.result.price, outcome.result.price_match) == (D("100000.0"), "QUEUE")
    (event,) = outcome.events
    assert isinstance(event, OrderTradeUpdate)
    assert (event.order.original_price, event.order.price_match) == (D("100000.0"), "QUEUE")
