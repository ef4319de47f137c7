"""The order checks of trading spec §4.1, in its order, stopping at the first failure.

The adapter has already rejected what is syntactically wrong (rows 1-2); these are rows
3-17. Margin (18), post-only (19) and fill-or-kill (20) need the account's margin and the
taker plan, so the engine applies them after `check_new_order` accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Final

import msgspec

from userstream.market.book import OrderBook
from userstream.protocol import errors
from userstream.protocol.events import (
    OrderType,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
)
from userstream.venue.commands import NewOrder
from userstream.venue.numbers import ZERO, fits_places
from userstream.venue.rules import SymbolRules
from userstream.venue.state import Order
from userstream.venue.views import VenueError

__all__ = [
    "Accepted",
    "check_client_order_id",
    "check_filters",
    "check_new_order",
    "match_price",
]

_CLIENT_ORDER_ID: Final = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
_CONDITIONAL: Final = frozenset(
    {
        OrderType.STOP,
        OrderType.STOP_MARKET,
        OrderType.TAKE_PROFIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TRAILING_STOP_MARKET,
    }
)
# Withdrawn from place and amend flows on 2025-10-23 (trading spec §2.3).
_WITHDRAWN_MATCH: Final = frozenset({PriceMatch.OPPONENT_10, PriceMatch.OPPONENT_20})
_MATCH_DEPTH: Final = {"": 1, "5": 5, "10": 10, "20": 20}
_GTD_MIN_AHEAD_MS: Final = 600_000
_GTD_MAX_MS: Final = 253402300799000


class Accepted(msgspec.Struct, frozen=True):
    """A new order that passed rows 3-17, with its defaults and resolved values filled in.
    `reference_price` is what notional and margin are measured at (the limit, or the best
    opposite price, or the mark for a MARKET order facing an empty book)."""

    rules: SymbolRules
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal
    reference_price: Decimal
    time_in_force: TimeInForce
    position_side: PositionSide
    reduce_only: bool
    price_match: PriceMatch
    self_trade_prevention_mode: SelfTradePreventionMode
    good_till_date: int
    client_order_id: str | None


def check_client_order_id(client_order_id: str) -> VenueError | None:
    """Row 7: -4015 for a client order id longer than 36 or with other characters."""
    if len(client_order_id) > 36:
        return VenueError(errors.INVALID_CL_ORD_ID_LEN, errors.CLIENT_ORDER_ID_TOO_LONG)
    if not _CLIENT_ORDER_ID.fullmatch(client_order_id):
        return VenueError(errors.INVALID_CL_ORD_ID_LEN, errors.CLIENT_ORDER_ID_INVALID)
    return None


def match_price(book: OrderBook, side: Side, match: PriceMatch) -> Decimal | VenueError:
    """The price `priceMatch` resolves to (spec §4.3): OPPONENT[_n] the n-th best opposite
    level, QUEUE[_n] the n-th best level on the order's own side."""
    if match in _WITHDRAWN_MATCH:
        return VenueError.of(errors.INVALID_PRICE_MATCH)
    kind, _, depth_text = match.value.partition("_")
    depth = _MATCH_DEPTH[depth_text]
    snapshot = book.snapshot(depth)
    opposite = kind == "OPPONENT"
    levels = (
        (snapshot.asks if side is Side.BUY else snapshot.bids)
        if opposite
        else (snapshot.bids if side is Side.BUY else snapshot.asks)
    )
    if len(levels) < depth:
        return VenueError.of(errors.BBO_ORDER_REJECT)
    return levels[depth - 1].price


