"""The ten USDⓈ-M Futures user-data events as msgspec Structs, tagged on `"e"`.

Spec: `shared/spec/binance-usdm-user-data-streams.md` §5; Binance pages under
https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/.

Wire conventions (§5, "Common conventions"):

* Attributes have readable names; `msgspec.field(name=...)` maps them to Binance's keys.
* Field order is the key order of real payloads where a real capture exists (`"T"` before
  `"E"`; `"m"` last inside ACCOUNT_UPDATE `a`), otherwise the order of the doc example.
* Amounts and prices are `Decimal` and travel as JSON strings; encode events with
  `userstream.protocol.codec.encode_event`, which keeps Binance's plain notation
  (`"0.00000000"`, never `"0E-8"`). Times and ids are `int` from 0 to 2^63-1 (`Millis`,
  `Id`), other integers int64 (`Int64`); flags are `bool`.
* Enum-like values are plain `str` so that a value Binance adds tomorrow still decodes.
  The `StrEnum` classes below name the known values for producers; their members are `str`.
* A field that Binance only sometimes sends defaults to `None` and is left out of the JSON
  when `None` (`omit_defaults=True`). Fields Binance always sends have no default, so a
  zero such as `"si":0` is never dropped.

Structs are frozen, keyword-only and untracked by the GC (`gc=False`): they hold only
scalars, tuples and other frozen structs, so they cannot form reference cycles.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Final, TypeAlias

import msgspec

__all__ = [
    "EVENT_TYPES",
    "AccountConfigUpdate",
    "AccountInfoConfig",
    "AccountUpdate",
    "AccountUpdateData",
    "AccountUpdateReason",
    "AlgoOrder",
    "AlgoStatus",
    "AlgoUpdate",
    "Balance",
    "ConditionalOrderTriggerReject",
    "Event",
    "ExecutionType",
    "ExpiryReason",
    "GridUpdate",
    "GridUpdateData",
    "LeverageConfig",
    "ListenKeyExpired",
    "MarginCall",
    "MarginCallMarginType",
    "MarginCallPosition",
    "MarginType",
    "OrderReject",
    "OrderStatus",
    "OrderTradeUpdate",
    "OrderType",
    "OrderUpdate",
    "Position",
    "PositionSide",
    "PriceMatch",
    "SelfTradePreventionMode",
    "Side",
    "StrategyStatus",
    "StrategyUpdate",
    "StrategyUpdateData",
    "TimeInForce",
    "TradeLite",
    "WorkingType",
]


# --- Integers. Binance's are Java longs: clients parse them into int64, so a value outside
# that range breaks them. Times and ids are never negative (§5 "Common conventions": times
# `E`, `T`, `ut`, `tt`, `gtd`, ids `i`, `t`, `aid`, `si`; no user-data event uses -1 as a
# "none" id, `t` is 0 when not a trade). Decoding (and the server's admin intake) checks these.

INT64_MAX: Final = 2**63 - 1
Millis: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
"""A time in milliseconds since the epoch (0 where Binance means "none", e.g. `gtd`)."""
Id: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
"""An order, trade, algo or strategy id."""
Int64: TypeAlias = Annotated[int, msgspec.Meta(ge=-INT64_MAX - 1, le=INT64_MAX)]
"""Any other integer (leverage, opCode, the ignored `ss`)."""


# --- Known enum values (§5.2, §5.4, §5.7, §5.10). Fields stay `str`; these are for producers.


class Side(enum.StrEnum):
    """Order side `S` (§5.4)."""

    BUY = "BUY"
    SELL = "SELL"


class PositionSide(enum.StrEnum):
    """Position side `ps` (§5.2, §5.4)."""

    BOTH = "BOTH"
    LONG = "LONG"
    SHORT = "SHORT"


class OrderType(enum.StrEnum):
    """Order type `o` / original type `ot` (§5.4; algo order types §5.10)."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP = "STOP"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"
    LIQUIDATION = "LIQUIDATION"


class ExecutionType(enum.StrEnum):
    """Execution type `x` (§5.4)."""

    NEW = "NEW"
    CANCELED = "CANCELED"
    CALCULATED = "CALCULATED"
    EXPIRED = "EXPIRED"
    TRADE = "TRADE"
    AMENDMENT = "AMENDMENT"


