"""`GET /fapi/v1/exchangeInfo`: its typed shape, the symbol-file format, and the body (spec §2.2).

Every struct mirrors a live 2026 response field by field and type by type (spec §2.2; the
capture checked into `tests/fixtures/exchange_info/`): decimals are strings (`"0.10"`, kept
exactly as written), `multiplierDecimal` is a string, counts and times are integers,
`timeInForce` lists GTC/IOC/FOK/GTX/GTD (RPI is a `permissionSets` entry, never a time in
force: nautilus decodes `timeInForce` into an enum without it and would refuse the whole
response), and `MAX_NUM_ALGO_ORDERS` is gone (removed 2025-12-29; still accepted in a file).

A symbol file is JSON, `{"assets": [...], "symbols": [...]}` or a bare list of symbols, each
symbol exactly as it appears in exchangeInfo. `decode_symbol_file` checks it; the caller reads
the bytes (`userstream.symbols` loads the packaged default or `serve --symbols FILE`).
"""

from __future__ import annotations

from typing import Annotated, Final, TypeVar

import msgspec

__all__ = [
    "Asset",
    "Filter",
    "LotSize",
    "MarketLotSize",
    "MaxNumAlgoOrders",
    "MaxNumOrders",
    "MinNotional",
    "PercentPrice",
    "PositionRiskControl",
    "PriceFilter",
    "RateLimit",
    "Symbol",
    "SymbolFile",
    "SymbolFileError",
    "SymbolTable",
    "decode_symbol_file",
    "exchange_info",
    "with_margin_assets",
]