def check_filters(
    rules: SymbolRules, price: Decimal | None, quantity: Decimal, market: bool
) -> VenueError | None:
    """Rows 9-11: precision, PRICE_FILTER, LOT_SIZE (MARKET_LOT_SIZE for MARKET)."""
    if not fits_places(quantity, rules.quantity_precision) or (
        price is not None and not fits_places(price, rules.price_precision)
    ):
        return VenueError.of(errors.BAD_PRECISION)
    if price is not None:
        if price < rules.min_price:
            return VenueError.of(errors.PRICE_LESS_THAN_MIN_PRICE)
        if price > rules.max_price:
            return VenueError.of(errors.PRICE_GREATER_THAN_MAX_PRICE)
        if (price - rules.min_price) % rules.tick_size:
            return VenueError.of(errors.PRICE_NOT_INCREASED_BY_TICK_SIZE)
    min_qty, max_qty, step = (
        (rules.market_min_qty, rules.market_max_qty, rules.market_step_size)
        if market
        else (rules.min_qty, rules.max_qty, rules.step_size)
    )
    if quantity <= ZERO:
        return VenueError.of(errors.QTY_LESS_THAN_ZERO)
    if quantity < min_qty:
        return VenueError.of(errors.QTY_LESS_THAN_MIN_QTY)
    if quantity > max_qty:
        return VenueError.of(errors.QTY_GREATER_THAN_MAX_QTY)
    if (quantity - min_qty) % step:
        return VenueError.of(errors.QTY_NOT_INCREASED_BY_STEP_SIZE)
    return None


def check_band(rules: SymbolRules, side: Side, price: Decimal, mark: Decimal) -> VenueError | None:
    """Row 12 for a LIMIT price: PERCENT_PRICE around the mark."""
    if rules.multiplier_up is not None and side is Side.BUY and price > mark * rules.multiplier_up:
        return VenueError.of(errors.PRICE_HIGHER_THAN_MULTIPLIER_UP)
    if (
        rules.multiplier_down is not None
        and side is Side.SELL
        and price < mark * rules.multiplier_down
    ):
        return VenueError.of(errors.PRICE_LOWER_THAN_MULTIPLIER_DOWN)
    return None