class OrderStatus(enum.StrEnum):
    """Order status `X` (§5.4)."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"
    REJECTED = "REJECTED"


class TimeInForce(enum.StrEnum):
    """Time in force `f` (§5.4); `RPI` since 2025-11-18, `GTE_GTC` seen on close-position TP/SL."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"
    GTD = "GTD"
    RPI = "RPI"
    GTE_GTC = "GTE_GTC"


class WorkingType(enum.StrEnum):
    """Stop price working type `wt` (§5.4)."""

    MARK_PRICE = "MARK_PRICE"
    CONTRACT_PRICE = "CONTRACT_PRICE"


class SelfTradePreventionMode(enum.StrEnum):
    """STP mode `V` (§5.4; released 2023-09-05)."""

    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"


class PriceMatch(enum.StrEnum):
    """Price match mode `pm` (§5.4; released 2023-09-05)."""

    NONE = "NONE"
    OPPONENT = "OPPONENT"
    OPPONENT_5 = "OPPONENT_5"
    OPPONENT_10 = "OPPONENT_10"
    OPPONENT_20 = "OPPONENT_20"
    QUEUE = "QUEUE"
    QUEUE_5 = "QUEUE_5"
    QUEUE_10 = "QUEUE_10"
    QUEUE_20 = "QUEUE_20"


class ExpiryReason(enum.StrEnum):
    """Expiry reason `er`, a string on the wire (§5.4; added 2025-10-23)."""

    NONE = "0"
    SELF_TRADE_PREVENTION = "1"
    IOC_NOT_FILLED = "2"
    IOC_NOT_FILLED_STP = "3"
    REDUCE_ONLY_KNOCKED_OUT = "4"
    ACCOUNT_LIQUIDATED = "5"
    GTE_CONDITION_UNSATISFIED = "6"
    SYMBOL_DELISTED = "7"
    STOP_TRIGGERED_INITIAL_EXPIRED = "8"
    MARKET_NOT_FILLED = "9"


class MarginType(enum.StrEnum):
    """ACCOUNT_UPDATE `P[].mt`: lowercase on the wire (§5.2, real captures)."""

    CROSS = "cross"
    ISOLATED = "isolated"


class MarginCallMarginType(enum.StrEnum):
    """MARGIN_CALL `p[].mt`: uppercase on the wire (§5.3)."""

    CROSSED = "CROSSED"
    ISOLATED = "ISOLATED"


class AccountUpdateReason(enum.StrEnum):
    """ACCOUNT_UPDATE reason `a.m` (§5.2)."""

    DEPOSIT = "DEPOSIT"
    WITHDRAW = "WITHDRAW"
    ORDER = "ORDER"
    FUNDING_FEE = "FUNDING_FEE"
    WITHDRAW_REJECT = "WITHDRAW_REJECT"
    ADJUSTMENT = "ADJUSTMENT"
    INSURANCE_CLEAR = "INSURANCE_CLEAR"
    ADMIN_DEPOSIT = "ADMIN_DEPOSIT"
    ADMIN_WITHDRAW = "ADMIN_WITHDRAW"
    MARGIN_TRANSFER = "MARGIN_TRANSFER"
    MARGIN_TYPE_CHANGE = "MARGIN_TYPE_CHANGE"
    ASSET_TRANSFER = "ASSET_TRANSFER"
    OPTIONS_PREMIUM_FEE = "OPTIONS_PREMIUM_FEE"
    OPTIONS_SETTLE_PROFIT = "OPTIONS_SETTLE_PROFIT"
    AUTO_EXCHANGE = "AUTO_EXCHANGE"
    COIN_SWAP_DEPOSIT = "COIN_SWAP_DEPOSIT"
    COIN_SWAP_WITHDRAW = "COIN_SWAP_WITHDRAW"


class StrategyStatus(enum.StrEnum):
    """STRATEGY_UPDATE / GRID_UPDATE status `ss` (§5.7, §5.8)."""

    NEW = "NEW"
    WORKING = "WORKING"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class AlgoStatus(enum.StrEnum):
    """ALGO_UPDATE status `o.X` (§5.10)."""

    NEW = "NEW"
    CANCELED = "CANCELED"
    TRIGGERING = "TRIGGERING"
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


# --- Nested objects. Every class repeats `kw_only` (msgspec does not inherit it) and `frozen`
# (mypy's dataclass_transform requires it on subclasses of a frozen class).


