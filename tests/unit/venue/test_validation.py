"""Every rejection of a new order: Binance's code and exact message, no event, no order
(trading spec §4.1, in its order)."""

from __future__ import annotations

import msgspec
import pytest

from tests.unit.venue.helpers import BTC, D, funded
from tests.venue_fixtures import HandMarket, venue_symbols
from userstream.protocol.events import (
    OrderType,
    PositionSide,
    PriceMatch,
    Side,
    TimeInForce,
)
from userstream.venue import (
    CancelOrder,
    ChangeLeverage,
    Engine,
    ModifyOrder,
    NewOrder,
    OrderView,
    ResponseType,
    VenueError,
)

GTC = TimeInForce.GTC


def order(**overrides: object) -> NewOrder:
    fields: dict[str, object] = {
        "symbol": BTC,
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "time_in_force": GTC,
        "quantity": D("0.01"),
        "price": D("99000"),
    }
    fields.update(overrides)
    return NewOrder(**fields)  # type: ignore[arg-type]


CASES = [
    (
        "limit without timeInForce",
        order(time_in_force=None),
        -1102,
        "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
    ),
    (
        "limit without quantity",
        order(quantity=None),
        -1102,
        "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
    ),
    (
        "limit without price",
        order(price=None),
        -1102,
        "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
    ),
    (
        "market without quantity",
        order(order_type=OrderType.MARKET, quantity=None, price=None, time_in_force=None),
        -1102,
        "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
    ),
    (
        "market with price",
        order(order_type=OrderType.MARKET, time_in_force=None),
        -1106,
        "Parameter 'price' sent when not required.",
    ),
    (
        "market with timeInForce",
        order(order_type=OrderType.MARKET, price=None),
        -1106,
        "Parameter 'timeInForce' sent when not required.",
    ),
    (
        "price with priceMatch",
        order(price_match=PriceMatch.OPPONENT),
        -1106,
        "Parameter 'price' sent when not required.",
    ),
    (
        "priceMatch on market",
        order(
            order_type=OrderType.MARKET,
            price=None,
            time_in_force=None,
            price_match=PriceMatch.OPPONENT,
        ),
        -5038,
        "Price match only supports order type: LIMIT, STOP AND TAKE_PROFIT",
    ),
    (
        "withdrawn priceMatch",
        order(price=None, price_match=PriceMatch.OPPONENT_10),
        -5037,
        "Invalid price match",
    ),
    (
        "conditional type",
        order(order_type=OrderType.STOP_MARKET, price=None),
        -4120,
        "Order type not supported for this endpoint. Please use the Algo Order API endpoints "
        "instead.",
    ),
    ("unknown symbol", order(symbol="NOPEUSDT"), -1121, "Invalid symbol."),
    (
        "client id too long",
        order(new_client_order_id="x" * 37),
        -4015,
        "Client order id length should not be more than 36 chars",
    ),
    (
        "client id characters",
        order(new_client_order_id="a b"),
        -4015,
        "Client order id is not valid.",
    ),
    (
        "price precision",
        order(price=D("99000.001")),
        -1111,
        "Precision is over the maximum defined for this asset.",
    ),
    (
        "quantity precision",
        order(quantity=D("0.0101")),
        -1111,
        "Precision is over the maximum defined for this asset.",
    ),
    ("below min price", order(price=D("500")), -4013, "Price less than min price."),
    ("above max price", order(price=D("4529765")), -4002, "Price greater than max price."),
    ("off tick", order(price=D("99000.05")), -4014, "Price not increased by tick size."),
    ("zero quantity", order(quantity=D("0")), -4003, "Quantity less than zero."),
    ("above max qty", order(quantity=D("1001")), -4005, "Quantity greater than max quantity."),
    (
        "market above market max qty",
        order(order_type=OrderType.MARKET, price=None, time_in_force=None, quantity=D("121")),
        -4005,
        "Quantity greater than max quantity.",
    ),
    (
        "buy above the band",
        order(price=D("105000.1")),
        -4016,
        "Price is higher than mark price multiplier cap.",
    ),
    (
        "sell below the band",
        order(side=Side.SELL, price=D("94999.9")),
        -4024,
        "Price is lower than mark price multiplier floor.",
    ),
    (
        "below min notional",
        order(quantity=D("0.001"), price=D("40000")),
        -4164,
        "Order's notional must be no smaller than 50 (unless you choose reduce only)",
    ),
    (
        "hedge side in one-way mode",
        order(position_side=PositionSide.LONG),
        -4061,
        "Order's position side does not match user's setting.",
    ),
    (
        "reduce-only without a position",
        order(reduce_only=True),
        -2022,
        "ReduceOnly Order is rejected.",
    ),
    (
        "GTD without goodTillDate",
        order(time_in_force=TimeInForce.GTD),
        -1102,
        "Mandatory parameter 'goodTillDate' was not sent, was empty/null, or malformed.",
    ),
    (
        "GTD too soon",
        order(time_in_force=TimeInForce.GTD, good_till_date=1_000 + 600_000),
        -5040,
        "The goodTillDate timestamp must be greater than the current time plus 600 seconds and "
        "smaller than 253402300799000 (UTC 9999-12-31 23:59:59)",
    ),
]


