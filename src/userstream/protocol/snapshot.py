"""The REST answers an account mirror starts from, decoded leniently (client side).

Spec: `shared/spec/binance-usdm-trading.md` §2.4 (open algo orders), §2.5 (`openOrders`),
§2.6 (`/fapi/v3/account`, `/fapi/v3/positionRisk`, `symbolConfig`, `accountConfig`).

Only the fields a mirror keeps are modelled; every other field is ignored, and a field Binance
adds tomorrow never breaks the decode (DESIGN.md rule 2: the client tolerates unknown fields).
Amounts are `Decimal` (JSON strings on the wire), times and ids `int`. Fields the spec marks
as missing from some answers default to "absent" rather than failing the whole snapshot.

What each endpoint brings (the v3 answers dropped leverage and margin type, §2.6):

| state | endpoint | weight |
|---|---|---|
| balances (`walletBalance`, `crossWalletBalance`) | `GET /fapi/v3/account` `assets[]` | 5 |
| positions (amount, entry, breakeven, isolated wallet, mark) | `GET /fapi/v3/positionRisk` | 5 |
| open orders | `GET /fapi/v1/openOrders` (no symbol) | 40 |
| open algo (conditional) orders | `GET /fapi/v1/openAlgoOrders` (no symbol) | 40 |
| leverage and margin type per symbol | `GET /fapi/v1/symbolConfig` | 5 |
| multi-assets and position mode | `GET /fapi/v1/accountConfig` | 5 |
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import msgspec

__all__ = [
    "SNAPSHOT_WEIGHTS",
    "AccountConfig",
    "AccountInfo",
    "AssetRow",
    "OpenAlgoOrder",
    "OpenOrder",
    "PositionRisk",
    "SymbolConfig",
    "decode_account",
    "decode_account_config",
    "decode_open_algo_orders",
    "decode_open_orders",
    "decode_position_risk",
    "decode_symbol_config",
]

ZERO: Final = Decimal(0)

SNAPSHOT_WEIGHTS: Final[dict[str, int]] = {
    "/fapi/v3/account": 5,
    "/fapi/v3/positionRisk": 5,
    "/fapi/v1/openOrders": 40,  # without `symbol` (§2.5)
    "/fapi/v1/openAlgoOrders": 40,  # Binance's "Current All Algo Open Orders" page, no symbol
    "/fapi/v1/symbolConfig": 5,
    "/fapi/v1/accountConfig": 5,
}
"""Request weight of each snapshot endpoint, counted against the IP's 2400/minute (§7)."""