class _Object(msgspec.Struct, frozen=True, kw_only=True, gc=False, omit_defaults=True):
    """Base of every wire object: immutable, keyword-only, absent optionals omitted."""


class Balance(_Object, frozen=True, kw_only=True):
    """ACCOUNT_UPDATE `a.B[]` entry (§5.2)."""

    asset: str = msgspec.field(name="a")
    wallet_balance: Decimal = msgspec.field(name="wb")
    cross_wallet_balance: Decimal = msgspec.field(name="cw")
    # Balance change except PnL and commission.
    balance_change: Decimal = msgspec.field(name="bc")


class Position(_Object, frozen=True, kw_only=True):
    """ACCOUNT_UPDATE `a.P[]` entry (§5.2), in the key order of the 2026-02-23 capture."""

    symbol: str = msgspec.field(name="s")
    position_amount: Decimal = msgspec.field(name="pa")  # signed
    entry_price: Decimal = msgspec.field(name="ep")
    accumulated_realized: Decimal = msgspec.field(name="cr")  # pre-fee
    unrealized_pnl: Decimal = msgspec.field(name="up")
    margin_type: str = msgspec.field(name="mt")  # lowercase "cross" / "isolated"
    # Documented "if isolated", but real captures always carry it ("0" for cross).
    isolated_wallet: Decimal = msgspec.field(name="iw")
    position_side: str = msgspec.field(name="ps")
    # Undocumented margin asset, present in real 2021-2026 captures; absent from the doc example.
    margin_asset: str | None = msgspec.field(default=None, name="ma")
    breakeven_price: Decimal = msgspec.field(name="bep")  # since 2023-09-05


class AccountUpdateData(_Object, frozen=True, kw_only=True):
    """ACCOUNT_UPDATE `a` (§5.2); `m` comes after `B` and `P` in real captures."""

    balances: tuple[Balance, ...] = msgspec.field(name="B")
    # Only the symbols whose positions changed; may be empty (deposit, cross funding fee).
    positions: tuple[Position, ...] = msgspec.field(name="P")
    reason: str = msgspec.field(name="m")
    # Symbol of a FUNDING_FEE update; added 2026-08-11 (SDK v17.0.1). Position unconfirmed.
    funding_symbol: str | None = msgspec.field(default=None, name="S")


class MarginCallPosition(_Object, frozen=True, kw_only=True):
    """MARGIN_CALL `p[]` entry (§5.3)."""

    symbol: str = msgspec.field(name="s")
    position_side: str = msgspec.field(name="ps")
    position_amount: Decimal = msgspec.field(name="pa")
    margin_type: str = msgspec.field(name="mt")  # uppercase "CROSSED" / "ISOLATED"
    isolated_wallet: Decimal = msgspec.field(name="iw")
    mark_price: Decimal = msgspec.field(name="mp")
    unrealized_pnl: Decimal = msgspec.field(name="up")
    maintenance_margin: Decimal = msgspec.field(name="mm")


