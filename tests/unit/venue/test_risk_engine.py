"""The risk side inside the engine: algo orders triggered by the market, funding, margin calls,
liquidation, position modes and income, each with its events and the fold check."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.venue.helpers import BTC, D, funded, market_order
from tests.venue_fixtures import HandMarket, venue_symbols
from userstream.market.types import FundingSettlement, MarkUpdate
from userstream.protocol.events import (
    AccountConfigUpdate,
    AccountUpdate,
    AlgoUpdate,
    ConditionalOrderTriggerReject,
    Event,
    MarginCallMarginType,
    OrderTradeUpdate,
    OrderType,
    PositionSide,
    Side,
    TimeInForce,
)
from userstream.protocol.fold import AccountFold
from userstream.venue import (
    Ack,
    CancelOrder,
    ChangeLeverage,
    ChangeMarginType,
    Engine,
    NewOrder,
    OrderView,
    VenueError,
)
from userstream.venue.algo import AlgoRecord, CancelAlgoOrder, NewAlgoOrder


def move(engine: Engine, market: HandMarket, price: str, now: int) -> list[Event]:
    """Re-centre the book on `price` (mark = price) and tell the engine about the mark."""
    p = D(price)
    market.set_book(BTC, [(str(p - D("0.1")), "50")], [(str(p), "50")], mark=price)
    return engine.on_market([market.mark(BTC)], now).get(1, [])


def kinds(events: list[Event]) -> list[str]:
    out = []
    for e in events:
        if isinstance(e, AlgoUpdate):
            out.append(f"ALGO:{e.order.status}")
        elif isinstance(e, OrderTradeUpdate):
            out.append(f"ORDER:{e.order.execution_type}")
        else:
            out.append(type(e).__name__)
    return out


class Folded:
    """The account as its events describe it, checked against the engine's snapshot."""

    def __init__(self, engine: Engine, account: int = 1) -> None:
        self.engine, self.account = engine, account
        self.fold = AccountFold(engine.snapshot(account))

    def apply(self, events: list[Event]) -> None:
        for event in events:
            self.fold.apply(event)
        assert self.fold.state == self.engine.snapshot(self.account)


def test_stop_market_close_position_triggers_on_the_mark() -> None:
    engine, market = funded()
    fold = Folded(engine)
    fold.apply(list(engine.handle(1, market_order(Side.BUY, "0.1"), 2).events))
    stop = NewAlgoOrder(
        symbol=BTC,
        side="SELL",
        order_type="STOP_MARKET",
        trigger_price=D("95000"),
        close_position=True,
        working_type="MARK_PRICE",
    )
    placed = engine.risk.new_algo_order(1, stop, 3)
    assert isinstance(placed.result, AlgoRecord)
    fold.apply(list(placed.events))
    assert kinds(list(placed.events)) == ["ALGO:NEW"]
    assert move(engine, market, "96000", 4) == []
    events = move(engine, market, "94990", 5)
    fold.apply(events)
    assert kinds(events) == [
        "ALGO:TRIGGERING",
        "ALGO:TRIGGERED",
        "ORDER:NEW",
        "TradeLite",
        "ORDER:TRADE",
        "AccountUpdate",
        "ALGO:FINISHED",
    ]
    child = events[2]
    assert isinstance(child, OrderTradeUpdate)
    assert (child.order.order_type, child.order.original_order_type) == ("MARKET", "STOP_MARKET")
    assert child.order.stop_price == D(95000)
    assert child.order.working_type == "MARK_PRICE"
    assert child.order.close_position is True
    triggered = events[1]
    assert isinstance(triggered, AlgoUpdate)
    assert triggered.order.order_id == str(child.order.order_id)
    finished = events[-1]
    assert isinstance(finished, AlgoUpdate)
    assert finished.order.executed_quantity == D("0.1")
    assert engine.snapshot(1).positions == {}
    record = engine.risk.algo_order(1, placed.result.algo_id, None)
    assert isinstance(record, AlgoRecord)
    assert (record.status, record.actual_order_id) == ("FINISHED", child.order.order_id)