@pytest.mark.parametrize(
    ("command", "code", "msg"),
    [pytest.param(c, code, msg, id=name) for name, c, code, msg in CASES],
)
def test_rejection(command: NewOrder, code: int, msg: str) -> None:
    engine, _ = funded("100000")
    outcome = engine.handle(1, command, 1_000)
    assert outcome.result == VenueError(code, msg)
    assert outcome.events == ()
    assert engine.all_orders(1) == []


def test_reduce_only_is_spared_min_notional() -> None:
    engine, _ = funded("100000")
    short = order(order_type=OrderType.MARKET, side=Side.SELL, price=None, time_in_force=None)
    engine.handle(1, short, 2)
    close = order(quantity=D("0.001"), price=D("40000"), reduce_only=True)
    assert isinstance(engine.handle(1, close, 3).result, OrderView)


def test_duplicate_client_id_among_open_orders_only() -> None:
    engine, _ = funded("100000")
    assert isinstance(engine.handle(1, order(new_client_order_id="dup"), 2).result, OrderView)
    again = engine.handle(1, order(new_client_order_id="dup"), 3)
    assert again.result == VenueError(-4116, "clientOrderId is duplicated")
    engine.handle(1, CancelOrder(symbol=BTC, orig_client_order_id="dup"), 4)
    assert isinstance(engine.handle(1, order(new_client_order_id="dup"), 5).result, OrderView)


def test_max_open_orders_per_symbol() -> None:
    engine, _ = funded("100000")
    for n in range(200):
        assert isinstance(engine.handle(1, order(quantity=D("0.001")), 10 + n).result, OrderView)
    outcome = engine.handle(1, order(quantity=D("0.001")), 500)
    assert outcome.result == VenueError(-2025, "Reach max open order limit.")


def test_margin_insufficient() -> None:
    engine, _ = funded("100")
    # 0.02 x 99000 / 20 = 99 fits in 100; 0.03 needs 148.5.
    assert isinstance(engine.handle(1, order(quantity=D("0.02")), 2).result, OrderView)
    outcome = engine.handle(1, order(quantity=D("0.001")), 3)
    assert outcome.result == VenueError(-2019, "Margin is insufficient.")
    assert outcome.events == ()
    # An order that only closes exposure on the other side needs no more margin.
    assert isinstance(
        engine.handle(1, order(side=Side.SELL, price=D("101000")), 4).result, OrderView
    )


def test_market_order_needs_margin_and_fee() -> None:
    engine, _ = funded("50")
    # 0.01 x 100000.1 / 20 = 50.000005 > 50.
    market = order(order_type=OrderType.MARKET, price=None, time_in_force=None)
    assert engine.handle(1, market, 2).result == VenueError(-2019, "Margin is insufficient.")


def test_position_above_the_leverage_cap() -> None:
    engine, _ = funded("10000000")
    engine.handle(1, ChangeLeverage(symbol=BTC, leverage=125), 2)
    # At 125x the cap is 50,000 notional (the first bracket).
    outcome = engine.handle(1, order(quantity=D("1"), price=D("99000")), 3)
    assert outcome.result == VenueError(
        -2027, "Exceeded the maximum allowable position at current leverage."
    )


