"""Trading and account REST requests and responses, typed (trading spec §1.1, §1.7, §2, §4.1).

Requests: each endpoint's parameters are read from a `Params` mapping (query and form body
merged by `protocol.signing.parse_params`) into a typed request, with Binance's parameter
errors, checked in the order of §4.1 rows 2-9: unknown parameters (-1104), enum values (-1116
`type`, -1117 `side`, -1115 `timeInForce`, -4060 `positionSide` …), mandatory parameters
(-1102), parameters not allowed (-1106), conditional types on `/fapi/v1/order` (-4120),
the symbol (-1121), client order ids (-4015), illegal characters (-1100: exponent notation,
letters in numbers), values out of range (-1130), option combinations (-1128) and decimal
places beyond the symbol's precision (-1111). What needs account state (filters, margin,
positions) is the engine's.

Responses: one msgspec Struct per body, keys in Binance's order (camelCase from the field
names, `rename="camel"`) and types as Binance sends them (§2.3-§2.6): every price, quantity,
amount, rate and balance is a JSON string; times and ids are integers; flags are booleans.
Exceptions: `leverageBracket` numbers are bare JSON numbers, `positionMargin.amount` is a
number, `countdownTime` is a string, v2 positionRisk `isAutoAddMargin` and `leverage` are
strings. Decimals are formatted by `fmt` at the symbol's precision before they reach a struct.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, TypeVar

import msgspec

from userstream.exceptions import BinanceAPIError
from userstream.protocol import errors

__all__ = [
    "AccountConfig",
    "AccountV2",
    "AccountV2Asset",
    "AccountV2Position",
    "AccountV3",
    "AccountV3Asset",
    "AccountV3Position",
    "AdlQuantileRow",
    "AllOrdersQuery",
    "BalanceRow",
    "Bracket",
    "CancelBatch",
    "CodeMsg",
    "CommissionRate",
    "Countdown",
    "CountdownResponse",
    "DualSideMode",
    "ErrorItem",
    "IncomeQuery",
    "IncomeRow",
    "LeverageResponse",
    "ModifyOrder",
    "MultiAssetsMode",
    "NewOrder",
    "Order",
    "OrderRef",
    "ParamReader",
    "PositionMargin",
    "PositionMarginResponse",
    "PositionRiskV2",
    "PositionRiskV3",
    "SetLeverage",
    "SetMarginType",
    "SymbolBrackets",
    "SymbolConfig",
    "SymbolRules",
    "UserTrade",
    "UserTradesQuery",
    "check_precision",
    "encode",
    "fmt",
    "invalid_value",
    "parse_all_orders",
    "parse_batch_orders",
    "parse_cancel_batch",
    "parse_countdown",
    "parse_income",
    "parse_modify_order",
    "parse_new_order",
    "parse_open_orders",
    "parse_order_ref",
    "parse_position_margin",
    "parse_set_dual_side",
    "parse_set_leverage",
    "parse_set_margin_type",
    "parse_set_multi_assets",
    "parse_symbol",
    "parse_user_trades",
    "required",
]

T = TypeVar("T")

# Always accepted, read by the signing layer (§1.4).
COMMON_PARAMS: Final = frozenset({"timestamp", "recvWindow", "signature"})

SIDES: Final = frozenset({"BUY", "SELL"})
POSITION_SIDES: Final = frozenset({"BOTH", "LONG", "SHORT"})
ORDER_TYPES: Final = frozenset({"LIMIT", "MARKET"})
CONDITIONAL_TYPES: Final = frozenset(
    {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
)
TIME_IN_FORCE: Final = frozenset({"GTC", "IOC", "FOK", "GTX", "GTD"})
RESP_TYPES: Final = frozenset({"ACK", "RESULT"})
WORKING_TYPES: Final = frozenset({"MARK_PRICE", "CONTRACT_PRICE"})
# OPPONENT_10/20 were withdrawn from place/amend on 2025-10-23 (§2.3).
PRICE_MATCHES: Final = frozenset(
    {"NONE", "OPPONENT", "OPPONENT_5", "QUEUE", "QUEUE_5", "QUEUE_10", "QUEUE_20"}
)
STP_MODES: Final = frozenset({"NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"})
MARGIN_TYPES: Final = frozenset({"ISOLATED", "CROSSED"})
INCOME_TYPES: Final = frozenset(
    {
        "TRANSFER",
        "WELCOME_BONUS",
        "REALIZED_PNL",
        "FUNDING_FEE",
        "COMMISSION",
        "INSURANCE_CLEAR",
        "REFERRAL_KICKBACK",
        "COMMISSION_REBATE",
        "API_REBATE",
        "CONTEST_REWARD",
        "CROSS_COLLATERAL_TRANSFER",
        "OPTIONS_PREMIUM_FEE",
        "OPTIONS_SETTLE_PROFIT",
        "INTERNAL_TRANSFER",
        "AUTO_EXCHANGE",
        "DELIVERED_SETTELMENT",
        "COIN_SWAP_DEPOSIT",
        "COIN_SWAP_WITHDRAW",
        "POSITION_LIMIT_INCREASE_FEE",
        "STRATEGY_UMFUTURES_TRANSFER",
        "FEE_RETURN",
        "BFUSD_REWARD",
    }
)
CLIENT_ORDER_ID: Final = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
_DECIMAL: Final = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_INTEGER: Final = re.compile(r"-?[0-9]{1,19}")
MAX_LIMIT: Final = 1000
SEVEN_DAYS_MS: Final = 7 * 24 * 3600 * 1000
MAX_BATCH_ORDERS: Final = 5
MAX_CANCEL_BATCH: Final = 10


# Errors (trading spec §1.7, §2.3, §4.1)


def _error(code: int, msg: str) -> BinanceAPIError:
    return BinanceAPIError(code, msg, 400)


def illegal_characters(name: str) -> BinanceAPIError:
    return _error(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^.*$'.")


def too_many_parameters(read: int, sent: int) -> BinanceAPIError:
    return _error(
        -1104,
        f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}'.",
    )


def not_required(name: str) -> BinanceAPIError:
    return _error(-1106, f"Parameter '{name}' sent when not required.")


def invalid_symbol() -> BinanceAPIError:
    return _error(-1121, "Invalid symbol.")


def bad_combination() -> BinanceAPIError:
    return _error(-1128, "Combination of optional parameters invalid.")


def precision_over() -> BinanceAPIError:
    return _error(-1111, "Precision is over the maximum defined for this asset.")


def use_algo_api() -> BinanceAPIError:
    return _error(
        -4120,
        "Order type not supported for this endpoint. Please use the Algo Order API "
        "endpoints instead.",
    )


def bad_client_order_id() -> BinanceAPIError:
    return _error(-4015, "Client order id length should not be more than 36 chars")


def order_ref_missing() -> BinanceAPIError:
    return _error(
        -1102,
        "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
    )


_ENUM_ERRORS: Final[dict[str, Callable[[], BinanceAPIError]]] = {
    "side": lambda: _error(-1117, "Invalid side."),
    "type": lambda: _error(-1116, "Invalid orderType."),
    "timeInForce": lambda: _error(-1115, "Invalid timeInForce."),
    "positionSide": lambda: _error(-4060, "Invalid position side."),
    "workingType": lambda: _error(-4031, "Invalid workingType."),
    "newOrderRespType": lambda: _error(-1136, "Invalid newOrderRespType."),
    "selfTradePreventionMode": lambda: _error(-5039, "Invalid self trade prevention mode."),
}


# Symbols: what request checks need to know of a symbol


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """The part of a symbol's exchangeInfo row the parameter checks use."""

    symbol: str
    price_precision: int
    quantity_precision: int


