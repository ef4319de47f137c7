"""What the engine answers: command results, errors and the read views REST serves.

Every view is a frozen snapshot with `Decimal` amounts; the trading adapter formats them
into Binance's response shapes (trading spec §2.3, §2.5, §2.6). A rejected command yields a
`VenueError` (Binance's code and message, HTTP 400) and no events (spec §5.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

import msgspec

from userstream.exceptions import BinanceAPIError
from userstream.protocol import errors
from userstream.protocol.events import Event, OrderStatus
from userstream.venue.numbers import ZERO
from userstream.venue.state import Order, TradeRecord

__all__ = [
    "Ack",
    "BalanceView",
    "CommissionView",
    "CountdownView",
    "LeverageView",
    "OrderView",
    "Outcome",
    "PositionView",
    "Result",
    "SymbolConfigView",
    "TradeView",
    "VenueError",
]


@dataclass(frozen=True, slots=True)
class VenueError:
    """A rejection in Binance's shape: `{"code": code, "msg": msg}` with HTTP 400."""

    code: int
    msg: str

    @classmethod
    def of(cls, code: int, *args: object) -> VenueError:
        """The error `code` with its message from `protocol.errors.MESSAGES`, `%s` filled."""
        template = errors.MESSAGES[code]
        return cls(code, template % args if args else template)

    def to_api_error(self) -> BinanceAPIError:
        return BinanceAPIError(self.code, self.msg, 400)


class OrderView(msgspec.Struct, frozen=True):
    """An order as `GET /fapi/v1/order` and the order answers report it."""

    order_id: int
    symbol: str
    status: str
    client_order_id: str
    price: Decimal
    avg_price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cum_quote: Decimal
    time_in_force: str
    order_type: str
    reduce_only: bool
    side: str
    position_side: str
    price_match: str
    self_trade_prevention_mode: str
    good_till_date: int
    time: int
    update_time: int
    expiry_reason: str
    stop_price: Decimal = ZERO
    close_position: bool = False
    price_protect: bool = False
    working_type: str = "CONTRACT_PRICE"

    @property
    def orig_type(self) -> str:
        return self.order_type

    @classmethod
    def of(cls, order: Order, avg_price: Decimal | None = None) -> OrderView:
        """`order` as it is now; `avg_price` is its average price when the caller has it
        (`Order.average_price` divides and rounds)."""
        # Positional: a call with more than 15 arguments, some by keyword, costs ~1.5 µs in
        # CPython 3.11 against ~0.1 µs positionally (the field order is the class's).
        return cls(
            order.order_id,  # order_id
            order.symbol,  # symbol
            order.status,  # status
            order.client_order_id,  # client_order_id
            order.price,  # price
            order.average_price if avg_price is None else avg_price,  # avg_price
            order.quantity,  # orig_qty
            order.executed_qty,  # executed_qty
            order.cum_quote,  # cum_quote
            order.time_in_force,  # time_in_force
            order.order_type,  # order_type
            order.reduce_only,  # reduce_only
            order.side,  # side
            order.position_side,  # position_side
            order.price_match,  # price_match
            order.self_trade_prevention_mode,  # self_trade_prevention_mode
            order.good_till_date,  # good_till_date
            order.time,  # time
            order.update_time,  # update_time
            order.expiry_reason,  # expiry_reason
        )

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class TradeView:
    """One fill (`GET /fapi/v1/userTrades`)."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    position_side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    realized_pnl: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    buyer: bool
    time: int

    @classmethod
    def of(cls, trade: TradeRecord) -> TradeView:
        return cls(
            trade_id=trade.trade_id,
            order_id=trade.order_id,
            symbol=trade.symbol,
            side=trade.side,
            position_side=trade.position_side,
            price=trade.price,
            qty=trade.qty,
            quote_qty=trade.quote_qty,
            realized_pnl=trade.realized_pnl,
            commission=trade.commission,
            commission_asset=trade.commission_asset,
            maker=trade.maker,
            buyer=trade.side == "BUY",
            time=trade.time,
        )


@dataclass(frozen=True, slots=True)
class BalanceView:
    """One margin asset (`/fapi/v2/balance`, `account.assets[]`)."""

    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    unrealized_pnl: Decimal
    cross_unrealized_pnl: Decimal
    margin_balance: Decimal
    initial_margin: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    maint_margin: Decimal
    available_balance: Decimal
    max_withdraw_amount: Decimal
    update_time: int


@dataclass(frozen=True, slots=True)
class PositionView:
    """One position row (`positionRisk`, `account.positions[]`), zero rows included."""

    symbol: str
    position_side: str
    position_amt: Decimal
    entry_price: Decimal
    breakeven_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    notional: Decimal
    leverage: int
    margin_type: str  # "cross" / "isolated"
    isolated_wallet: Decimal
    isolated_margin: Decimal  # isolated wallet + unrealized PnL, 0 for cross
    initial_margin: Decimal
    maint_margin: Decimal
    open_order_initial_margin: Decimal
    bid_notional: Decimal
    ask_notional: Decimal
    max_notional: Decimal
    margin_asset: str
    update_time: int
    position_initial_margin: Decimal  # |amount| x mark / leverage; `initial_margin` adds orders


@dataclass(frozen=True, slots=True)
class SymbolConfigView:
    """`GET /fapi/v1/symbolConfig` row."""

    symbol: str
    margin_type: str  # "CROSSED" / "ISOLATED"
    leverage: int
    max_notional_value: Decimal


@dataclass(frozen=True, slots=True)
class CommissionView:
    """`GET /fapi/v1/commissionRate` (per account; every symbol shares the rates)."""

    maker_rate: Decimal
    taker_rate: Decimal


@dataclass(frozen=True, slots=True)
class LeverageView:
    """`POST /fapi/v1/leverage` answer."""

    symbol: str
    leverage: int
    max_notional_value: Decimal


@dataclass(frozen=True, slots=True)
class CountdownView:
    """`POST /fapi/v1/countdownCancelAll` answer."""

    symbol: str
    countdown_ms: int


@dataclass(frozen=True, slots=True)
class Ack:
    """`{"code": 200, "msg": ...}` answers (cancel-all, marginType)."""

    code: int
    msg: str


Result: TypeAlias = (
    OrderView | Ack | LeverageView | CountdownView | BalanceView | CommissionView | VenueError
)


class Outcome(msgspec.Struct, frozen=True):
    """What a command did: its answer (or error) and the account's events, in order."""

    result: Result
    events: Sequence[Event] = ()
