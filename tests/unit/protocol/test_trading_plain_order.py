"""`parse_new_order` reads a plain LIMIT or MARKET order on a shortcut (`_plain_new_order`);
whatever it is sent, its answer (the order, or the error) is the one the step-by-step path
gives. A valid `workingType` changes nothing about an order's answer but keeps it off the
shortcut, so each drawn order is compared with itself plus `workingType`."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from userstream.exceptions import BinanceAPIError
from userstream.protocol import trading as t
from userstream.symbols import load_symbol_table

RULES = {
    s.symbol: t.SymbolRules(s.symbol, s.price_precision, s.quantity_precision)
    for s in load_symbol_table().symbols
}

# Per parameter, valid values first, then what Binance refuses.
VALUES = {
    "symbol": ["BTCUSDT", "ETHUSDT", "", "NOPE"],
    "side": ["BUY", "SELL", "", "buy"],
    "type": ["MARKET", "LIMIT", "", "STOP", "market"],
    "positionSide": ["BOTH", "LONG", "", "X"],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD", "", "x"],
    "quantity": [
        *("0.001", "1", "5.", ".5", "0", "0.0010000", "00.100", "1.000000000"),
        *("", "1e-3", "0.0000001", "0.00010", "-1"),
    ],
    "price": ["65000", "65000.1", "0.00", "65000.10000", "", "65000.123", "65000.1230", "1E5"],
    "newClientOrderId": ["abc", "x" * 36, "", "x" * 37, "bad id"],
    "newOrderRespType": ["ACK", "RESULT", "", "FULL"],
    "timestamp": ["1"],
    "recvWindow": ["5000"],
    "reduceOnly": ["true", "false"],
    "priceMatch": ["QUEUE"],
    "goodTillDate": ["1"],
}
BASIC = ("symbol", "side", "type", "quantity")


def _answer(params: dict[str, str]) -> object:
    try:
        return t.parse_new_order(params, RULES)
    except BinanceAPIError as error:
        return (error.code, error.msg, error.status)


@st.composite
def orders(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.sets(st.sampled_from(sorted(VALUES)), max_size=8))
    if draw(st.booleans()):
        names |= set(BASIC)
    return {name: draw(st.sampled_from(VALUES[name])) for name in sorted(names)}


@settings(max_examples=2000, deadline=None)
@given(orders())
def test_the_shortcut_answers_as_the_step_by_step_path(params: dict[str, str]) -> None:
    assert _answer(params) == _answer({**params, "workingType": "CONTRACT_PRICE"})


def test_plain_orders_take_the_shortcut() -> None:
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
    limit = {**market, "type": "LIMIT", "timeInForce": "GTC", "price": "65000.1"}
    for params in (market, limit, {**limit, "newOrderRespType": "RESULT", "timestamp": "1"}):
        plain = t._plain_new_order(params, RULES)
        assert plain is not None
        assert plain == _answer({**params, "workingType": "CONTRACT_PRICE"})