# Field readers


def invalid_value(name: str) -> BinanceAPIError:
    """A value outside the parameter's enum: its own code where Binance has one (-1116 `type`,
    -1117 `side` …), else -1130."""
    return _ENUM_ERRORS.get(name, lambda: errors.invalid_parameter(name))()


def required(value: T | None, name: str) -> T:
    """`value`, read earlier, or -1102 naming the parameter."""
    if value is None:
        raise errors.mandatory_param(name)
    return value


def _to_decimal(name: str, text: str) -> Decimal:
    # Exponent notation (`1e-05`, the official SDK's float rendering) is not a legal decimal
    # on Binance: -1100 (§1.1).
    if _DECIMAL.fullmatch(text) is None:
        raise illegal_characters(name)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise illegal_characters(name) from None


def _to_integer(name: str, text: str) -> int:
    if _INTEGER.fullmatch(text) is None:
        raise illegal_characters(name)
    return int(text)


def _to_boolean(name: str, text: str) -> bool:
    # Case-insensitive: hummingbot sends Python's `True`, the doc `true` (§1.1).
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise errors.invalid_parameter(name)
    return lowered == "true"


# Each endpoint's accepted names (its own and `COMMON_PARAMS`), built once per endpoint: the
# endpoints pass constant tuples, so this holds one entry per endpoint.
_EXPECTED: Final[dict[tuple[str, ...], frozenset[str]]] = {}