def test_immediate_trigger_and_cancel() -> None:
    engine, _ = funded()
    stop = NewAlgoOrder(
        symbol=BTC,
        side="BUY",
        order_type="STOP_MARKET",
        trigger_price=D("99000"),
        quantity=D("0.01"),
    )
    assert engine.risk.new_algo_order(1, stop, 2).result == VenueError(
        -2021, "Order would immediately trigger."
    )
    above = NewAlgoOrder(
        symbol=BTC,
        side="BUY",
        order_type="STOP_MARKET",
        trigger_price=D("101000"),
        quantity=D("0.01"),
        client_algo_id="mine",
    )
    assert isinstance(engine.risk.new_algo_order(1, above, 2).result, AlgoRecord)
    assert len(engine.risk.open_algo_orders(1)) == 1
    cancelled = engine.risk.cancel_algo_order(1, CancelAlgoOrder(client_algo_id="mine"), 3)
    assert kinds(list(cancelled.events)) == ["ALGO:CANCELED"]
    assert engine.risk.open_algo_orders(1) == []


def test_close_position_without_a_position_expires_and_reduce_only_is_rejected() -> None:
    engine, market = funded()
    close = NewAlgoOrder(
        symbol=BTC,
        side="SELL",
        order_type="STOP_MARKET",
        trigger_price=D("95000"),
        close_position=True,
        working_type="MARK_PRICE",
    )
    reduce = NewAlgoOrder(
        symbol=BTC,
        side="SELL",
        order_type="STOP_MARKET",
        trigger_price=D("95000"),
        quantity=D("0.01"),
        reduce_only=True,
        working_type="MARK_PRICE",
    )
    engine.risk.new_algo_order(1, close, 2)
    engine.risk.new_algo_order(1, reduce, 2)
    events = move(engine, market, "94000", 3)
    assert kinds(events) == [
        "ALGO:TRIGGERING",
        "ALGO:EXPIRED",
        "ALGO:TRIGGERING",
        "ALGO:REJECTED",
        "ConditionalOrderTriggerReject",
    ]
    rejected = events[3]
    assert isinstance(rejected, AlgoUpdate)
    assert rejected.order.reject_reason == "Reduce Only reject"
    assert isinstance(events[4], ConditionalOrderTriggerReject)


def test_stop_limit_child_rests_then_finishes_when_filled() -> None:
    engine, market = funded()
    stop = NewAlgoOrder(
        symbol=BTC,
        side="BUY",
        order_type="STOP",
        trigger_price=D("101000"),
        price=D("100500"),
        quantity=D("0.01"),
        time_in_force="GTC",
    )
    engine.risk.new_algo_order(1, stop, 2)
    # The contract price reaches the trigger; the book is above the limit, so it rests.
    market.set_book(BTC, [("101000", "5")], [("101000.1", "5")], mark="101000")
    trade = market.trade(BTC, "101000", "1", buyer_is_maker=False)
    events = engine.on_market([trade], 3)[1]
    assert kinds(events) == ["ALGO:TRIGGERING", "ALGO:TRIGGERED", "ORDER:NEW"]
    fill = market.trade(BTC, "100400", "1", buyer_is_maker=True)
    events = engine.on_market([fill], 4)[1]
    assert kinds(events)[-1] == "ALGO:FINISHED"


def test_funding_cross_pays_with_balance_only_and_isolated_moves_its_wallet() -> None:
    engine, _ = funded()
    fold = Folded(engine)
    fold.apply(list(engine.handle(1, market_order(Side.BUY, "0.1"), 2).events))
    settle = FundingSettlement(BTC, 28_800_000, D("0.0001"), D("100000"))
    events = engine.on_market([settle], 3)[1]
    fold.apply(events)
    (event,) = events
    assert isinstance(event, AccountUpdate)
    assert event.update.reason == "FUNDING_FEE"
    assert event.update.funding_symbol == BTC
    assert event.update.positions == ()
    assert event.update.balances[0].balance_change == D("-1.00000000")
    rows = engine.risk.income(1, 3, income_type="FUNDING_FEE")
    assert [(r.income, r.info, r.time) for r in rows] == [(D("-1"), "FUNDING_FEE", 28_800_000)]
    # Isolated: the isolated wallet takes the payment too. A short receives.
    engine2, _ = funded()
    engine2.handle(1, ChangeMarginType(symbol=BTC, margin_type=MarginCallMarginType.ISOLATED), 2)
    engine2.handle(1, market_order(Side.SELL, "0.1"), 2)
    iw = engine2.snapshot(1).positions[(BTC, "BOTH")].isolated_wallet
    fold2 = Folded(engine2)
    events = engine2.on_market([settle], 3)[1]
    fold2.apply(events)
    (event,) = events
    assert isinstance(event, AccountUpdate)
    assert event.update.positions[0].isolated_wallet == iw + 1


