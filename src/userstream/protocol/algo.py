"""Algo Order API requests and responses, typed (trading spec §2.4; since 2025-12-09).

Requests are read with `protocol.trading`'s parameter reader, so unknown parameters (-1104),
enum values (-1116 `type`, -1117 `side`, -4060 `positionSide` …), bad numbers (-1100) and
the symbol (-1121) fail the same way as on `/fapi/v1/order`. What needs account state
(-2021, -4061, -20132 …) is `venue.algo`'s.

Responses: `AlgoOrderResponse` is the algo object of POST/GET and the lists, keys in the SDK
model's order; every price and quantity is a string, times and `algoId` integers, flags
booleans. The query adds `actualOrderId` ("" until triggered), `actualPrice`, `actualType`
and `actualQty`; `activatePrice` and `callbackRate` only appear on trailing orders. DELETE
answers `{"algoId","clientAlgoId","code":"200","msg":"success"}` with `code` a **string**.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import msgspec

from userstream.protocol import errors
from userstream.protocol.trading import (
    CONDITIONAL_TYPES,
    POSITION_SIDES,
    PRICE_MATCHES,
    RESP_TYPES,
    SIDES,
    STP_MODES,
    TIME_IN_FORCE,
    WORKING_TYPES,
    ParamReader,
    SymbolRules,
    invalid_value,
    required,
)

__all__ = [
    "AlgoCancelResponse",
    "AlgoOrderRequest",
    "AlgoOrderResponse",
    "AlgoRef",
    "parse_algo_list",
    "parse_algo_order",
    "parse_algo_ref",
]

_ALGO_FIELDS: Final = (
    "algoType",
    "symbol",
    "side",
    "positionSide",
    "type",
    "timeInForce",
    "quantity",
    "price",
    "triggerPrice",
    "workingType",
    "priceMatch",
    "closePosition",
    "priceProtect",
    "reduceOnly",
    "activatePrice",
    "callbackRate",
    "clientAlgoId",
    "newOrderRespType",
    "selfTradePreventionMode",
    "goodTillDate",
)


@dataclass(frozen=True, slots=True)
class AlgoOrderRequest:
    algo_type: str
    symbol: str
    side: str
    order_type: str
    position_side: str | None
    time_in_force: str | None
    quantity: Decimal | None
    price: Decimal | None
    trigger_price: Decimal | None
    working_type: str | None
    price_match: str | None
    close_position: bool | None
    price_protect: bool | None
    reduce_only: bool | None
    activate_price: Decimal | None
    callback_rate: Decimal | None
    client_algo_id: str | None
    self_trade_prevention_mode: str | None
    good_till_date: int | None


def parse_algo_order(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules]
) -> AlgoOrderRequest:
    """`POST /fapi/v1/algoOrder` / `algoOrder.place`."""
    reader = ParamReader(params, _ALGO_FIELDS)
    algo_type = reader.mandatory("algoType")
    side = reader.choice("side", SIDES)
    order_type = reader.raw("type")
    side = required(side, "side")
    order_type = required(order_type, "type")
    if order_type not in CONDITIONAL_TYPES:
        raise invalid_value("type")
    symbol = reader.symbol(symbols).symbol
    request = AlgoOrderRequest(
        algo_type=algo_type,
        symbol=symbol,
        side=side,
        order_type=order_type,
        position_side=reader.choice("positionSide", POSITION_SIDES),
        time_in_force=reader.choice("timeInForce", TIME_IN_FORCE),
        quantity=reader.decimal("quantity"),
        price=reader.decimal("price"),
        trigger_price=reader.decimal("triggerPrice"),
        working_type=reader.choice("workingType", WORKING_TYPES),
        price_match=reader.choice("priceMatch", PRICE_MATCHES),
        close_position=reader.boolean("closePosition"),
        price_protect=reader.boolean("priceProtect"),
        reduce_only=reader.boolean("reduceOnly"),
        activate_price=reader.decimal("activatePrice"),
        callback_rate=reader.decimal("callbackRate"),
        client_algo_id=reader.raw("clientAlgoId"),
        self_trade_prevention_mode=reader.choice("selfTradePreventionMode", STP_MODES),
        good_till_date=reader.integer("goodTillDate"),
    )
    reader.choice("newOrderRespType", RESP_TYPES)
    return request


@dataclass(frozen=True, slots=True)
class AlgoRef:
    algo_id: int | None
    client_algo_id: str | None


def parse_algo_ref(params: Mapping[str, str]) -> AlgoRef:
    """`DELETE`/`GET /fapi/v1/algoOrder`: `algoId` or `clientAlgoId`."""
    reader = ParamReader(params, ("algoId", "clientAlgoId"))
    ref = AlgoRef(reader.integer("algoId"), reader.raw("clientAlgoId"))
    if ref.algo_id is None and ref.client_algo_id is None:
        raise errors.mandatory_param("algoId")
    return ref


_ALGO_LIST_PARAMS: Final = ("symbol", "algoId", "startTime", "endTime", "page", "limit", "algoType")


def parse_algo_list(
    params: Mapping[str, str], symbols: Mapping[str, SymbolRules], *, symbol_required: bool
) -> str | None:
    """`openAlgoOrders`, `allAlgoOrders` (optional `symbol`, times and limit accepted) and
    `algoOpenOrders` cancel-all (`symbol` mandatory)."""
    reader = ParamReader(params, _ALGO_LIST_PARAMS)
    if symbol_required:
        return reader.symbol(symbols).symbol
    return reader.optional_symbol(symbols)


class AlgoOrderResponse(msgspec.Struct, omit_defaults=True, rename="camel"):
    """The algo object (SDK `NewAlgoOrderResponse` / `QueryAlgoOrderResponse`)."""

    algo_id: int
    client_algo_id: str
    algo_type: str
    order_type: str
    symbol: str
    side: str
    position_side: str
    time_in_force: str
    quantity: str
    algo_status: str
    trigger_price: str
    price: str
    self_trade_prevention_mode: str
    working_type: str
    price_match: str
    close_position: bool
    price_protect: bool
    reduce_only: bool
    create_time: int
    update_time: int
    trigger_time: int
    good_till_date: int
    iceberg_quantity: str | None = None
    activate_price: str | None = None
    callback_rate: str | None = None
    actual_order_id: str | None = None
    actual_price: str | None = None
    actual_type: str | None = None
    actual_qty: str | None = None


class AlgoCancelResponse(msgspec.Struct, rename="camel"):
    algo_id: int
    client_algo_id: str
    code: str
    msg: str
