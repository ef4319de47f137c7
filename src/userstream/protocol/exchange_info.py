"""`GET /fapi/v1/exchangeInfo` body and the symbol table behind it (spec §6.6).

The symbol file is JSON, either `{"assets": [...], "symbols": [...]}` or a bare list of symbols,
each symbol object exactly as it appears in exchangeInfo (field names, string decimals, filters).
The packaged default (`userstream/data/symbols.json`) holds six USDⓈ-M perpetuals shaped like
the live venue's entries. Validation checks what ccxt's `parse_market` reads (spec §6.6 "What
ccxt 4.5.90 needs"), so a file that loads here also loads in `ccxt.binanceusdm().load_markets()`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Final

import msgspec

from userstream.exceptions import ConfigurationError

__all__ = ["exchange_info", "load_assets", "load_symbols"]

# spec §6.3/§6.6; the ORDERS limits are per account and fixed here.
_ORDERS_LIMITS: Final = (
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
)
_REQUIRED_STR: Final = (
    "symbol",
    "pair",
    "contractType",
    "status",
    "baseAsset",
    "quoteAsset",
    "marginAsset",
)
_REQUIRED_INT: Final = (
    "deliveryDate",
    "onboardDate",
    "pricePrecision",
    "quantityPrecision",
    "baseAssetPrecision",
    "quotePrecision",
)
# filterType -> fields that must be decimal strings (spec §6.6 "All values strings except
# limit/multiplierDecimal").
_FILTER_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "PRICE_FILTER": ("minPrice", "maxPrice", "tickSize"),
    "LOT_SIZE": ("minQty", "maxQty", "stepSize"),
    "MARKET_LOT_SIZE": ("minQty", "maxQty", "stepSize"),
    "MIN_NOTIONAL": ("notional",),
    "PERCENT_PRICE": ("multiplierUp", "multiplierDown"),
}
_REQUIRED_FILTERS: Final = ("PRICE_FILTER", "LOT_SIZE")

_encoder: Final = msgspec.json.Encoder()


def _read(path: str | None) -> tuple[str, object]:
    if path is None:
        source = "userstream/data/symbols.json"
        raw = resources.files("userstream").joinpath("data/symbols.json").read_bytes()
    else:
        source = path
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise ConfigurationError(f"{source}: cannot read symbols file: {exc}") from exc
    try:
        return source, msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ConfigurationError(f"{source}: not valid JSON: {exc}") from exc


def _is_decimal_string(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        float(value)
    except ValueError:
        return False
    return value.strip() == value


def _check_symbol(source: str, i: int, sym: object) -> dict[str, object]:
    where = f"{source}: symbols[{i}]"
    if not isinstance(sym, dict):
        raise ConfigurationError(f"{where}: expected an object, got {type(sym).__name__}")
    for key in _REQUIRED_STR:
        if not isinstance(sym.get(key), str) or not sym[key]:
            raise ConfigurationError(f"{where}.{key}: expected a non-empty string")
    where = f"{source}: {sym['symbol']}"
    for key in _REQUIRED_INT:
        value = sym.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigurationError(f"{where}.{key}: expected a non-negative integer")
    filters = sym.get("filters")
    if not isinstance(filters, list):
        raise ConfigurationError(f"{where}.filters: expected a list")
    seen: set[str] = set()
    for j, flt in enumerate(filters):
        if not isinstance(flt, dict) or not isinstance(flt.get("filterType"), str):
            raise ConfigurationError(f"{where}.filters[{j}]: expected an object with filterType")
        ftype = flt["filterType"]
        seen.add(ftype)
        for field in _FILTER_FIELDS.get(ftype, ()):
            if not _is_decimal_string(flt.get(field)):
                raise ConfigurationError(
                    f"{where}.filters[{j}] {ftype}.{field}: expected a decimal string"
                )
    missing = [f for f in _REQUIRED_FILTERS if f not in seen]
    if missing:
        raise ConfigurationError(f"{where}.filters: missing {', '.join(missing)}")
    return sym


def load_symbols(path: str | None = None) -> list[dict[str, object]]:
    """Load the exchangeInfo symbol list.

    Args:
        path: A JSON file to use instead of the packaged default.

    Raises:
        ConfigurationError: The file cannot be read, is not JSON, or a symbol lacks a field
            ccxt needs; the message names the file and the offending symbol/field.
    """
    source, doc = _read(path)
    symbols = doc.get("symbols") if isinstance(doc, dict) else doc
    if not isinstance(symbols, list) or not symbols:
        raise ConfigurationError(
            f"{source}: expected a non-empty list of symbols or an object with 'symbols'"
        )
    checked = [_check_symbol(source, i, s) for i, s in enumerate(symbols)]
    names = [s["symbol"] for s in checked]
    duplicates = sorted({str(n) for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(f"{source}: duplicate symbols: {', '.join(duplicates)}")
    return checked


def load_assets(path: str | None = None) -> list[dict[str, object]] | None:
    """Load the `assets` list from a symbols file, or None if the file has none."""
    source, doc = _read(path)
    if not isinstance(doc, dict) or "assets" not in doc:
        return None
    assets = doc["assets"]
    if not isinstance(assets, list) or not all(
        isinstance(a, dict) and isinstance(a.get("asset"), str) for a in assets
    ):
        raise ConfigurationError(f"{source}: assets: expected a list of objects with 'asset'")
    return assets


@cache
def _packaged_assets() -> tuple[dict[str, object], ...]:
    return tuple(load_assets() or ())


def _default_assets(symbols: list[dict[str, object]]) -> list[dict[str, object]]:
    assets = [dict(a) for a in _packaged_assets()]
    known = {a["asset"] for a in assets}
    for margin_asset in dict.fromkeys(str(s["marginAsset"]) for s in symbols):
        if margin_asset not in known:
            assets.append(
                {"asset": margin_asset, "marginAvailable": True, "autoAssetExchange": "-10000"}
            )
    return assets


def exchange_info(
    symbols: list[dict[str, object]],
    server_time_ms: int,
    limits_per_minute: int,
    *,
    assets: list[dict[str, object]] | None = None,
) -> bytes:
    """Encode the `GET /fapi/v1/exchangeInfo` body.

    Args:
        symbols: From `load_symbols`.
        server_time_ms: The `serverTime` field (the caller reads its clock).
        limits_per_minute: The REQUEST_WEIGHT limit the server enforces.
        assets: From `load_assets`; when None, the packaged assets plus one entry for each
            `marginAsset` they lack.
    """
    body = {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": limits_per_minute,
            },
            *_ORDERS_LIMITS,
        ],
        "exchangeFilters": [],
        "assets": assets if assets is not None else _default_assets(symbols),
        "symbols": symbols,
    }
    return _encoder.encode(body)