class ParamReader:
    """Reads one endpoint's parameters into typed values; each of Binance's parameter rules
    (§4.1) is written here once.

    Built with the endpoint's parameter names: any other name sent is -1104, checked first
    (§4.1 row 2). An empty value counts as not sent. Each typed read returns None when the
    parameter is absent; `required` turns that into -1102 where the endpoint needs it.

    Raises:
        BinanceAPIError: -1104 on construction.
    """

    __slots__ = ("params",)

    def __init__(self, params: Mapping[str, str], names: Iterable[str] = ()) -> None:
        self.params = params
        if isinstance(names, tuple):
            expected = _EXPECTED.get(names)
            if expected is None:
                expected = _EXPECTED[names] = COMMON_PARAMS.union(names)
        else:
            expected = COMMON_PARAMS.union(names)
        if not params.keys() <= expected:
            unread = [name for name in params if name not in expected]
            sent = len(params)
            raise too_many_parameters(sent - len(unread), sent)

    def raw(self, name: str) -> str | None:
        value = self.params.get(name)
        return None if value is None or value == "" else value

    def mandatory(self, name: str) -> str:
        """The text of a parameter the endpoint needs (-1102)."""
        return required(self.raw(name), name)

    def forbid(self, *names: str) -> None:
        """-1106 for the first of `names` that was sent."""
        for name in names:
            if self.raw(name) is not None:
                raise not_required(name)

    def _typed(self, name: str, convert: Callable[[str, str], T]) -> T | None:
        value = self.raw(name)
        return None if value is None else convert(name, value)

    def choice(self, name: str, allowed: Container[str], default: str | None = None) -> str | None:
        """An enum value (`invalid_value` when outside `allowed`)."""
        value = self.raw(name)
        if value is None:
            return default
        if value not in allowed:
            raise invalid_value(name)
        return value

    def decimal(self, name: str) -> Decimal | None:
        """A plain decimal (-1100 for exponents, signs, letters)."""
        return self._typed(name, _to_decimal)

    def integer(self, name: str, minimum: int | None = None) -> int | None:
        """An integer (-1100), at least `minimum` when given (-1130)."""
        value = self._typed(name, _to_integer)
        if value is not None and minimum is not None and value < minimum:
            raise errors.invalid_parameter(name)
        return value

    def boolean(self, name: str) -> bool | None:
        """`true`/`false`, any case (-1130)."""
        return self._typed(name, _to_boolean)

    def limit(self, default: int, maximum: int = MAX_LIMIT) -> int:
        """`limit`: 1..`maximum` (-1130), `default` when absent."""
        limit = self.integer("limit")
        if limit is None:
            return default
        if not 0 < limit <= maximum:
            raise errors.invalid_parameter("limit")
        return limit

    def time_range(self, max_span_ms: int | None = None) -> tuple[int | None, int | None]:
        """`startTime`/`endTime`: non-negative, ordered, at most `max_span_ms` apart (-1130
        on `endTime`)."""
        start = self.integer("startTime", minimum=0)
        end = self.integer("endTime", minimum=0)
        if start is None or end is None:
            return start, end
        if end < start or (max_span_ms is not None and end - start > max_span_ms):
            raise errors.invalid_parameter("endTime")
        return start, end

    def symbol(self, symbols: Mapping[str, SymbolRules]) -> SymbolRules:
        """A mandatory `symbol` (-1102) the venue trades (-1121)."""
        rules = symbols.get(self.mandatory("symbol"))
        if rules is None:
            raise invalid_symbol()
        return rules

    def optional_symbol(self, symbols: Mapping[str, SymbolRules]) -> str | None:
        """An optional `symbol`; when sent, one the venue trades (-1121)."""
        name = self.raw("symbol")
        if name is not None and name not in symbols:
            raise invalid_symbol()
        return name

    def client_order_id(self, name: str) -> str | None:
        """A client order id: 1-36 of `[.A-Z:/a-z0-9_-]` (-4015)."""
        value = self.raw(name)
        if value is not None and CLIENT_ORDER_ID.fullmatch(value) is None:
            raise bad_client_order_id()
        return value


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _text_places(text: str) -> int:
    """`_places` of a `_DECIMAL` text, read off the text: the digits after the point but
    its trailing zeros (no Decimal, no normalize, no digit tuple)."""
    point = text.find(".")
    return 0 if point < 0 else len(text.rstrip("0")) - point - 1


def check_precision(rules: SymbolRules, quantity: Decimal, price: Decimal | None) -> None:
    """-1111 when the quantity or price has more decimals than the symbol allows (trailing
    zeros do not count)."""
    if _places(quantity) > rules.quantity_precision:
        raise precision_over()
    if price is not None and _places(price) > rules.price_precision:
        raise precision_over()


def _price_or_match(price: Decimal | None, price_match: str) -> None:
    """A priced order names exactly one of `price` and `priceMatch` (§2.3, §2.5)."""
    if price is None and price_match == "NONE":
        raise errors.mandatory_param("price")
    if price is not None and price_match != "NONE":
        raise not_required("priceMatch")


# Requests


class NewOrder(msgspec.Struct, frozen=True, gc=False):
    """`POST /fapi/v1/order` (and `order.place`, batch items), LIMIT or MARKET (§2.3).

    A msgspec struct, as are the other values an order makes on its way: built in C, at a
    fraction of a frozen dataclass's cost."""

    symbol: str
    side: str
    type: str
    position_side: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: str | None
    reduce_only: bool
    new_client_order_id: str | None
    new_order_resp_type: str
    price_match: str
    self_trade_prevention_mode: str
    good_till_date: int


_NEW_ORDER_PARAMS: Final = (
    "symbol",
    "side",
    "positionSide",
    "type",
    "timeInForce",
    "quantity",
    "reduceOnly",
    "price",
    "newClientOrderId",
    "stopPrice",
    "closePosition",
    "activationPrice",
    "callbackRate",
    "workingType",
    "priceProtect",
    "newOrderRespType",
    "priceMatch",
    "selfTradePreventionMode",
    "goodTillDate",
)
_PLACE_TYPES: Final = ORDER_TYPES | CONDITIONAL_TYPES
# Conditional orders' parameters: checked (-1130, -1106) only when one was sent.
_RARE_ORDER_PARAMS: Final = frozenset(
    {"workingType", "closePosition", "priceProtect", "stopPrice", "activationPrice", "callbackRate"}
)