class OrderUpdate(_Object, frozen=True, kw_only=True):
    """ORDER_TRADE_UPDATE `o` (§5.4, Event-Order-Update), in the 2026-02-23 capture's order."""

    symbol: str = msgspec.field(name="s")
    # Special prefixes: "autoclose-" (liquidation), "adl_autoclose", "settlement_autoclose-".
    client_order_id: str = msgspec.field(name="c")
    side: str = msgspec.field(name="S")
    order_type: str = msgspec.field(name="o")
    time_in_force: str = msgspec.field(name="f")
    original_quantity: Decimal = msgspec.field(name="q")
    original_price: Decimal = msgspec.field(name="p")
    average_price: Decimal = msgspec.field(name="ap")
    stop_price: Decimal = msgspec.field(name="sp")  # ignore for TRAILING_STOP_MARKET
    execution_type: str = msgspec.field(name="x")
    order_status: str = msgspec.field(name="X")
    order_id: Id = msgspec.field(name="i")
    # modifyId: only on AMENDMENT events whose request carried one; added 2026-07-28 (SDK v15.0.0).
    modify_id: str | None = msgspec.field(default=None, name="M")
    last_filled_quantity: Decimal = msgspec.field(name="l")
    filled_accumulated_quantity: Decimal = msgspec.field(name="z")
    last_filled_price: Decimal = msgspec.field(name="L")
    # Older docs: not pushed when there is no commission. Negative means a fee charged.
    commission: Decimal | None = msgspec.field(default=None, name="n")
    commission_asset: str | None = msgspec.field(default=None, name="N")
    trade_time: Millis = msgspec.field(name="T")
    trade_id: Id = msgspec.field(name="t")  # 0 when not a trade
    # The account's open-order notional per side, not this order's (3P-OBS 2026-07-31).
    bids_notional: Decimal = msgspec.field(name="b")
    ask_notional: Decimal = msgspec.field(name="a")
    is_maker: bool = msgspec.field(name="m")
    reduce_only: bool = msgspec.field(name="R")
    working_type: str = msgspec.field(name="wt")
    original_order_type: str = msgspec.field(name="ot")
    position_side: str = msgspec.field(name="ps")
    close_position: bool = msgspec.field(name="cp")
    # Only pushed with TRAILING_STOP_MARKET orders.
    activation_price: Decimal | None = msgspec.field(default=None, name="AP")
    callback_rate: Decimal | None = msgspec.field(default=None, name="cr")
    realized_profit: Decimal = msgspec.field(name="rp")
    price_protection: bool = msgspec.field(name="pP")
    # Documented as "ignore"; non-zero for strategy / OTOCO orders in practice (3P).
    strategy_id: Id = msgspec.field(name="si")
    # Documented as "ignore"; meaning unknown.
    ignored_ss: Int64 = msgspec.field(name="ss")
    self_trade_prevention_mode: str = msgspec.field(name="V")  # since 2023-09-05
    price_match: str = msgspec.field(name="pm")  # since 2023-09-05
    good_till_date: Millis = msgspec.field(name="gtd")  # 0 unless GTD; since 2023-09-05
    # A string such as "0"; added 2025-10-23 (change log 2025-10-20). See `ExpiryReason`.
    expiry_reason: str = msgspec.field(name="er")


class LeverageConfig(_Object, frozen=True, kw_only=True):
    """ACCOUNT_CONFIG_UPDATE `ac`: a symbol's leverage changed (§5.6)."""

    symbol: str = msgspec.field(name="s")
    leverage: Int64 = msgspec.field(name="l")


class AccountInfoConfig(_Object, frozen=True, kw_only=True):
    """ACCOUNT_CONFIG_UPDATE `ai`: Multi-Assets mode switched (§5.6)."""

    multi_assets_mode: bool = msgspec.field(name="j")


class StrategyUpdateData(_Object, frozen=True, kw_only=True):
    """STRATEGY_UPDATE `su` (§5.7)."""

    strategy_id: Id = msgspec.field(name="si")
    strategy_type: str = msgspec.field(name="st")  # e.g. "GRID"
    strategy_status: str = msgspec.field(name="ss")
    symbol: str = msgspec.field(name="s")
    update_time: Millis = msgspec.field(name="ut")
    # opCode 8001-8015, see §5.7.
    op_code: Int64 = msgspec.field(name="c")


class GridUpdateData(_Object, frozen=True, kw_only=True):
    """GRID_UPDATE `gu` (§5.8)."""

    strategy_id: Id = msgspec.field(name="si")
    strategy_type: str = msgspec.field(name="st")
    strategy_status: str = msgspec.field(name="ss")
    symbol: str = msgspec.field(name="s")
    realized_pnl: Decimal = msgspec.field(name="r")
    unmatched_average_price: Decimal = msgspec.field(name="up")
    unmatched_quantity: Decimal = msgspec.field(name="uq")
    unmatched_fee: Decimal = msgspec.field(name="uf")
    matched_pnl: Decimal = msgspec.field(name="mp")
    update_time: Millis = msgspec.field(name="ut")


class OrderReject(_Object, frozen=True, kw_only=True):
    """CONDITIONAL_ORDER_TRIGGER_REJECT `or` (§5.9)."""

    symbol: str = msgspec.field(name="s")
    order_id: Id = msgspec.field(name="i")
    reason: str = msgspec.field(name="r")