def test_isolated_liquidation_loses_exactly_the_isolated_margin() -> None:
    engine, market = funded()
    engine.handle(1, ChangeMarginType(symbol=BTC, margin_type=MarginCallMarginType.ISOLATED), 2)
    engine.handle(1, ChangeLeverage(symbol=BTC, leverage=20), 2)
    engine.handle(1, market_order(Side.BUY, "0.1"), 3)
    fold = Folded(engine)
    before = engine.snapshot(1)
    iw = before.positions[(BTC, "BOTH")].isolated_wallet
    wallet = before.balances["USDT"].wallet_balance
    cross = before.balances["USDT"].cross_wallet_balance
    price = engine.risk.liquidation_price(1, BTC, "BOTH")
    assert D(95000) < price < D(100000)
    # Between the margin call threshold and the liquidation price: MARGIN_CALL only.
    events = move(engine, market, str((price + D(30)).quantize(D("0.1"))), 4)
    fold.apply(events)
    assert kinds(events) == ["MarginCall"]
    assert move(engine, market, str((price + D(20)).quantize(D("0.1"))), 5) == []  # once
    events = move(engine, market, str((price - D(1)).quantize(D("0.1"))), 6)
    fold.apply(events)
    assert kinds(events) == ["ORDER:CALCULATED", "AccountUpdate"]
    forced = events[0]
    assert isinstance(forced, OrderTradeUpdate)
    o = forced.order
    assert o.client_order_id.startswith("autoclose-")
    assert (o.order_type, o.original_order_type, o.order_status) == (
        "LIQUIDATION",
        "LIQUIDATION",
        "FILLED",
    )
    assert (o.time_in_force, o.reduce_only, o.side) == ("IOC", True, "SELL")
    assert o.commission == (o.last_filled_quantity * o.last_filled_price * D("0.0125")).quantize(
        D("0.00000001"), rounding="ROUND_DOWN"
    )
    after = engine.snapshot(1)
    assert after.positions == {}
    loss = wallet - after.balances["USDT"].wallet_balance
    assert 0 <= iw - loss < D("0.1")  # at most the tick rounded in the holder's favour
    assert after.balances["USDT"].cross_wallet_balance >= cross
    (force,) = engine.risk.drain_force_orders()
    assert force.symbol == BTC


def test_cross_liquidation_clears_the_account_and_never_goes_negative() -> None:
    engine, market = funded("1000")
    engine.handle(1, ChangeLeverage(symbol=BTC, leverage=20), 2)
    engine.handle(1, market_order(Side.BUY, "0.1"), 3)
    fold = Folded(engine)
    price = engine.risk.liquidation_price(1, BTC, "BOTH")
    events = move(engine, market, str((price - D(5)).quantize(D("0.1"))), 4)
    fold.apply(events)
    assert kinds(events) == ["MarginCall", "ORDER:CALCULATED", "AccountUpdate"]
    snapshot = engine.snapshot(1)
    assert snapshot.positions == {}
    assert D(0) <= snapshot.balances["USDT"].wallet_balance < D("0.1")


def test_a_gap_through_the_bankruptcy_price_leaves_no_negative_balance() -> None:
    engine, market = funded("1000")
    engine.handle(1, ChangeLeverage(symbol=BTC, leverage=20), 2)
    engine.handle(1, market_order(Side.BUY, "0.1"), 3)
    # The mark jumps far past the bankruptcy price: the forced order still closes at it,
    # so the account loses its margin and no more (the insurance fund takes the gap).
    events = move(engine, market, "50000", 4)
    assert "ORDER:CALCULATED" in kinds(events)
    assert engine.snapshot(1).balances["USDT"].wallet_balance >= 0