class _Row(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A REST row: unknown keys are ignored (msgspec's default), absent optionals default."""


class AssetRow(_Row, frozen=True, kw_only=True):
    """`/fapi/v3/account` `assets[]` (§2.6)."""

    asset: str
    wallet_balance: Decimal = msgspec.field(name="walletBalance")
    cross_wallet_balance: Decimal = msgspec.field(default=ZERO, name="crossWalletBalance")
    unrealized_profit: Decimal = msgspec.field(default=ZERO, name="unrealizedProfit")
    available_balance: Decimal = msgspec.field(default=ZERO, name="availableBalance")
    update_time: int = msgspec.field(default=0, name="updateTime")


class AccountInfo(_Row, frozen=True, kw_only=True):
    """`GET /fapi/v3/account` (§2.6): the balances are what the mirror keeps."""

    assets: tuple[AssetRow, ...] = ()
    multi_assets_margin: bool | None = msgspec.field(default=None, name="multiAssetsMargin")


class PositionRisk(_Row, frozen=True, kw_only=True):
    """`GET /fapi/v3/positionRisk` row (§2.6): only symbols with a position or open orders."""

    symbol: str
    position_side: str = msgspec.field(default="BOTH", name="positionSide")
    position_amount: Decimal = msgspec.field(name="positionAmt")
    entry_price: Decimal = msgspec.field(default=ZERO, name="entryPrice")
    breakeven_price: Decimal = msgspec.field(default=ZERO, name="breakEvenPrice")
    mark_price: Decimal = msgspec.field(default=ZERO, name="markPrice")
    unrealized_profit: Decimal = msgspec.field(default=ZERO, name="unRealizedProfit")
    liquidation_price: Decimal = msgspec.field(default=ZERO, name="liquidationPrice")
    isolated_wallet: Decimal = msgspec.field(default=ZERO, name="isolatedWallet")
    margin_asset: str | None = msgspec.field(default=None, name="marginAsset")
    # v2 rows carry these two; v3 rows do not (they come from symbolConfig then).
    margin_type: str | None = msgspec.field(default=None, name="marginType")
    leverage: int | str | None = None
    update_time: int = msgspec.field(default=0, name="updateTime")


class OpenOrder(_Row, frozen=True, kw_only=True):
    """`GET /fapi/v1/openOrders` row: the order object of §2.3/§2.5."""

    symbol: str
    order_id: int = msgspec.field(name="orderId")
    client_order_id: str = msgspec.field(name="clientOrderId")
    side: str
    position_side: str = msgspec.field(default="BOTH", name="positionSide")
    order_type: str = msgspec.field(name="type")
    original_type: str | None = msgspec.field(default=None, name="origType")
    time_in_force: str = msgspec.field(default="GTC", name="timeInForce")
    status: str
    price: Decimal = ZERO
    average_price: Decimal = msgspec.field(default=ZERO, name="avgPrice")
    stop_price: Decimal = msgspec.field(default=ZERO, name="stopPrice")
    original_quantity: Decimal = msgspec.field(name="origQty")
    executed_quantity: Decimal = msgspec.field(default=ZERO, name="executedQty")
    reduce_only: bool = msgspec.field(default=False, name="reduceOnly")
    close_position: bool = msgspec.field(default=False, name="closePosition")
    good_till_date: int = msgspec.field(default=0, name="goodTillDate")
    price_match: str | None = msgspec.field(default=None, name="priceMatch")
    self_trade_prevention_mode: str | None = msgspec.field(
        default=None, name="selfTradePreventionMode"
    )
    time: int = 0
    update_time: int = msgspec.field(default=0, name="updateTime")


class OpenAlgoOrder(_Row, frozen=True, kw_only=True):
    """`GET /fapi/v1/openAlgoOrders` row: the algo object of §2.4."""

    algo_id: int = msgspec.field(name="algoId")
    client_algo_id: str = msgspec.field(name="clientAlgoId")
    symbol: str
    side: str
    position_side: str = msgspec.field(default="BOTH", name="positionSide")
    order_type: str = msgspec.field(name="orderType")
    status: str = msgspec.field(default="NEW", name="algoStatus")
    quantity: Decimal = ZERO
    trigger_price: Decimal = msgspec.field(default=ZERO, name="triggerPrice")
    price: Decimal = ZERO
    reduce_only: bool = msgspec.field(default=False, name="reduceOnly")
    close_position: bool = msgspec.field(default=False, name="closePosition")
    update_time: int = msgspec.field(default=0, name="updateTime")


class SymbolConfig(_Row, frozen=True, kw_only=True):
    """`GET /fapi/v1/symbolConfig` row (§2.6): `marginType` is CROSSED/ISOLATED here."""

    symbol: str
    margin_type: str = msgspec.field(default="CROSSED", name="marginType")
    leverage: int = 0


class AccountConfig(_Row, frozen=True, kw_only=True):
    """`GET /fapi/v1/accountConfig` (§2.6)."""

    multi_assets_margin: bool = msgspec.field(default=False, name="multiAssetsMargin")
    dual_side_position: bool = msgspec.field(default=False, name="dualSidePosition")


_account = msgspec.json.Decoder(AccountInfo)
_positions = msgspec.json.Decoder(tuple[PositionRisk, ...])
_orders = msgspec.json.Decoder(tuple[OpenOrder, ...])
_algo_orders = msgspec.json.Decoder(tuple[OpenAlgoOrder, ...])
_symbol_config = msgspec.json.Decoder(tuple[SymbolConfig, ...])
_account_config = msgspec.json.Decoder(AccountConfig)


def decode_account(body: bytes) -> AccountInfo:
    """Decode `/fapi/v3/account`; raises `msgspec.ValidationError` on a wrong type."""
    return _account.decode(body)


def decode_position_risk(body: bytes) -> tuple[PositionRisk, ...]:
    """Decode `/fapi/v3/positionRisk` (a JSON array)."""
    return _positions.decode(body)


def decode_open_orders(body: bytes) -> tuple[OpenOrder, ...]:
    """Decode `/fapi/v1/openOrders` (a JSON array)."""
    return _orders.decode(body)


def decode_open_algo_orders(body: bytes) -> tuple[OpenAlgoOrder, ...]:
    """Decode `/fapi/v1/openAlgoOrders` (a JSON array)."""
    return _algo_orders.decode(body)


def decode_symbol_config(body: bytes) -> tuple[SymbolConfig, ...]:
    """Decode `/fapi/v1/symbolConfig` (a JSON array)."""
    return _symbol_config.decode(body)


def decode_account_config(body: bytes) -> AccountConfig:
    """Decode `/fapi/v1/accountConfig`."""
    return _account_config.decode(body)