def parse_new_order(params: Mapping[str, str], symbols: Mapping[str, SymbolRules]) -> NewOrder:
    """Read a new order (§2.3), in the check order of §4.1 rows 2-9.

    Raises:
        BinanceAPIError: -1104, -1117, -1116, -1115, -4060, -4031, -1136, -5039, -1130, -1102,
            -1106, -4120, -1121, -4015, -1100, -1111.
    """
    plain = _plain_new_order(params, symbols)
    if plain is not None:
        return plain
    reader = ParamReader(params, _NEW_ORDER_PARAMS)
    # The checks of parameters a plain order does not send are skipped when none of them
    # was (an absent parameter passes every check): the rest keep their order.
    rare = not params.keys().isdisjoint(_RARE_ORDER_PARAMS)
    side = reader.choice("side", SIDES)
    order_type = reader.choice("type", _PLACE_TYPES)
    tif = reader.choice("timeInForce", TIME_IN_FORCE)
    position_side = reader.choice("positionSide", POSITION_SIDES, "BOTH")
    if rare:
        reader.choice("workingType", WORKING_TYPES)
    resp_type = reader.choice("newOrderRespType", RESP_TYPES, "ACK")
    stp = reader.choice("selfTradePreventionMode", STP_MODES, "EXPIRE_MAKER")
    price_match = reader.choice("priceMatch", PRICE_MATCHES, "NONE") or "NONE"
    reduce_only = reader.boolean("reduceOnly")
    if rare:
        reader.boolean("closePosition")
        reader.boolean("priceProtect")
    side = required(side, "side")
    order_type = required(order_type, "type")
    if order_type in CONDITIONAL_TYPES:
        raise use_algo_api()
    quantity = reader.decimal("quantity")
    price = reader.decimal("price")
    good_till = reader.integer("goodTillDate")
    quantity = required(quantity, "quantity")
    if order_type == "LIMIT":
        required(tif, "timeInForce")
        _price_or_match(price, price_match)
        if tif == "GTD":
            required(good_till, "goodTillDate")
    else:
        reader.forbid("price", "timeInForce", "priceMatch", "goodTillDate")
    if rare:
        reader.forbid("stopPrice", "activationPrice", "callbackRate", "closePosition")
    if good_till is not None and tif != "GTD":
        raise not_required("goodTillDate")
    rules = reader.symbol(symbols)
    client_id = reader.client_order_id("newClientOrderId")
    check_precision(rules, quantity, price)
    return NewOrder(
        symbol=rules.symbol,
        side=side,
        type=order_type,
        position_side=position_side or "BOTH",
        quantity=quantity,
        price=price,
        time_in_force=tif,
        reduce_only=bool(reduce_only),
        new_client_order_id=client_id,
        new_order_resp_type=resp_type or "ACK",
        price_match=price_match,
        self_trade_prevention_mode=stp or "EXPIRE_MAKER",
        # Milliseconds are truncated to seconds (§2.3).
        good_till_date=0 if good_till is None else good_till // 1000 * 1000,
    )


# What a plain LIMIT or MARKET order sends (plus `COMMON_PARAMS`): `_plain_new_order` reads
# only orders whose every parameter is one of these.
_PLAIN_ORDER_PARAMS: Final = COMMON_PARAMS | {
    "symbol",
    "side",
    "type",
    "positionSide",
    "timeInForce",
    "quantity",
    "price",
    "newClientOrderId",
    "newOrderRespType",
}
_PLAIN_TIME_IN_FORCE: Final = TIME_IN_FORCE - {"GTD"}