class AlgoOrder(_Object, frozen=True, kw_only=True):
    """ALGO_UPDATE `o` (§5.10, Event-Algo-Order-Update)."""

    client_algo_id: str = msgspec.field(name="caid")
    algo_id: Id = msgspec.field(name="aid")
    algo_type: str = msgspec.field(name="at")  # "CONDITIONAL"
    order_type: str = msgspec.field(name="o")
    symbol: str = msgspec.field(name="s")
    side: str = msgspec.field(name="S")
    position_side: str = msgspec.field(name="ps")
    time_in_force: str = msgspec.field(name="f")
    quantity: Decimal = msgspec.field(name="q")
    status: str = msgspec.field(name="X")
    # Id of the order placed in the matching engine after trigger; "" before. A string.
    order_id: str = msgspec.field(name="ai")
    # The next three are documented "only once triggered" (the doc example still has them).
    average_price: Decimal | None = msgspec.field(default=None, name="ap")
    executed_quantity: Decimal | None = msgspec.field(default=None, name="aq")
    actual_order_type: str | None = msgspec.field(default=None, name="act")
    trigger_price: Decimal = msgspec.field(name="tp")
    price: Decimal = msgspec.field(name="p")
    self_trade_prevention_mode: str = msgspec.field(name="V")
    working_type: str = msgspec.field(name="wt")
    price_match: str = msgspec.field(name="pm")
    close_position: bool = msgspec.field(name="cp")
    price_protection: bool = msgspec.field(name="pP")
    reduce_only: bool = msgspec.field(name="R")
    trigger_time: Millis = msgspec.field(name="tt")
    good_till_date: Millis = msgspec.field(name="gtd")
    # Failure reason; replaces CONDITIONAL_ORDER_TRIGGER_REJECT since 2025-12-15.
    reject_reason: str = msgspec.field(name="rm")
    # "Is activated", trailing orders only: placeholder 2026-08-07, active 2026-08-21.
    is_activated: bool | None = msgspec.field(default=None, name="ia")


# --- The ten events. `tag_field="e"` makes the union below dispatch on the event name.


class _Event(_Object, frozen=True, tag_field="e"):
    """Base of the ten events: the `e` key carries the class's tag and is written first."""


class ListenKeyExpired(_Event, tag="listenKeyExpired", frozen=True, kw_only=True):
    """The listenKey expired or was closed; the stream closes after it (§5.1).

    Binance's doc example sends `E` as a string, the SDK has typed it as an integer since
    2026-05-22: both decode, and `event_time` is always an `int` (encoded as a JSON int).
    """

    if TYPE_CHECKING:
        event_time: int = msgspec.field(name="E")
    else:
        event_time: int | str = msgspec.field(name="E")
    listen_key: str = msgspec.field(name="listenKey")

    def __post_init__(self) -> None:
        value: object = self.event_time
        if isinstance(value, str):
            if not (value.isascii() and value.isdigit()):
                raise ValueError(f"`E` must be an integer or a string of digits, got {value!r}")
            msgspec.structs.force_setattr(self, "event_time", int(value))


class AccountUpdate(_Event, tag="ACCOUNT_UPDATE", frozen=True, kw_only=True):
    """Balance and position update (§5.2, Event-Balance-and-Position-Update)."""

    transaction_time: Millis = msgspec.field(name="T")
    event_time: Millis = msgspec.field(name="E")
    update: AccountUpdateData = msgspec.field(name="a")


class MarginCall(_Event, tag="MARGIN_CALL", frozen=True, kw_only=True):
    """Margin call, informational only; no `T` (§5.3, Event-Margin-Call)."""

    event_time: Millis = msgspec.field(name="E")
    # Only for a cross-position margin call.
    cross_wallet_balance: Decimal | None = msgspec.field(default=None, name="cw")
    positions: tuple[MarginCallPosition, ...] = msgspec.field(name="p")


class OrderTradeUpdate(_Event, tag="ORDER_TRADE_UPDATE", frozen=True, kw_only=True):
    """New order, status change, fill or amendment (§5.4, Event-Order-Update)."""

    transaction_time: Millis = msgspec.field(name="T")
    event_time: Millis = msgspec.field(name="E")
    order: OrderUpdate = msgspec.field(name="o")


class TradeLite(_Event, tag="TRADE_LITE", frozen=True, kw_only=True):
    """Low-latency trade-only companion of ORDER_TRADE_UPDATE, since 2024-09-03 (§5.5).

    Real captures keep the doc's order here: `E` before `T`.
    """

    event_time: Millis = msgspec.field(name="E")
    transaction_time: Millis = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    original_quantity: Decimal = msgspec.field(name="q")
    original_price: Decimal = msgspec.field(name="p")
    is_maker: bool = msgspec.field(name="m")
    client_order_id: str = msgspec.field(name="c")
    side: str = msgspec.field(name="S")
    last_filled_price: Decimal = msgspec.field(name="L")
    last_filled_quantity: Decimal = msgspec.field(name="l")
    trade_id: Id = msgspec.field(name="t")
    order_id: Id = msgspec.field(name="i")