def test_price_match_resolves_from_the_book() -> None:
    engine, market = funded("100000")
    market.set_book(
        BTC,
        [("99999.0", "1"), ("99998.0", "1"), ("99997.0", "1"), ("99996.0", "1"), ("99995.0", "1")],
        [("100001.0", "1")],
        mark="100000",
    )
    queue5 = engine.handle(1, order(price=None, price_match=PriceMatch.QUEUE_5), 2).result
    assert isinstance(queue5, OrderView)
    assert queue5.price == D("99995.0")
    assert queue5.price_match == "QUEUE_5"
    opponent5 = engine.handle(1, order(price=None, price_match=PriceMatch.OPPONENT_5), 3)
    assert opponent5.result == VenueError(-5041, "No depth matches this BBO order")


def test_symbol_not_trading() -> None:
    symbols = [msgspec.structs.replace(s, status="SETTLING") for s in venue_symbols(BTC)]
    market = HandMarket([BTC])
    market.set_book(BTC, [("100000.0", "5")], [("100000.1", "5")], mark="100000")
    engine = Engine(symbols, market)
    assert engine.handle(1, order(), 1).result == VenueError(-1122, "Invalid symbol status.")


def test_cancel_and_query_need_an_order_id_or_client_id() -> None:
    engine, _ = funded("100000")
    both_empty = VenueError(
        -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
    )
    assert engine.handle(1, CancelOrder(symbol=BTC), 2).result == both_empty
    assert engine.order(1, BTC) == both_empty
    unknown = engine.handle(1, CancelOrder(symbol="NOPEUSDT", order_id=1), 3)
    assert unknown.result == VenueError(-1121, "Invalid symbol.")


def test_amend_limit_of_ten_thousand() -> None:
    engine, _ = funded("100000")
    placed = engine.handle(1, order(quantity=D("0.001")), 2).result
    assert isinstance(placed, OrderView)
    for n in range(10_000):
        amend = ModifyOrder(
            symbol=BTC,
            side=Side.BUY,
            order_id=placed.order_id,
            quantity=D("0.001"),
            price=D(99000 + n % 2 + 1),
        )
        assert isinstance(engine.handle(1, amend, 3 + n).result, OrderView)
    last = ModifyOrder(
        symbol=BTC, side=Side.BUY, order_id=placed.order_id, quantity=D("0.002"), price=D(99000)
    )
    assert engine.handle(1, last, 20_000).result == VenueError(
        -5026, "Exceed maximum modify order limit."
    )


def test_amend_below_min_notional() -> None:
    engine, _ = funded("100000")
    placed = engine.handle(1, order(quantity=D("0.001")), 2).result
    assert isinstance(placed, OrderView)
    amend = ModifyOrder(
        symbol=BTC, side=Side.BUY, order_id=placed.order_id, quantity=D("0.001"), price=D(40000)
    )
    assert engine.handle(1, amend, 3).result == VenueError(
        -5029, "Order's notional must be no smaller than 50"
    )


def test_market_order_against_a_book_outside_the_band() -> None:
    engine, market = funded("100000")
    market.set_book(BTC, [("99999.0", "1")], [("105100.0", "1")], mark="100000")
    market_buy = order(order_type=OrderType.MARKET, price=None, time_in_force=None)
    assert engine.handle(1, market_buy, 2).result == VenueError(
        -4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit"
    )
    market_sell = order(order_type=OrderType.MARKET, price=None, time_in_force=None, side=Side.SELL)
    assert isinstance(engine.handle(1, market_sell, 3).result, OrderView)


def test_market_order_walks_no_further_than_the_band() -> None:
    engine, market = funded("100000")
    market.set_book(
        BTC, [("99999.0", "1")], [("100001.0", "0.004"), ("105001.0", "1")], mark="100000"
    )
    outcome = engine.handle(
        1,
        order(
            order_type=OrderType.MARKET,
            price=None,
            time_in_force=None,
            response_type=ResponseType.RESULT,
        ),
        2,
    )
    assert isinstance(outcome.result, OrderView)
    assert (outcome.result.status, outcome.result.executed_qty) == ("EXPIRED", D("0.004"))