def test_position_mode_switch_rules_and_hedge_positions() -> None:
    engine, _ = funded()
    assert engine.risk.set_position_mode(1, False, 2).result == VenueError(
        -4059, "No need to change position side."
    )
    engine.handle(1, market_order(Side.BUY, "0.01"), 2)
    assert engine.risk.set_position_mode(1, True, 3).result == VenueError(
        -4068, "Position side cannot be changed if there exists position."
    )
    engine.handle(1, market_order(Side.SELL, "0.01"), 4)
    resting = NewOrder(
        symbol=BTC,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=D("0.01"),
        price=D("90000"),
        time_in_force=TimeInForce.GTC,
    )
    placed = engine.handle(1, resting, 5)
    assert isinstance(placed.result, OrderView)
    assert engine.risk.set_position_mode(1, True, 6).result == VenueError(
        -4067, "Position side cannot be changed if there exists open orders."
    )
    engine.handle(1, CancelOrder(symbol=BTC, order_id=placed.result.order_id), 7)
    assert engine.risk.set_position_mode(1, True, 8).result == Ack(200, "success")
    assert engine.handle(1, market_order(Side.BUY, "0.01"), 9).result == VenueError(
        -4061, "Order's position side does not match user's setting."
    )
    engine.handle(1, market_order(Side.BUY, "0.02", position_side=PositionSide.LONG), 10)
    engine.handle(1, market_order(Side.SELL, "0.01", position_side=PositionSide.SHORT), 11)
    positions = engine.snapshot(1).positions
    assert positions[(BTC, "LONG")].position_amount == D("0.02")
    assert positions[(BTC, "SHORT")].position_amount == D("-0.01")
    close = engine.handle(1, market_order(Side.SELL, "0.01", position_side=PositionSide.LONG), 12)
    update = next(e for e in close.events if isinstance(e, OrderTradeUpdate))
    assert update.order.reduce_only is True  # closing orders report R=true (spec §4.4)
    # A closing order larger than its side is trimmed to it: LONG never turns short (§5.10).
    engine.handle(1, market_order(Side.SELL, "0.05", position_side=PositionSide.LONG), 13)
    assert (BTC, "LONG") not in engine.snapshot(1).positions
    assert engine.handle(
        1, market_order(Side.SELL, "0.01", position_side=PositionSide.LONG), 14
    ).result == VenueError(-2022, "ReduceOnly Order is rejected.")


def test_multi_assets_mode() -> None:
    engine, _ = funded()
    outcome = engine.risk.set_multi_assets(1, True, 2)
    (event,) = outcome.events
    assert isinstance(event, AccountConfigUpdate)
    assert event.account_info_config is not None
    assert event.account_info_config.multi_assets_mode is True
    assert engine.risk.set_multi_assets(1, True, 3).result == VenueError(
        -4171, "Adjusted asset mode is currently set."
    )
    engine.risk.set_multi_assets(1, False, 4)
    engine.handle(1, ChangeMarginType(symbol=BTC, margin_type=MarginCallMarginType.ISOLATED), 5)
    assert isinstance(engine.risk.set_multi_assets(1, True, 6).result, VenueError)


def test_income_types_and_signs() -> None:
    engine, market = funded()
    engine.handle(1, market_order(Side.BUY, "0.1"), 2)
    market.set_book(BTC, [("101000", "5")], [("101000.1", "5")], mark="101000")
    engine.handle(1, market_order(Side.SELL, "0.1"), 3)
    rows = engine.risk.income(1, 4)
    by_type: dict[str, list[Decimal]] = {}
    for row in rows:
        by_type.setdefault(row.income_type, []).append(row.income)
    assert by_type["TRANSFER"] == [D("10000")]
    assert by_type["REALIZED_PNL"] == [D("99.99000000")]
    assert all(fee < 0 for fee in by_type["COMMISSION"])
    assert len({row.tran_id for row in rows}) == len(rows)


def test_algo_orders_survive_export_and_restore() -> None:
    engine, market = funded()
    stop = NewAlgoOrder(
        symbol=BTC,
        side="BUY",
        order_type="STOP_MARKET",
        trigger_price=D("101000"),
        quantity=D("0.01"),
        working_type="MARK_PRICE",
    )
    engine.risk.new_algo_order(1, stop, 2)
    restored = Engine(venue_symbols(BTC), market, state=Engine.decode_state(engine.encode_state()))
    assert len(restored.risk.open_algo_orders(1)) == 1
    market.set_book(BTC, [("101000", "5")], [("101000.1", "5")], mark="101000.1")
    events = restored.on_market([market.mark(BTC)], 3)[1]
    assert kinds(events)[0] == "ALGO:TRIGGERING"
    assert isinstance(market.mark(BTC), MarkUpdate)