class AccountConfigUpdate(_Event, tag="ACCOUNT_CONFIG_UPDATE", frozen=True, kw_only=True):
    """Leverage (`ac`) or Multi-Assets mode (`ai`) changed (§5.6).

    Exactly one of `leverage_config` and `account_info_config` is set. Setting both raises
    `ValueError` (a `msgspec.ValidationError` when decoding); the server's admin path also
    rejects neither, while clients tolerate it in case Binance adds a third shape.
    """

    event_time: Millis = msgspec.field(name="E")
    transaction_time: Millis = msgspec.field(name="T")
    leverage_config: LeverageConfig | None = msgspec.field(default=None, name="ac")
    account_info_config: AccountInfoConfig | None = msgspec.field(default=None, name="ai")

    def __post_init__(self) -> None:
        if self.leverage_config is not None and self.account_info_config is not None:
            raise ValueError("`ac` and `ai` are mutually exclusive")


class StrategyUpdate(_Event, tag="STRATEGY_UPDATE", frozen=True, kw_only=True):
    """Strategy created, cancelled, expired ... (§5.7, Event-STRATEGY-UPDATE)."""

    transaction_time: Millis = msgspec.field(name="T")
    event_time: Millis = msgspec.field(name="E")
    strategy: StrategyUpdateData = msgspec.field(name="su")


class GridUpdate(_Event, tag="GRID_UPDATE", frozen=True, kw_only=True):
    """A grid sub-order filled or partially filled (§5.8, Event-GRID-UPDATE)."""

    transaction_time: Millis = msgspec.field(name="T")
    event_time: Millis = msgspec.field(name="E")
    grid: GridUpdateData = msgspec.field(name="gu")


class ConditionalOrderTriggerReject(
    _Event, tag="CONDITIONAL_ORDER_TRIGGER_REJECT", frozen=True, kw_only=True
):
    """A triggered TP/SL order was rejected (§5.9).

    Deprecated from 2025-12-15 (change log 2025-12-10): reasons now arrive in ALGO_UPDATE `rm`.
    `T` is the message send time.
    """

    event_time: Millis = msgspec.field(name="E")
    transaction_time: Millis = msgspec.field(name="T")
    reject: OrderReject = msgspec.field(name="or")


class AlgoUpdate(_Event, tag="ALGO_UPDATE", frozen=True, kw_only=True):
    """Algo Service (conditional) order update, since 2025-12-09 (§5.10).

    The EN doc swaps the labels of `T` and `E`; the SDK's `T` = transaction, `E` = event holds.
    """

    transaction_time: Millis = msgspec.field(name="T")
    event_time: Millis = msgspec.field(name="E")
    order: AlgoOrder = msgspec.field(name="o")


Event: TypeAlias = (
    ListenKeyExpired
    | AccountUpdate
    | MarginCall
    | OrderTradeUpdate
    | TradeLite
    | AccountConfigUpdate
    | StrategyUpdate
    | GridUpdate
    | ConditionalOrderTriggerReject
    | AlgoUpdate
)
"""Any user-data event; `msgspec.json.Decoder(Event)` dispatches on `"e"`."""

EVENT_TYPES: Final[dict[str, type[Event]]] = {
    "listenKeyExpired": ListenKeyExpired,
    "ACCOUNT_UPDATE": AccountUpdate,
    "MARGIN_CALL": MarginCall,
    "ORDER_TRADE_UPDATE": OrderTradeUpdate,
    "TRADE_LITE": TradeLite,
    "ACCOUNT_CONFIG_UPDATE": AccountConfigUpdate,
    "STRATEGY_UPDATE": StrategyUpdate,
    "GRID_UPDATE": GridUpdate,
    "CONDITIONAL_ORDER_TRIGGER_REJECT": ConditionalOrderTriggerReject,
    "ALGO_UPDATE": AlgoUpdate,
}
"""Event name (the `e` value) -> Struct class, for the ten events of §5."""