def check_new_order(
    command: NewOrder,
    rules: SymbolRules | None,
    *,
    dual_side_position: bool,
    open_orders: Collection[Order],
    client_id_open: Callable[[str], bool],
    position_amount: Decimal,
    book: OrderBook | None,
    mark: Decimal,
    now_ms: int,
) -> Accepted | VenueError:
    """Rows 3-17 of §4.1 for `command`; `open_orders` are the account's on the symbol and
    `client_id_open` tells whether one of them carries a client order id."""
    c = command
    conditional = c.order_type in _CONDITIONAL
    limit = c.order_type is OrderType.LIMIT
    market = c.order_type is OrderType.MARKET
    # Row 3: mandatory parameters by type.
    if limit:
        if c.time_in_force is None:
            return VenueError.of(errors.MANDATORY_PARAM, "timeInForce")
        if c.quantity is None:
            return VenueError.of(errors.MANDATORY_PARAM, "quantity")
        if c.price is None and c.price_match in (None, PriceMatch.NONE):
            return VenueError.of(errors.MANDATORY_PARAM, "price")
    elif market and c.quantity is None:
        return VenueError.of(errors.MANDATORY_PARAM, "quantity")
    # Row 4: parameters the type forbids.
    if not conditional:
        if market and c.price is not None:
            return VenueError.of(errors.PARAM_NOT_REQUIRED, "price")
        if market and c.time_in_force is not None:
            return VenueError.of(errors.PARAM_NOT_REQUIRED, "timeInForce")
        if c.reduce_only is not None and dual_side_position:
            return VenueError.of(errors.PARAM_NOT_REQUIRED, "reduceOnly")
        if c.close_position is not None:
            return VenueError.of(errors.PARAM_NOT_REQUIRED, "closePosition")
        if c.stop_price is not None:
            return VenueError.of(errors.PARAM_NOT_REQUIRED, "stopPrice")
        if c.price_match not in (None, PriceMatch.NONE):
            if market:
                return VenueError.of(errors.UNSUPPORTED_ORDER_TYPE_PRICE_MATCH)
            if c.price is not None:
                return VenueError.of(errors.PARAM_NOT_REQUIRED, "price")
    # Row 5: conditional types moved to the Algo Order API on 2025-12-09.
    if conditional or not (limit or market):
        return VenueError.of(errors.STOP_ORDER_SWITCH_ALGO)
    # Row 6: the symbol.
    if rules is None or book is None:
        return VenueError.of(errors.BAD_SYMBOL)
    if rules.status != "TRADING":
        return VenueError.of(errors.INVALID_SYMBOL_STATUS)
    # Rows 7-8: the client order id, unique among open orders.
    if c.new_client_order_id is not None:
        error = check_client_order_id(c.new_client_order_id)
        if error is not None:
            return error
        if client_id_open(c.new_client_order_id):
            return VenueError.of(errors.DUPLICATED_CLIENT_ORDER_ID)
    assert c.quantity is not None
    quantity = c.quantity
    price_match = c.price_match or PriceMatch.NONE
    if price_match is not PriceMatch.NONE:
        matched = match_price(book, c.side, price_match)
        if isinstance(matched, VenueError):
            return matched
        price = matched
    else:
        price = c.price if limit and c.price is not None else ZERO
    # Rows 9-11: precision, PRICE_FILTER, LOT_SIZE.
    error = check_filters(rules, price if limit else None, quantity, market)
    if error is not None:
        return error
    # Row 12: PERCENT_PRICE (a MARKET order checks the best opposite price instead).
    if limit:
        error = check_band(rules, c.side, price, mark)
        if error is not None:
            return error
        reference = price
    else:
        opposite = book.best_ask() if c.side is Side.BUY else book.best_bid()
        if opposite is not None and check_band(rules, c.side, opposite.price, mark) is not None:
            return VenueError.of(errors.MARKET_ORDER_REJECT)
        reference = opposite.price if opposite is not None else mark
    # Hedge mode: an order closing its side (SELL on LONG, BUY on SHORT) cannot send
    # reduceOnly but is one: it reports R=true and never flips the side (trading spec §4.4,
    # §5.10).
    closes_side = (c.position_side is PositionSide.LONG and c.side is Side.SELL) or (
        c.position_side is PositionSide.SHORT and c.side is Side.BUY
    )
    reduce_only = bool(c.reduce_only) or (dual_side_position and closes_side)
    # Row 13: MIN_NOTIONAL, waived for reduce-only orders.
    if not reduce_only and quantity * reference < rules.min_notional:
        return VenueError.of(errors.MIN_NOTIONAL, rules.min_notional_text)
    # Row 14: position side against the account's position mode.
    position_side = c.position_side or PositionSide.BOTH
    if (position_side is PositionSide.BOTH) == dual_side_position:
        return VenueError.of(errors.POSITION_SIDE_NOT_MATCH)
    # Row 15: MAX_NUM_ORDERS.
    if len(open_orders) >= rules.max_num_orders:
        return VenueError.of(errors.MAX_OPEN_ORDER_EXCEEDED)
    # Row 16: a reduce-only order must face a position it reduces.
    if reduce_only and not (
        (position_amount > 0 and c.side is Side.SELL)
        or (position_amount < 0 and c.side is Side.BUY)
    ):
        return VenueError.of(errors.REDUCE_ONLY_REJECT)
    # Row 17: GTD needs goodTillDate, more than 600 s ahead; milliseconds are dropped.
    time_in_force = c.time_in_force if limit and c.time_in_force is not None else TimeInForce.GTC
    good_till_date = 0
    if time_in_force is TimeInForce.GTD:
        if c.good_till_date is None:
            return VenueError.of(errors.MANDATORY_PARAM, "goodTillDate")
        if not now_ms + _GTD_MIN_AHEAD_MS < c.good_till_date < _GTD_MAX_MS:
            return VenueError.of(errors.FUTURE_GOOD_TILL_DATE)
        good_till_date = c.good_till_date // 1000 * 1000
    return Accepted(  # positionally, in the field order
        rules,
        c.side,
        c.order_type,
        quantity,
        price,
        reference,  # reference_price
        time_in_force,
        position_side,
        reduce_only,
        price_match,
        # Default EXPIRE_MAKER (trading spec §8 q3: the 2025-2026 events carry it).
        c.self_trade_prevention_mode or SelfTradePreventionMode.EXPIRE_MAKER,
        good_till_date,
        c.new_client_order_id,  # client_order_id
    )