DecimalString = Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]+(\.[0-9]+)?$")]
"""A decimal written the way Binance writes it: digits, an optional fraction, no exponent."""
Name = Annotated[str, msgspec.Meta(min_length=1)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class _Filter(msgspec.Struct, tag_field="filterType", forbid_unknown_fields=True):
    pass


class PriceFilter(_Filter, tag="PRICE_FILTER"):
    min_price: DecimalString = msgspec.field(name="minPrice")
    max_price: DecimalString = msgspec.field(name="maxPrice")
    tick_size: DecimalString = msgspec.field(name="tickSize")


class LotSize(_Filter, tag="LOT_SIZE"):
    min_qty: DecimalString = msgspec.field(name="minQty")
    max_qty: DecimalString = msgspec.field(name="maxQty")
    step_size: DecimalString = msgspec.field(name="stepSize")


class MarketLotSize(_Filter, tag="MARKET_LOT_SIZE"):
    min_qty: DecimalString = msgspec.field(name="minQty")
    max_qty: DecimalString = msgspec.field(name="maxQty")
    step_size: DecimalString = msgspec.field(name="stepSize")


class MaxNumOrders(_Filter, tag="MAX_NUM_ORDERS"):
    limit: Count


class MaxNumAlgoOrders(_Filter, tag="MAX_NUM_ALGO_ORDERS"):
    limit: Count


class MinNotional(_Filter, tag="MIN_NOTIONAL"):
    notional: DecimalString


class PercentPrice(_Filter, tag="PERCENT_PRICE"):
    multiplier_up: DecimalString = msgspec.field(name="multiplierUp")
    multiplier_down: DecimalString = msgspec.field(name="multiplierDown")
    # A string on the wire (SDK model `StrictStr`); an integer breaks strict decoders.
    multiplier_decimal: Annotated[str, msgspec.Meta(pattern=r"^[0-9]+$")] = msgspec.field(
        name="multiplierDecimal"
    )


class PositionRiskControl(_Filter, tag="POSITION_RISK_CONTROL"):
    position_control_side: Name = msgspec.field(name="positionControlSide")


_F = TypeVar("_F", bound=_Filter)

Filter = (
    PriceFilter
    | LotSize
    | MarketLotSize
    | MaxNumOrders
    | MaxNumAlgoOrders
    | MinNotional
    | PercentPrice
    | PositionRiskControl
)


class Symbol(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One `symbols[]` entry, fields in the live response's order."""

    symbol: Name
    pair: Name
    contract_type: Name = msgspec.field(name="contractType")
    delivery_date: Count = msgspec.field(name="deliveryDate")
    onboard_date: Count = msgspec.field(name="onboardDate")
    status: Name
    maint_margin_percent: DecimalString = msgspec.field(name="maintMarginPercent")
    required_margin_percent: DecimalString = msgspec.field(name="requiredMarginPercent")
    base_asset: Name = msgspec.field(name="baseAsset")
    quote_asset: Name = msgspec.field(name="quoteAsset")
    margin_asset: Name = msgspec.field(name="marginAsset")
    price_precision: Count = msgspec.field(name="pricePrecision")
    quantity_precision: Count = msgspec.field(name="quantityPrecision")
    base_asset_precision: Count = msgspec.field(name="baseAssetPrecision")
    quote_precision: Count = msgspec.field(name="quotePrecision")
    underlying_type: Name = msgspec.field(name="underlyingType")
    underlying_sub_type: list[str] = msgspec.field(name="underlyingSubType")
    trigger_protect: DecimalString = msgspec.field(name="triggerProtect")
    liquidation_fee: DecimalString = msgspec.field(name="liquidationFee")
    market_take_bound: DecimalString = msgspec.field(name="marketTakeBound")
    max_move_order_limit: Count = msgspec.field(name="maxMoveOrderLimit")
    filters: list[Filter]
    order_types: list[Name] = msgspec.field(name="orderTypes")
    time_in_force: list[Name] = msgspec.field(name="timeInForce")
    permission_sets: list[Name] = msgspec.field(name="permissionSets")
    # Absent on 2026 rows; older captures carry it, and it is echoed when a file has it.
    settle_plan: Count | None = msgspec.field(default=None, name="settlePlan")

    def filter(self, kind: type[_F]) -> _F | None:
        """The symbol's filter of type `kind`, or None."""
        return next((f for f in self.filters if isinstance(f, kind)), None)


class Asset(msgspec.Struct, forbid_unknown_fields=True):
    """One `assets[]` entry; `autoAssetExchange` is a string, never null (spec §2.2)."""

    asset: Name
    margin_available: bool = msgspec.field(name="marginAvailable")
    auto_asset_exchange: DecimalString = msgspec.field(name="autoAssetExchange")


class RateLimit(msgspec.Struct):
    rate_limit_type: str = msgspec.field(name="rateLimitType")
    interval: str
    interval_num: int = msgspec.field(name="intervalNum")
    limit: int


class SymbolFile(msgspec.Struct, forbid_unknown_fields=True):
    """A decoded symbol file; `assets` is None when the file has none."""

    symbols: list[Symbol]
    assets: list[Asset] | None = None


class SymbolTable(msgspec.Struct, frozen=True):
    """What the server lists in exchangeInfo."""

    symbols: tuple[Symbol, ...]
    assets: tuple[Asset, ...]


class _ExchangeInfo(msgspec.Struct):
    timezone: str
    server_time: int = msgspec.field(name="serverTime")
    futures_type: str = msgspec.field(name="futuresType")
    rate_limits: list[RateLimit] = msgspec.field(name="rateLimits")
    exchange_filters: list[object] = msgspec.field(name="exchangeFilters")
    assets: list[Asset]
    symbols: tuple[Symbol, ...]


class SymbolFileError(ValueError):
    """A symbol file is not valid; the message names the file and the offending field."""


_FILE_DECODER: Final = msgspec.json.Decoder(SymbolFile | list[Symbol])
_ENCODER: Final = msgspec.json.Encoder()
_REQUIRED_FILTERS: Final = (PriceFilter, LotSize)  # what ccxt's parse_market reads (§2.2)

# spec §2.2: REQUEST_WEIGHT follows the configured limit; the ORDERS limits are per account.
ORDERS_PER_MINUTE: Final = 1200
ORDERS_PER_10S: Final = 300
# Binance's default entry for a margin asset (USDT's, spec §2.2).
_DEFAULT_AUTO_ASSET_EXCHANGE: Final = "-10000"


def decode_symbol_file(raw: bytes, source: str) -> SymbolFile:
    """Decode and check a symbol file's bytes.

    Raises:
        SymbolFileError: not JSON, a field of the wrong type or missing, no symbols, a
            symbol without PRICE_FILTER or LOT_SIZE, or a symbol listed twice.
    """
    try:
        doc = _FILE_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise SymbolFileError(f"{source}: {exc}") from exc
    except (msgspec.DecodeError, RecursionError) as exc:
        raise SymbolFileError(f"{source}: not valid JSON: {exc}") from exc
    file = SymbolFile(doc) if isinstance(doc, list) else doc
    symbols = file.symbols
    if not symbols:
        raise SymbolFileError(f"{source}: no symbols")
    for symbol in symbols:
        kinds = {type(f) for f in symbol.filters}
        missing = [k.__struct_config__.tag for k in _REQUIRED_FILTERS if k not in kinds]
        if missing:
            raise SymbolFileError(
                f"{source}: {symbol.symbol}.filters: missing {', '.join(map(str, missing))}"
            )
    names = [s.symbol for s in symbols]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SymbolFileError(f"{source}: duplicate symbols: {', '.join(duplicates)}")
    return file


def with_margin_assets(assets: list[Asset], symbols: list[Symbol]) -> SymbolTable:
    """The table of `symbols` listing `assets` plus a default entry for each `marginAsset`
    they lack (what `serve --symbols FILE` lists when FILE has no assets)."""
    known = {a.asset for a in assets}
    extra = [
        Asset(margin, True, _DEFAULT_AUTO_ASSET_EXCHANGE)
        for margin in dict.fromkeys(s.margin_asset for s in symbols)
        if margin not in known
    ]
    return SymbolTable(tuple(symbols), (*assets, *extra))


def exchange_info(
    table: SymbolTable,
    server_time_ms: int,
    limits_per_minute: int,
    orders: tuple[int, int] = (ORDERS_PER_MINUTE, ORDERS_PER_10S),
) -> bytes:
    """Encode the `GET /fapi/v1/exchangeInfo` body.

    Args:
        table: The symbols and assets to list.
        server_time_ms: The `serverTime` field (the caller reads its clock).
        limits_per_minute: The REQUEST_WEIGHT limit the server enforces.
    """
    body = _ExchangeInfo(
        timezone="UTC",
        server_time=server_time_ms,
        futures_type="U_MARGINED",
        rate_limits=[
            RateLimit("REQUEST_WEIGHT", "MINUTE", 1, limits_per_minute),
            RateLimit("ORDERS", "MINUTE", 1, orders[0]),
            RateLimit("ORDERS", "SECOND", 10, orders[1]),
        ],
        exchange_filters=[],
        assets=list(table.assets),
        symbols=table.symbols,
    )
    return _ENCODER.encode(body)
