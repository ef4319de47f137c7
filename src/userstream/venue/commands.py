"""What an account asks the venue to do: one frozen record per request kind.

The trading adapter parses and type-checks a request (signature, enums, number syntax:
-1100, -1101, -1115/-1116/-1117, -4060, -1136) and hands the engine one of these; the
engine applies the semantic rules of trading spec §4.1 in order. Fields are `None` when the
request did not carry the parameter, so the engine can tell "missing" (-1102) and "sent when
not allowed" (-1106) apart.

Enum-valued fields use the value sets of `userstream.protocol.events` (the same `StrEnum`s
the events carry), so a command's values go into events unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

import msgspec

from userstream.protocol.events import (
    MarginCallMarginType,
    OrderType,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
)

__all__ = [
    "CancelAllOrders",
    "CancelOrder",
    "ChangeLeverage",
    "ChangeMarginType",
    "Command",
    "CountdownCancelAll",
    "Deposit",
    "ModifyOrder",
    "NewOrder",
    "ResponseType",
    "SetCommission",
    "Withdraw",
]


class ResponseType(enum.StrEnum):
    """`newOrderRespType` (spec §2.3): ACK answers with the order as accepted (NEW), RESULT
    with its state once the request's matching is done."""

    ACK = "ACK"
    RESULT = "RESULT"


class NewOrder(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """`POST /fapi/v1/order`, WS API `order.place` (spec §2.3).

    `order_type` may be a conditional type: the engine answers -4120 for those (they belong
    to the Algo Order API since 2025-12-09). `good_till_date` is in ms and only for GTD.

    A frozen `msgspec.Struct` rather than a dataclass like the other commands: one is built
    per order on the hot path, and a frozen dataclass's `__init__` (one `object.__setattr__`
    per field) costs ~2.8 us against ~0.5 us here. Equality, hashing, `repr` and `match`
    patterns behave the same; no field holds a container, so `gc=False` is safe.
    """

    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal | None = None
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    position_side: PositionSide | None = None
    reduce_only: bool | None = None
    new_client_order_id: str | None = None
    price_match: PriceMatch | None = None
    self_trade_prevention_mode: SelfTradePreventionMode | None = None
    good_till_date: int | None = None
    response_type: ResponseType = ResponseType.ACK
    stop_price: Decimal | None = None
    close_position: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModifyOrder:
    """`PUT /fapi/v1/order`, WS API `order.modify` (spec §2.5): LIMIT orders only; both
    `quantity` and `price` are mandatory (unless `price_match` replaces the price).
    `order_id` wins over `orig_client_order_id`."""

    symbol: str
    side: Side
    quantity: Decimal | None
    price: Decimal | None
    order_id: int | None = None
    orig_client_order_id: str | None = None
    price_match: PriceMatch | None = None
    modify_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    """`DELETE /fapi/v1/order`, WS API `order.cancel`; `order_id` wins over the client id."""

    symbol: str
    order_id: int | None = None
    orig_client_order_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAllOrders:
    """`DELETE /fapi/v1/allOpenOrders`: every open order of the symbol."""

    symbol: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CountdownCancelAll:
    """`POST /fapi/v1/countdownCancelAll`: cancel the symbol's open orders `countdown_ms`
    after `now` unless renewed; 0 switches the countdown off."""

    symbol: str
    countdown_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeLeverage:
    """`POST /fapi/v1/leverage` (1-125, bounded by the symbol's brackets)."""

    symbol: str
    leverage: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeMarginType:
    """`POST /fapi/v1/marginType` with `CROSSED` or `ISOLATED`."""

    symbol: str
    margin_type: MarginCallMarginType


@dataclass(frozen=True, slots=True, kw_only=True)
class Deposit:
    """Operator deposit (`POST /admin/v1/accounts/{id}/deposit`): ACCOUNT_UPDATE m=DEPOSIT."""

    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Withdraw:
    """Operator withdrawal: ACCOUNT_UPDATE m=WITHDRAW; at most the available balance."""

    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class SetCommission:
    """Operator-set commission rates of the account (`GET /fapi/v1/commissionRate` serves
    them); they apply to fills from now on."""

    maker_rate: Decimal
    taker_rate: Decimal


Command: TypeAlias = (
    NewOrder
    | ModifyOrder
    | CancelOrder
    | CancelAllOrders
    | CountdownCancelAll
    | ChangeLeverage
    | ChangeMarginType
    | Deposit
    | Withdraw
    | SetCommission
)
"""Anything `Engine.handle` accepts."""
