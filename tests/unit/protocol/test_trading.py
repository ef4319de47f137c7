"""Trading request parsing and response shapes (trading spec §1.7, §2, §4.1)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from userstream.exceptions import BinanceAPIError
from userstream.protocol import trading as t

SYMBOLS = {"BTCUSDT": t.SymbolRules("BTCUSDT", 2, 3), "XRPUSDT": t.SymbolRules("XRPUSDT", 4, 1)}
LIMIT = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.010",
    "price": "50000.5",
    "timestamp": "1",
    "recvWindow": "5000",
}


def error_of(params: dict[str, str]) -> tuple[int, str]:
    with pytest.raises(BinanceAPIError) as excinfo:
        t.parse_new_order(params, SYMBOLS)
    return excinfo.value.code, excinfo.value.msg


def test_limit_order() -> None:
    order = t.parse_new_order(LIMIT, SYMBOLS)
    assert order.quantity == Decimal("0.010")
    assert order.price == Decimal("50000.5")
    assert (order.position_side, order.new_order_resp_type, order.price_match) == (
        "BOTH",
        "ACK",
        "NONE",
    )
    assert order.self_trade_prevention_mode == "EXPIRE_MAKER"  # §8 q3


def test_market_order_and_case_insensitive_booleans() -> None:
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "1"}
    assert not t.parse_new_order(params, SYMBOLS).reduce_only
    assert t.parse_new_order(dict(params, reduceOnly="True"), SYMBOLS).reduce_only  # hummingbot


@pytest.mark.parametrize(
    ("change", "code", "text"),
    [
        ({"side": "HOLD"}, -1117, "Invalid side."),
        ({"type": "ICEBERG"}, -1116, "Invalid orderType."),
        ({"timeInForce": "DAY"}, -1115, "Invalid timeInForce."),
        ({"positionSide": "UP"}, -4060, "Invalid position side."),
        ({"newOrderRespType": "FULL"}, -1136, "newOrderRespType"),
        ({"side": ""}, -1102, "'side'"),
        ({"quantity": None}, -1102, "'quantity'"),
        ({"price": None}, -1102, "'price'"),
        ({"timeInForce": None}, -1102, "'timeInForce'"),
        ({"type": "MARKET"}, -1106, "'price'"),
        ({"type": "STOP_MARKET", "stopPrice": "1"}, -4120, "Algo Order API"),
        ({"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ({"newClientOrderId": "x" * 37}, -4015, "36 chars"),
        ({"newClientOrderId": "bad id!"}, -4015, "36 chars"),
        ({"quantity": "1e-05"}, -1100, "'quantity'"),
        ({"price": "abc"}, -1100, "'price'"),
        ({"price": "-1"}, -1100, "'price'"),
        ({"quantity": "0.0001"}, -1111, "Precision is over"),
        ({"price": "50000.123"}, -1111, "Precision is over"),
        ({"reduceOnly": "maybe"}, -1130, "'reduceOnly'"),
        ({"colour": "red"}, -1104, "read '8' parameter(s) but was sent '9'"),
        ({"timeInForce": "GTD"}, -1102, "'goodTillDate'"),
    ],
)
def test_order_errors(change: dict[str, str | None], code: int, text: str) -> None:
    params = dict(LIMIT)
    for name, value in change.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    got_code, msg = error_of(params)
    assert got_code == code
    assert text in msg


def test_trailing_zeros_do_not_count_as_precision() -> None:
    assert t.parse_new_order(dict(LIMIT, quantity="0.0100000"), SYMBOLS).quantity == Decimal("0.01")


def test_gtd_time_truncated_to_seconds() -> None:
    order = t.parse_new_order(dict(LIMIT, timeInForce="GTD", goodTillDate="1700000000999"), SYMBOLS)
    assert order.good_till_date == 1700000000000


def test_batch_items_fail_in_place() -> None:
    good = {k: v for k, v in LIMIT.items() if k not in ("timestamp", "recvWindow")}
    batch = msgspec.json.encode([good, dict(good, side="HOLD")]).decode()
    parsed = t.parse_batch_orders({"batchOrders": batch}, SYMBOLS)
    assert isinstance(parsed[0], t.NewOrder)
    assert isinstance(parsed[1], BinanceAPIError)
    assert parsed[1].code == -1117
    for bad in ("[]", "{}", "nope", msgspec.json.encode([good] * 6).decode()):
        with pytest.raises(BinanceAPIError) as excinfo:
            t.parse_batch_orders({"batchOrders": bad}, SYMBOLS)
        assert excinfo.value.code == -1130


def test_order_ref() -> None:
    ref = t.parse_order_ref(
        {"symbol": "BTCUSDT", "orderId": "5", "origClientOrderId": "a"}, SYMBOLS
    )
    assert (ref.order_id, ref.orig_client_order_id) == (5, None)  # orderId wins
    with pytest.raises(BinanceAPIError) as excinfo:
        t.parse_order_ref({"symbol": "BTCUSDT"}, SYMBOLS)
    assert excinfo.value.code == -1102
    assert "'origClientOrderId' or 'orderId'" in excinfo.value.msg
    with pytest.raises(BinanceAPIError) as wrong_type:
        t.parse_order_ref({"symbol": "BTCUSDT", "orderId": "five"}, SYMBOLS)
    assert wrong_type.value.code == -1100


def test_modify_needs_quantity_and_price() -> None:
    base = {"symbol": "BTCUSDT", "orderId": "1", "side": "BUY", "quantity": "1", "price": "2"}
    assert t.parse_modify_order(base, SYMBOLS).price == Decimal(2)
    for missing in ("quantity", "price", "side"):
        with pytest.raises(BinanceAPIError) as excinfo:
            t.parse_modify_order({k: v for k, v in base.items() if k != missing}, SYMBOLS)
        assert excinfo.value.code == -1102


def test_user_trades_from_id_with_times_is_1128() -> None:
    with pytest.raises(BinanceAPIError) as excinfo:
        t.parse_user_trades({"symbol": "BTCUSDT", "fromId": "1", "startTime": "5"}, SYMBOLS)
    assert excinfo.value.code == -1128


@pytest.mark.parametrize("limit", ["0", "1001", "5000"])
def test_limit_out_of_range_is_1130(limit: str) -> None:
    with pytest.raises(BinanceAPIError) as excinfo:
        t.parse_all_orders({"symbol": "BTCUSDT", "limit": limit}, SYMBOLS)
    assert excinfo.value.code == -1130
    assert "'limit'" in excinfo.value.msg


def test_account_settings() -> None:
    assert t.parse_set_leverage({"symbol": "BTCUSDT", "leverage": "20"}, SYMBOLS).leverage == 20
    with pytest.raises(BinanceAPIError) as excinfo:
        t.parse_set_leverage({"symbol": "BTCUSDT", "leverage": "126"}, SYMBOLS)
    assert (excinfo.value.code, excinfo.value.msg) == (-4028, "Leverage 126 is not valid")
    margin = t.parse_set_margin_type({"symbol": "BTCUSDT", "marginType": "isolated"}, SYMBOLS)
    assert margin.margin_type == "ISOLATED"
    assert t.parse_set_dual_side({"dualSidePosition": "TRUE"}) is True
    assert t.parse_set_multi_assets({"multiAssetsMargin": "false"}) is False
    margin_change = t.parse_position_margin(
        {"symbol": "BTCUSDT", "amount": "100", "type": "2"}, SYMBOLS
    )
    assert not margin_change.add


def test_fmt() -> None:
    assert t.fmt(Decimal("0.472"), 4) == "0.4720"
    assert t.fmt(Decimal(0), 5) == "0.00000"
    assert t.fmt(Decimal("12"), 0) == "12"


# Response shapes: the spec's captured examples decode into the structs with strict types and
# encode back to the same bytes (keys, order and types as Binance sends them).

ORDER_EXAMPLE = (
    b'{"orderId":246195610,"symbol":"XRPUSDT","status":"FILLED","clientOrderId":"10002",'
    b'"price":"0.4720","avgPrice":"0.51050","origQty":"20.0","executedQty":"20.0",'
    b'"cumQty":"20.0","cumQuote":"10.21000","timeInForce":"GTC","type":"LIMIT",'
    b'"reduceOnly":false,"closePosition":false,"side":"BUY","positionSide":"BOTH",'
    b'"stopPrice":"0","workingType":"CONTRACT_PRICE","priceProtect":false,"origType":"LIMIT",'
    b'"priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0,'
    b'"updateTime":1685253242000}'
)


@pytest.mark.parametrize(
    ("kind", "example"),
    [
        (t.Order, ORDER_EXAMPLE),
        (t.CountdownResponse, b'{"symbol":"BTCUSDT","countdownTime":"100000"}'),
        (
            t.PositionMarginResponse,
            b'{"amount":100.0,"code":200,"msg":"Successfully modify position margin.","type":1}',
        ),
        (t.CodeMsg, b'{"code":200,"msg":"success"}'),
        (
            t.CommissionRate,
            b'{"symbol":"BTCUSDT","makerCommissionRate":"0.0002","takerCommissionRate":"0.0005",'
            b'"rpiCommissionRate":"0"}',
        ),
        (
            t.SymbolBrackets,
            b'{"symbol":"BTCUSDT","brackets":[{"bracket":1,"initialLeverage":125,'
            b'"notionalCap":50000.0,"notionalFloor":0.0,"maintMarginRatio":0.004,"cum":0.0}]}',
        ),
        (
            t.SymbolConfig,
            b'{"symbol":"BTCUSDT","marginType":"CROSSED","isAutoAddMargin":false,"leverage":21,'
            b'"maxNotionalValue":"1000000"}',
        ),
        (t.LeverageResponse, b'{"leverage":21,"maxNotionalValue":"1000000","symbol":"BTCUSDT"}'),
    ],
)
def test_examples_round_trip(kind: type[msgspec.Struct], example: bytes) -> None:
    decoded = msgspec.json.decode(example, type=kind, strict=True)
    assert t.encode(decoded) == example


def test_numbers_that_are_strings_are_rejected_as_numbers() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(ORDER_EXAMPLE.replace(b'"0.4720"', b"0.4720"), type=t.Order)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"symbol":"B","countdownTime":100}', type=t.CountdownResponse)


def test_query_answers_add_time_and_others_omit_it() -> None:
    order = msgspec.json.decode(ORDER_EXAMPLE, type=t.Order)
    assert b'"time"' not in t.encode(order)
    order.time = 1
    assert t.encode(order).endswith(b',"updateTime":1685253242000,"time":1}')


# Binance's documented keys, in order (trading spec §2.6 table, from the account v2/v3,
# balance and positionRisk pages): what each version adds or drops is explicit here.
_TOTALS = [
    "totalInitialMargin",
    "totalMaintMargin",
    "totalWalletBalance",
    "totalUnrealizedProfit",
    "totalMarginBalance",
    "totalPositionInitialMargin",
    "totalOpenOrderInitialMargin",
    "totalCrossWalletBalance",
    "totalCrossUnPnl",
    "availableBalance",
    "maxWithdrawAmount",
]
_ASSET = [
    "asset",
    "walletBalance",
    "unrealizedProfit",
    "marginBalance",
    "maintMargin",
    "initialMargin",
    "positionInitialMargin",
    "openOrderInitialMargin",
    "crossWalletBalance",
    "crossUnPnl",
    "availableBalance",
    "maxWithdrawAmount",
]
_V2_FLAGS = [
    "feeTier",
    "feeBurn",
    "canTrade",
    "canDeposit",
    "canWithdraw",
    "updateTime",
    "multiAssetsMargin",
    "tradeGroupId",
]
DOCUMENTED: list[tuple[type[msgspec.Struct], list[str]]] = [
    (t.AccountV2, [*_V2_FLAGS, *_TOTALS, "assets", "positions"]),
    (t.AccountV3, [*_TOTALS, "assets", "positions"]),
    (t.AccountV2Asset, [*_ASSET, "marginAvailable", "updateTime"]),
    (t.AccountV3Asset, [*_ASSET, "updateTime"]),
    (
        t.AccountV2Position,
        [
            "symbol",
            "initialMargin",
            "maintMargin",
            "unrealizedProfit",
            "positionInitialMargin",
            "openOrderInitialMargin",
            "leverage",
            "isolated",
            "entryPrice",
            "breakEvenPrice",
            "maxNotional",
            "bidNotional",
            "askNotional",
            "positionSide",
            "positionAmt",
            "updateTime",
        ],
    ),
    (
        t.AccountV3Position,
        [
            "symbol",
            "positionSide",
            "positionAmt",
            "unrealizedProfit",
            "isolatedMargin",
            "notional",
            "isolatedWallet",
            "initialMargin",
            "maintMargin",
            "updateTime",
        ],
    ),
    (
        t.BalanceRow,
        [
            "accountAlias",
            "asset",
            "balance",
            "crossWalletBalance",
            "crossUnPnl",
            "availableBalance",
            "maxWithdrawAmount",
            "marginAvailable",
            "updateTime",
        ],
    ),
    (
        t.PositionRiskV2,
        [
            "entryPrice",
            "breakEvenPrice",
            "marginType",
            "isAutoAddMargin",
            "isolatedMargin",
            "leverage",
            "liquidationPrice",
            "markPrice",
            "maxNotionalValue",
            "positionAmt",
            "notional",
            "isolatedWallet",
            "symbol",
            "unRealizedProfit",
            "positionSide",
            "updateTime",
        ],
    ),
    (
        t.PositionRiskV3,
        [
            "symbol",
            "positionSide",
            "positionAmt",
            "entryPrice",
            "breakEvenPrice",
            "markPrice",
            "unRealizedProfit",
            "liquidationPrice",
            "isolatedMargin",
            "notional",
            "marginAsset",
            "isolatedWallet",
            "initialMargin",
            "maintMargin",
            "positionInitialMargin",
            "openOrderInitialMargin",
            "adl",
            "bidNotional",
            "askNotional",
            "updateTime",
        ],
    ),
]


@pytest.mark.parametrize(("kind", "keys"), DOCUMENTED, ids=[k.__name__ for k, _ in DOCUMENTED])
def test_account_shapes_carry_binances_documented_keys_in_order(
    kind: type[msgspec.Struct], keys: list[str]
) -> None:
    assert [f.encode_name for f in msgspec.structs.fields(kind)] == keys


def test_v3_account_drops_exactly_v2s_flags_and_margin_available() -> None:
    def names(kind: type[msgspec.Struct]) -> set[str]:
        return {f.encode_name for f in msgspec.structs.fields(kind)}

    assert names(t.AccountV2) - names(t.AccountV3) == set(_V2_FLAGS)
    assert names(t.AccountV2Asset) - names(t.AccountV3Asset) == {"marginAvailable"}


READS = [
    # (params, read, code): each rule of the public reader, as the algo API uses it too
    ({"x": "1"}, lambda r: None, -1104),
    ({}, lambda r: r.mandatory("quantity"), -1102),
    ({"price": "1"}, lambda r: r.forbid("stopPrice", "price"), -1106),
    ({"side": "UP"}, lambda r: r.choice("side", t.SIDES), -1117),
    ({"type": "NONE"}, lambda r: r.choice("type", t.ORDER_TYPES), -1116),
    ({"workingType": "X"}, lambda r: r.choice("workingType", t.WORKING_TYPES), -4031),
    ({"incomeType": "X"}, lambda r: r.choice("incomeType", t.INCOME_TYPES), -1130),
    ({"price": "1e-05"}, lambda r: r.decimal("price"), -1100),
    ({"orderId": "1.5"}, lambda r: r.integer("orderId"), -1100),
    ({"orderId": "-1"}, lambda r: r.integer("orderId", minimum=0), -1130),
    ({"reduceOnly": "yes"}, lambda r: r.boolean("reduceOnly"), -1130),
    ({"limit": "0"}, lambda r: r.limit(500), -1130),
    ({"startTime": "5", "endTime": "4"}, lambda r: r.time_range(), -1130),
    (
        {"startTime": "0", "endTime": str(t.SEVEN_DAYS_MS + 1)},
        lambda r: r.time_range(t.SEVEN_DAYS_MS),
        -1130,
    ),
    ({"symbol": "NOPE"}, lambda r: r.symbol(SYMBOLS), -1121),
    ({"symbol": "NOPE"}, lambda r: r.optional_symbol(SYMBOLS), -1121),
    ({"newClientOrderId": "a" * 37}, lambda r: r.client_order_id("newClientOrderId"), -4015),
]


@pytest.mark.parametrize(("params", "read", "code"), READS)
def test_param_reader_rules(params: dict[str, str], read: Any, code: int) -> None:
    with pytest.raises(BinanceAPIError) as caught:
        read(t.ParamReader(params, params.keys() - {"x"}))
    assert caught.value.code == code


def test_param_reader_absent_values_and_precision() -> None:
    reader = t.ParamReader({"price": "", "timestamp": "1"}, ("price",))
    assert (reader.raw("price"), reader.decimal("price"), reader.limit(100)) == (None, None, 100)
    assert t.required(5, "limit") == 5
    with pytest.raises(BinanceAPIError) as caught:
        t.check_precision(SYMBOLS["BTCUSDT"], Decimal("0.0101"), None)
    assert caught.value.code == -1111
    t.check_precision(SYMBOLS["BTCUSDT"], Decimal("0.0100"), Decimal("1.10"))