def test_position_margin_moves_isolated_wallet_with_a_margin_transfer() -> None:
    engine, _ = funded()
    assert engine.risk.position_margin(1, BTC, "BOTH", D(10), True, 2).result == VenueError(
        -4049, "Add margin only support for isolated position."
    )
    engine.handle(1, ChangeMarginType(symbol=BTC, margin_type=MarginCallMarginType.ISOLATED), 2)
    assert engine.risk.position_margin(1, BTC, "BOTH", D(10), True, 3).result == VenueError(
        -4054, "Cannot add position margin: position is 0."
    )
    engine.handle(1, market_order(Side.BUY, "0.1"), 4)
    fold = Folded(engine)
    before = engine.snapshot(1)
    iw = before.positions[(BTC, "BOTH")].isolated_wallet
    added = engine.risk.position_margin(1, BTC, "BOTH", D(100), True, 5)
    fold.apply(list(added.events))
    (event,) = added.events
    assert isinstance(event, AccountUpdate)
    assert event.update.reason == "MARGIN_TRANSFER"
    after = engine.snapshot(1)
    assert after.positions[(BTC, "BOTH")].isolated_wallet == iw + 100
    assert after.balances["USDT"].wallet_balance == before.balances["USDT"].wallet_balance
    assert (
        after.balances["USDT"].cross_wallet_balance
        == before.balances["USDT"].cross_wallet_balance - 100
    )
    assert engine.risk.position_margin(1, BTC, "BOTH", D(10**6), True, 6).result == VenueError(
        -4050, "Cross balance insufficient."
    )
    removed = engine.risk.position_margin(1, BTC, "BOTH", D(100), False, 7)
    fold.apply(list(removed.events))
    assert engine.risk.position_margin(1, BTC, "BOTH", iw, False, 8).result == VenueError(
        -4051, "Isolated balance insufficient."
    )


def test_a_gtd_stop_limit_places_a_gtd_child() -> None:
    engine, market = funded()
    deadline = 10_000_000
    stop = NewAlgoOrder(
        symbol=BTC,
        side="BUY",
        order_type="STOP",
        trigger_price=D("101000"),
        price=D("100500"),
        quantity=D("0.01"),
        time_in_force="GTD",
        good_till_date=deadline,
    )
    engine.risk.new_algo_order(1, stop, 2)
    market.set_book(BTC, [("101000", "5")], [("101000.1", "5")], mark="101000")
    events = engine.on_market([market.trade(BTC, "101000", "1", buyer_is_maker=False)], 3)[1]
    child = events[2]
    assert isinstance(child, OrderTradeUpdate)
    assert (child.order.time_in_force, child.order.good_till_date) == ("GTD", deadline)
    events = engine.tick(deadline)[1]
    assert kinds(events) == ["ORDER:EXPIRED", "ALGO:FINISHED"]


def test_trailing_stop_follows_the_high_and_its_child_carries_ap_and_cr() -> None:
    engine, market = funded()
    fold = Folded(engine)
    fold.apply(list(engine.handle(1, market_order(Side.BUY, "0.1"), 2).events))
    trailing = NewAlgoOrder(
        symbol=BTC,
        side="SELL",
        order_type="TRAILING_STOP_MARKET",
        quantity=D("0.1"),
        reduce_only=True,
        activate_price=D("101000"),
        callback_rate=D("1"),
        working_type="MARK_PRICE",
    )
    placed = engine.risk.new_algo_order(1, trailing, 3)
    fold.apply(list(placed.events))
    events = move(engine, market, "101500", 4)
    assert [
        (e.order.status, e.order.is_activated) for e in events if isinstance(e, AlgoUpdate)
    ] == [("NEW", True)]
    assert move(engine, market, "103000", 5) == []
    assert move(engine, market, "102000", 6) == []  # above 103,000 × 0.99 = 101,970
    events = move(engine, market, "101900", 7)
    fold.apply(events)
    assert kinds(events)[:3] == ["ALGO:TRIGGERING", "ALGO:TRIGGERED", "ORDER:NEW"]
    child = events[2]
    assert isinstance(child, OrderTradeUpdate)
    assert child.order.original_order_type == "TRAILING_STOP_MARKET"
    assert (child.order.activation_price, child.order.callback_rate) == (D("101000"), D("1"))
    assert engine.snapshot(1).positions == {}