def _plain_new_order(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> NewOrder | None:
    """The order `parse_new_order` reads from a plain, valid MARKET or LIMIT (not GTD, no
    priceMatch) order, or None for anything else, which `parse_new_order` then reads step
    by step (every error it raises comes from that path). The same checks as there, with
    none of their calls: every value known, valid and non-empty, or None."""
    if not params.keys() <= _PLAIN_ORDER_PARAMS:
        return None
    get = params.get
    side = get("side", "")
    order_type = get("type", "")
    quantity_text = get("quantity")
    rules = symbols.get(get("symbol") or "")
    if side not in SIDES or rules is None or not quantity_text:
        return None
    if _DECIMAL.fullmatch(quantity_text) is None:
        return None
    if _text_places(quantity_text) > rules.quantity_precision:
        return None
    quantity = Decimal(quantity_text)
    price_text = get("price")
    tif = get("timeInForce")
    if order_type == "MARKET":
        if price_text is not None or tif is not None:
            return None
        price = None
    elif order_type == "LIMIT":
        if tif not in _PLAIN_TIME_IN_FORCE or not price_text:
            return None
        if _DECIMAL.fullmatch(price_text) is None:
            return None
        if _text_places(price_text) > rules.price_precision:
            return None
        price = Decimal(price_text)
    else:
        return None
    position_side = get("positionSide", "BOTH")
    resp_type = get("newOrderRespType", "ACK")
    client_id = get("newClientOrderId")
    if position_side not in POSITION_SIDES or resp_type not in RESP_TYPES:
        return None
    if client_id is not None and CLIENT_ORDER_ID.fullmatch(client_id) is None:
        return None
    return NewOrder(
        symbol=rules.symbol,
        side=side,
        type=order_type,
        position_side=position_side,
        quantity=quantity,
        price=price,
        time_in_force=tif,
        reduce_only=False,
        new_client_order_id=client_id,
        new_order_resp_type=resp_type,
        price_match="NONE",
        self_trade_prevention_mode="EXPIRE_MAKER",
        good_till_date=0,
    )


def parse_batch_orders(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> list[NewOrder | BinanceAPIError]:
    """`POST /fapi/v1/batchOrders`: `batchOrders` is a JSON array (≤5) of orders with string
    values (§2.5); each item is parsed alone, a bad one becomes its error in place.

    Raises:
        BinanceAPIError: -1102 when `batchOrders` is missing; -1130 when it is not a JSON
            array of 1..5 objects of strings; -1104 for other parameters.
    """
    raw = ParamReader(params, ("batchOrders",)).mandatory("batchOrders")
    try:
        items = msgspec.json.decode(raw, type=list[dict[str, str | int | float | bool]])
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise errors.invalid_parameter("batchOrders") from None
    if not 0 < len(items) <= MAX_BATCH_ORDERS:
        raise errors.invalid_parameter("batchOrders")
    parsed: list[NewOrder | BinanceAPIError] = []
    for item in items:
        as_text = {k: _text(v) for k, v in item.items()}
        try:
            parsed.append(parse_new_order(as_text, symbols))
        except BinanceAPIError as error:
            parsed.append(error)
    return parsed


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class OrderRef:
    """An order named by `orderId` or `origClientOrderId` (orderId wins, §2.5)."""

    symbol: str
    order_id: int | None
    orig_client_order_id: str | None


def _order_ref(reader: ParamReader, symbols: Mapping[str, SymbolRules]) -> OrderRef:
    order_id = reader.integer("orderId", minimum=0)
    client_id = reader.raw("origClientOrderId")
    rules = reader.symbol(symbols)
    if order_id is None and client_id is None:
        raise order_ref_missing()
    return OrderRef(rules.symbol, order_id, None if order_id is not None else client_id)


def parse_order_ref(params: Mapping[str, str], symbols: Mapping[str, SymbolRules]) -> OrderRef:
    """`GET`/`DELETE /fapi/v1/order`, `GET /fapi/v1/openOrder` (§2.5)."""
    return _order_ref(ParamReader(params, ("orderId", "origClientOrderId", "symbol")), symbols)


@dataclass(frozen=True, slots=True)
class ModifyOrder:
    """`PUT /fapi/v1/order` / `order.modify`: quantity and price both mandatory (§2.5)."""

    ref: OrderRef
    side: str
    quantity: Decimal
    price: Decimal | None
    price_match: str


_MODIFY_PARAMS: Final = (
    "orderId",
    "origClientOrderId",
    "symbol",
    "side",
    "quantity",
    "price",
    "priceMatch",
    "modifyId",
)


def parse_modify_order(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> ModifyOrder:
    reader = ParamReader(params, _MODIFY_PARAMS)
    side = reader.choice("side", SIDES)
    price_match = reader.choice("priceMatch", PRICE_MATCHES, "NONE") or "NONE"
    side = required(side, "side")
    quantity = reader.decimal("quantity")
    price = reader.decimal("price")
    quantity = required(quantity, "quantity")
    _price_or_match(price, price_match)
    ref = _order_ref(reader, symbols)
    check_precision(symbols[ref.symbol], quantity, price)
    return ModifyOrder(ref, side, quantity, price, price_match)


@dataclass(frozen=True, slots=True)
class CancelBatch:
    """`DELETE /fapi/v1/batchOrders`: JSON lists of ids (≤10) in the param (§2.5)."""

    symbol: str
    order_ids: tuple[int, ...]
    client_order_ids: tuple[str, ...]


def parse_cancel_batch(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> CancelBatch:
    reader = ParamReader(params, ("orderIdList", "origClientOrderIdList", "symbol"))
    ids_raw = reader.raw("orderIdList")
    client_raw = reader.raw("origClientOrderIdList")
    rules = reader.symbol(symbols)
    if ids_raw is not None and client_raw is not None:
        raise bad_combination()
    if ids_raw is None and client_raw is None:
        raise errors.mandatory_param("orderIdList")
    ids: tuple[int, ...] = ()
    clients: tuple[str, ...] = ()
    name = "orderIdList" if ids_raw is not None else "origClientOrderIdList"
    try:
        if ids_raw is not None:
            ids = tuple(msgspec.json.decode(ids_raw, type=list[int]))
        if client_raw is not None:
            clients = tuple(msgspec.json.decode(client_raw, type=list[str]))
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise errors.invalid_parameter(name) from None
    if not 0 < len(ids) + len(clients) <= MAX_CANCEL_BATCH:
        raise errors.invalid_parameter(name)
    return CancelBatch(rules.symbol, ids, clients)


def parse_symbol(params: Mapping[str, str], symbols: Mapping[str, SymbolRules]) -> str:
    """Endpoints whose only parameter is a mandatory `symbol` (`allOpenOrders`,
    `commissionRate`)."""
    return ParamReader(params, ("symbol",)).symbol(symbols).symbol


def parse_open_orders(params: Mapping[str, str], symbols: Mapping[str, SymbolRules]) -> str | None:
    """Endpoints with an optional `symbol` (`openOrders`, `leverageBracket`, `symbolConfig`,
    positionRisk, `/account`, `/balance`)."""
    return ParamReader(params, ("symbol",)).optional_symbol(symbols)


def parse_no_params(params: Mapping[str, str]) -> None:
    """Endpoints without parameters (`accountConfig`, `positionSide/dual` GET, …)."""
    ParamReader(params)


@dataclass(frozen=True, slots=True)
class AllOrdersQuery:
    symbol: str
    order_id: int | None
    start_time: int | None
    end_time: int | None
    limit: int


def parse_all_orders(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> AllOrdersQuery:
    """`GET /fapi/v1/allOrders` (§2.5): limit ≤1000 (default 500), a window ≤7 days."""
    reader = ParamReader(params, ("symbol", "orderId", "startTime", "endTime", "limit"))
    order_id = reader.integer("orderId", minimum=0)
    start, end = reader.time_range(SEVEN_DAYS_MS)
    limit = reader.limit(500)
    return AllOrdersQuery(reader.symbol(symbols).symbol, order_id, start, end, limit)


@dataclass(frozen=True, slots=True)
class UserTradesQuery:
    symbol: str
    order_id: int | None
    start_time: int | None
    end_time: int | None
    from_id: int | None
    limit: int


def parse_user_trades(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> UserTradesQuery:
    """`GET /fapi/v1/userTrades` (§2.5): `fromId` with a time range is -1128."""
    reader = ParamReader(params, ("symbol", "orderId", "startTime", "endTime", "fromId", "limit"))
    order_id = reader.integer("orderId", minimum=0)
    start, end = reader.time_range(SEVEN_DAYS_MS)
    from_id = reader.integer("fromId", minimum=0)
    limit = reader.limit(500)
    if from_id is not None and (start is not None or end is not None):
        raise bad_combination()
    rules = reader.symbol(symbols)
    return UserTradesQuery(rules.symbol, order_id, start, end, from_id, limit)


@dataclass(frozen=True, slots=True)
class Countdown:
    symbol: str
    countdown_ms: int


def parse_countdown(params: Mapping[str, str], symbols: Mapping[str, SymbolRules]) -> Countdown:
    """`POST /fapi/v1/countdownCancelAll` (§2.5): `countdownTime` ms, 0 disables."""
    reader = ParamReader(params, ("symbol", "countdownTime"))
    countdown = required(reader.integer("countdownTime", minimum=0), "countdownTime")
    return Countdown(reader.symbol(symbols).symbol, countdown)


@dataclass(frozen=True, slots=True)
class IncomeQuery:
    symbol: str | None
    income_type: str | None
    start_time: int | None
    end_time: int | None
    page: int | None
    limit: int


def parse_income(params: Mapping[str, str], symbols: Mapping[str, SymbolRules]) -> IncomeQuery:
    """`GET /fapi/v1/income` (§2.6): limit ≤1000 (default 100)."""
    reader = ParamReader(params, ("symbol", "incomeType", "startTime", "endTime", "page", "limit"))
    income_type = reader.choice("incomeType", INCOME_TYPES)
    start, end = reader.time_range()
    page = reader.integer("page", minimum=0)
    limit = reader.limit(100)
    symbol = reader.optional_symbol(symbols)
    return IncomeQuery(symbol, income_type, start, end, page, limit)


@dataclass(frozen=True, slots=True)
class SetLeverage:
    symbol: str
    leverage: int


def parse_set_leverage(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> SetLeverage:
    """`POST /fapi/v1/leverage`: 1..125; the engine answers -4028 above the bracket's max."""
    reader = ParamReader(params, ("symbol", "leverage"))
    leverage = required(reader.integer("leverage"), "leverage")
    rules = reader.symbol(symbols)
    if not 1 <= leverage <= 125:
        raise _error(-4028, f"Leverage {leverage} is not valid")
    return SetLeverage(rules.symbol, leverage)


@dataclass(frozen=True, slots=True)
class SetMarginType:
    symbol: str
    margin_type: str  # ISOLATED or CROSSED


def parse_set_margin_type(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> SetMarginType:
    reader = ParamReader(params, ("symbol", "marginType"))
    # Binance takes the value case-insensitively (ccxt sends `ISOLATED`/`CROSSED`; some
    # bots send `isolated`).
    margin_type = reader.mandatory("marginType").upper()
    if margin_type not in MARGIN_TYPES:
        raise errors.invalid_parameter("marginType")
    return SetMarginType(reader.symbol(symbols).symbol, margin_type)


def _flag(params: Mapping[str, str], name: str) -> bool:
    return required(ParamReader(params, (name,)).boolean(name), name)


def parse_set_dual_side(params: Mapping[str, str]) -> bool:
    """`POST /fapi/v1/positionSide/dual`: `dualSidePosition` "true"/"false"."""
    return _flag(params, "dualSidePosition")


def parse_set_multi_assets(params: Mapping[str, str]) -> bool:
    """`POST /fapi/v1/multiAssetsMargin`: `multiAssetsMargin` "true"/"false"."""
    return _flag(params, "multiAssetsMargin")


@dataclass(frozen=True, slots=True)
class PositionMargin:
    symbol: str
    position_side: str
    amount: Decimal
    add: bool  # type 1 adds, 2 reduces


def parse_position_margin(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> PositionMargin:
    reader = ParamReader(params, ("symbol", "positionSide", "amount", "type"))
    position_side = reader.choice("positionSide", POSITION_SIDES, "BOTH") or "BOTH"
    amount = reader.decimal("amount")
    kind = reader.integer("type")
    amount = required(amount, "amount")
    kind = required(kind, "type")
    if kind not in (1, 2):
        raise errors.invalid_parameter("type")
    if amount <= 0:
        raise errors.invalid_parameter("amount")
    return PositionMargin(reader.symbol(symbols).symbol, position_side, amount, kind == 1)


# Responses (§2.3-§2.6), keys in Binance's order


_QUANTA: Final = tuple(Decimal(1).scaleb(-places) for places in range(19))


def quantum(places: int) -> Decimal:
    """`10**-places` (`Decimal("0.01")` for 2): what `fmt(value, places)` quantizes to."""
    return _QUANTA[places] if 0 <= places < len(_QUANTA) else Decimal(1).scaleb(-places)


def fmt(value: Decimal, places: int) -> str:
    """`value` at exactly `places` decimals, plain notation (`"0.4720"`, `"0"` for places=0)."""
    unit = _QUANTA[places] if 0 <= places < len(_QUANTA) else Decimal(1).scaleb(-places)
    return f"{value.quantize(unit):f}"


class Order(msgspec.Struct, omit_defaults=True, rename="camel"):
    """An order, as `POST`/`PUT`/`GET`/`DELETE /fapi/v1/order`, `openOrder(s)`, `allOrders`,
    batch items and the WebSocket API's `order.*` answer it (§2.3, §2.5)."""

    order_id: int
    symbol: str
    status: str
    client_order_id: str
    price: str
    avg_price: str
    orig_qty: str
    executed_qty: str
    cum_qty: str
    cum_quote: str
    time_in_force: str
    type: str
    reduce_only: bool
    close_position: bool
    side: str
    position_side: str
    stop_price: str
    working_type: str
    price_protect: bool
    orig_type: str
    price_match: str
    self_trade_prevention_mode: str
    good_till_date: int
    update_time: int
    # Query answers (GET order, openOrder(s), allOrders) carry the creation time.
    time: int | None = None


class ErrorItem(msgspec.Struct, rename="camel"):
    """A failed batch item, in place (§2.5: `{"code":-5022,"msg":"…"}`)."""

    code: int
    msg: str


class CodeMsg(msgspec.Struct, rename="camel"):
    """`{"code":200,"msg":"success"}` and friends (marginType, positionSide/dual, …)."""

    code: int
    msg: str


class CountdownResponse(msgspec.Struct, rename="camel"):
    symbol: str
    countdown_time: str  # a string (§2.5)


class UserTrade(msgspec.Struct, rename="camel"):
    """One `GET /fapi/v1/userTrades` row (§2.5; SDK AccountTradeListResponseInner)."""

    buyer: bool
    commission: str
    commission_asset: str
    id: int
    maker: bool
    order_id: int
    price: str
    qty: str
    quote_qty: str
    realized_pnl: str
    side: str
    position_side: str
    symbol: str
    time: int


class _AssetRow(msgspec.Struct, rename="camel"):
    """What the account v2 and v3 asset rows share, in Binance's order (§2.6)."""

    asset: str
    wallet_balance: str
    unrealized_profit: str
    margin_balance: str
    maint_margin: str
    initial_margin: str
    position_initial_margin: str
    open_order_initial_margin: str
    cross_wallet_balance: str
    cross_un_pnl: str
    available_balance: str
    max_withdraw_amount: str


class AccountV2Asset(_AssetRow):
    """The shared row, then `marginAvailable`, then `updateTime` (§2.6)."""

    margin_available: bool
    update_time: int


class AccountV3Asset(_AssetRow):
    """v2's asset row minus `marginAvailable` (§2.6)."""

    update_time: int


class AccountV2Position(msgspec.Struct, rename="camel"):
    """Every symbol, zero rows too; `leverage` is a string, `isolated` a bool (§2.6)."""

    symbol: str
    initial_margin: str
    maint_margin: str
    unrealized_profit: str
    position_initial_margin: str
    open_order_initial_margin: str
    leverage: str
    isolated: bool
    entry_price: str
    break_even_price: str
    max_notional: str
    bid_notional: str
    ask_notional: str
    position_side: str
    position_amt: str
    update_time: int


class AccountV3Position(msgspec.Struct, rename="camel"):
    """Only non-zero positions (§2.6)."""

    symbol: str
    position_side: str
    position_amt: str
    unrealized_profit: str
    isolated_margin: str
    notional: str
    isolated_wallet: str
    initial_margin: str
    maint_margin: str
    update_time: int


class AccountV2(msgspec.Struct, rename="camel"):
    """`GET /fapi/v2/account` (§2.6); nautilus requires `feeTier`, `canTrade`, `canDeposit`,
    `canWithdraw`, `updateTime` and full `assets` rows."""

    fee_tier: int
    fee_burn: bool
    can_trade: bool
    can_deposit: bool
    can_withdraw: bool
    update_time: int
    multi_assets_margin: bool
    trade_group_id: int
    total_initial_margin: str
    total_maint_margin: str
    total_wallet_balance: str
    total_unrealized_profit: str
    total_margin_balance: str
    total_position_initial_margin: str
    total_open_order_initial_margin: str
    total_cross_wallet_balance: str
    total_cross_un_pnl: str
    available_balance: str
    max_withdraw_amount: str
    assets: list[AccountV2Asset]
    positions: list[AccountV2Position]


class AccountV3(msgspec.Struct, rename="camel"):
    """`GET /fapi/v3/account` (§2.6): no `feeTier`/`canTrade` (moved to accountConfig)."""

    total_initial_margin: str
    total_maint_margin: str
    total_wallet_balance: str
    total_unrealized_profit: str
    total_margin_balance: str
    total_position_initial_margin: str
    total_open_order_initial_margin: str
    total_cross_wallet_balance: str
    total_cross_un_pnl: str
    available_balance: str
    max_withdraw_amount: str
    assets: list[AccountV3Asset]
    positions: list[AccountV3Position]


class BalanceRow(msgspec.Struct, rename="camel"):
    """One `GET /fapi/v2/balance` / `v3/balance` row (§2.6)."""

    account_alias: str
    asset: str
    balance: str
    cross_wallet_balance: str
    cross_un_pnl: str
    available_balance: str
    max_withdraw_amount: str
    margin_available: bool
    update_time: int


class PositionRiskV2(msgspec.Struct, rename="camel"):
    """`GET /fapi/v2/positionRisk` row: every symbol; `marginType` lower-case, `leverage` and
    `isAutoAddMargin` strings (§2.6)."""

    entry_price: str
    break_even_price: str
    margin_type: str
    is_auto_add_margin: str
    isolated_margin: str
    leverage: str
    liquidation_price: str
    mark_price: str
    max_notional_value: str
    position_amt: str
    notional: str
    isolated_wallet: str
    symbol: str
    un_realized_profit: str
    position_side: str
    update_time: int


class PositionRiskV3(msgspec.Struct, rename="camel"):
    """`GET /fapi/v3/positionRisk` row: symbols with a position or open orders (§2.6)."""

    symbol: str
    position_side: str
    position_amt: str
    entry_price: str
    break_even_price: str
    mark_price: str
    un_realized_profit: str
    liquidation_price: str
    isolated_margin: str
    notional: str
    margin_asset: str
    isolated_wallet: str
    initial_margin: str
    maint_margin: str
    position_initial_margin: str
    open_order_initial_margin: str
    adl: int
    bid_notional: str
    ask_notional: str
    update_time: int


class AdlQuantileRow(msgspec.Struct, rename="camel"):
    """`GET /fapi/v1/adlQuantile` row: one symbol with an open position, its sides' ADL
    quantiles 0–4 keyed LONG/SHORT/BOTH (or HEDGE, a marker, in cross hedge mode)."""

    symbol: str
    adl_quantile: dict[str, int]


class IncomeRow(msgspec.Struct, rename="camel"):
    """`GET /fapi/v1/income` row: `income` signed, `tradeId` a string (`""` if none)."""

    symbol: str
    income_type: str
    income: str
    asset: str
    info: str
    time: int
    tran_id: int
    trade_id: str


class CommissionRate(msgspec.Struct, rename="camel"):
    symbol: str
    maker_commission_rate: str
    taker_commission_rate: str
    rpi_commission_rate: str


class Bracket(msgspec.Struct, rename="camel"):
    """Bare JSON numbers, not strings (§2.6; SDK int/float)."""

    bracket: int
    initial_leverage: int
    notional_cap: float
    notional_floor: float
    maint_margin_ratio: float
    cum: float


class SymbolBrackets(msgspec.Struct, rename="camel"):
    symbol: str
    brackets: list[Bracket]


class SymbolConfig(msgspec.Struct, rename="camel"):
    """`isAutoAddMargin` is a bool here (SDK and nautilus decode a bool, §8 q4)."""

    symbol: str
    margin_type: str
    is_auto_add_margin: bool
    leverage: int
    max_notional_value: str


class AccountConfig(msgspec.Struct, rename="camel"):
    fee_tier: int
    can_trade: bool
    can_deposit: bool
    can_withdraw: bool
    dual_side_position: bool
    update_time: int
    multi_assets_margin: bool
    trade_group_id: int


class DualSideMode(msgspec.Struct, rename="camel"):
    dual_side_position: bool


class MultiAssetsMode(msgspec.Struct, rename="camel"):
    multi_assets_margin: bool


class LeverageResponse(msgspec.Struct, rename="camel"):
    leverage: int
    max_notional_value: str
    symbol: str


class PositionMarginResponse(msgspec.Struct, rename="camel"):
    """`amount` is a number here (§2.6)."""

    amount: float
    code: int
    msg: str
    type: int


_encoder: Final = msgspec.json.Encoder()


def encode(body: object) -> bytes:
    """A response body's JSON bytes."""
    return _encoder.encode(body)
