"""The venue's state: accounts, their orders, positions, balances and trades.

Plain mutable msgspec Structs, so the whole state encodes to JSON (or msgpack) in one call
and decodes back (`Engine.export_state` / `Engine(..., state=...)`); the server stores it in
SQLite incrementally (`venue/journal.py`: final orders and trades once each, the rest as a
small live export) and a restarted server continues with the same ids. Indexes the engine
derives from it (open orders per symbol, client ids, the resting book) are rebuilt on load.

Positions are keyed by symbol and position side (`BOTH` in one-way mode, `LONG`/`SHORT` in
hedge mode, spec §4.4), so hedge mode adds rows without changing the shape.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from userstream.protocol.events import (
    ExpiryReason,
    MarginType,
    OrderStatus,
    OrderType,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
)
from userstream.venue.numbers import ZERO, money, trim
from userstream.venue.risk_state import RiskState

__all__ = [
    "DEFAULT_MAKER_RATE",
    "DEFAULT_TAKER_RATE",
    "AccountState",
    "AssetBalance",
    "EngineState",
    "Order",
    "PositionState",
    "SymbolState",
    "TradeRecord",
]

# VIP 0 USDⓈ-M rates (spec §4.3; naut commissionRate fixture).
DEFAULT_MAKER_RATE = Decimal("0.0002")
DEFAULT_TAKER_RATE = Decimal("0.0005")

_OPEN = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


# Orders, trades, positions and balances hold only numbers, strings and enums, so they can
# never be part of a reference cycle: `gc=False` keeps them out of the garbage collector,
# whose full passes would otherwise visit every order and trade ever made.
class Order(msgspec.Struct, gc=False):
    """One order, open or final. `price` is the limit (or the price `price_match` resolved
    to), 0 for MARKET; `cum_quote` is Σ fill qty x price, so `avg = cum_quote / executed`.

    Not keyword-only: the engine builds one per new order positionally, which CPython 3.11
    does several times faster than with 15 keywords (a call of 15 arguments or more, some
    by keyword, takes a slow path); elsewhere it is built by keyword."""

    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    position_side: PositionSide
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal
    reduce_only: bool
    price_match: PriceMatch
    self_trade_prevention_mode: SelfTradePreventionMode
    good_till_date: int
    time: int
    update_time: int
    status: OrderStatus = OrderStatus.NEW
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    modify_count: int = 0
    # Queue position among resting orders at one price: lower fills first.
    priority: int = 0
    expiry_reason: ExpiryReason = ExpiryReason.NONE
    # What a triggered algo order or a liquidation stamps on the order it places
    # (ORDER_TRADE_UPDATE `ot`, `sp`, `wt`, `cp`, `pP`; venue.risk).
    original_type: str = ""
    stop_price: Decimal = ZERO
    working_type: str = "CONTRACT_PRICE"
    close_position: bool = False
    price_protect: bool = False
    # A triggered trailing stop's activation price and callback rate (`AP`, `cr`).
    activation_price: Decimal | None = None
    callback_rate: Decimal | None = None

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed_qty

    @property
    def average_price(self) -> Decimal:
        """`ap` / `avgPrice`: the fills' quantity-weighted price, 0 before the first."""
        return trim(money(self.cum_quote / self.executed_qty)) if self.executed_qty else ZERO


class TradeRecord(msgspec.Struct, gc=False):
    """One fill of one of the account's orders (`GET /fapi/v1/userTrades`). Not
    keyword-only, like `Order`: the engine builds one per fill positionally."""

    trade_id: int
    order_id: int
    symbol: str
    side: Side
    position_side: PositionSide
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    realized_pnl: Decimal
    commission: Decimal  # positive, in `commission_asset`
    commission_asset: str
    maker: bool
    time: int


class PositionState(msgspec.Struct, kw_only=True, gc=False):
    """One position; `amount` is signed (negative = short). Every amount is stored exactly
    as the ACCOUNT_UPDATE `P[]` entry reports it."""

    symbol: str
    position_side: PositionSide
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    breakeven_price: Decimal = ZERO
    accumulated_realized: Decimal = ZERO  # `cr`, before fees
    isolated_wallet: Decimal = ZERO  # `iw`, isolated positions only
    update_time: int = 0


class SymbolState(msgspec.Struct, kw_only=True):
    """An account's settings and positions on one symbol."""

    leverage: int
    margin_type: MarginType = MarginType.CROSS
    positions: dict[str, PositionState] = msgspec.field(default_factory=dict)
    # countdownCancelAll: the instant the symbol's open orders are cancelled (0 = off).
    countdown_deadline: int = 0


class AssetBalance(msgspec.Struct, kw_only=True, gc=False):
    """The wallet balance of one asset: deposits − withdrawals + realized PnL − fees."""

    asset: str
    wallet_balance: Decimal = ZERO
    update_time: int = 0


class AccountState(msgspec.Struct, kw_only=True):
    """Everything the venue knows about one account."""

    account_id: int
    maker_rate: Decimal = DEFAULT_MAKER_RATE
    taker_rate: Decimal = DEFAULT_TAKER_RATE
    dual_side_position: bool = False
    multi_assets_margin: bool = False
    balances: dict[str, AssetBalance] = msgspec.field(default_factory=dict)
    symbols: dict[str, SymbolState] = msgspec.field(default_factory=dict)
    orders: dict[int, Order] = msgspec.field(default_factory=dict)
    trades: list[TradeRecord] = msgspec.field(default_factory=list)


class EngineState(msgspec.Struct, kw_only=True):
    """The whole venue: accounts and the id counters (ids continue after a restore)."""

    next_order_id: int = 1
    next_trade_id: int = 1
    next_priority: int = 1
    accounts: dict[int, AccountState] = msgspec.field(default_factory=dict)
    # Algo orders, funding and transfer income, margin calls (venue.risk).
    risk: RiskState = msgspec.field(default_factory=RiskState)
