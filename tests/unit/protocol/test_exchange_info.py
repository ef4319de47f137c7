"""exchangeInfo: the same keys and JSON types as a live 2026 response, and ccxt 4.5.90 parses it.

The reference is `tests/fixtures/exchange_info/fapi_v1_exchangeInfo.json` (sources in its
README): a strict client (nautilus, the SDK's `StrictStr` models) refuses the whole response
when one field has another JSON type, so the comparison is by type at every level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ccxt
import msgspec
import pytest

from userstream.protocol.exchange_info import (
    Asset,
    SymbolFileError,
    decode_symbol_file,
    exchange_info,
    with_margin_assets,
)
from userstream.symbols import load_symbol_table

CAPTURE_PATH = (
    Path(__file__).parents[2] / "fixtures" / "exchange_info" / "fapi_v1_exchangeInfo.json"
)
CAPTURE: dict[str, Any] = json.loads(CAPTURE_PATH.read_text())
EXPECTED = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT"}


def _body(limit: int = 2400) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(exchange_info(load_symbol_table(), 1_767_225_600_123, limit))
    return out


def json_type(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}.get(
        type(value), type(value).__name__
    )


def shape(value: object) -> object:
    """Keys and JSON types, recursively; an array's shape is the set of its items' shapes."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return ("array", sorted({json.dumps(shape(item), sort_keys=True) for item in value}))
    return json_type(value)


def filters_by_type(symbols: list[dict[str, Any]]) -> dict[str, object]:
    """Each filterType's shape, checked to be the same in every symbol."""
    seen: dict[str, object] = {}
    for symbol in symbols:
        for flt in symbol["filters"]:
            assert seen.setdefault(flt["filterType"], shape(flt)) == shape(flt), flt
    return seen


def row_shape(symbol: dict[str, Any]) -> object:
    return {key: shape(value) for key, value in symbol.items() if key != "filters"}


def test_top_level_keys_types_and_order_match_the_capture() -> None:
    body = _body()
    assert list(body) == list(CAPTURE)
    assert {k: json_type(v) for k, v in body.items()} == {
        k: json_type(v) for k, v in CAPTURE.items()
    }
    assert body["rateLimits"] == CAPTURE["rateLimits"]
    assert body["exchangeFilters"] == CAPTURE["exchangeFilters"] == []
    assert (body["timezone"], body["futuresType"]) == ("UTC", "U_MARGINED")


def test_assets_match_the_capture() -> None:
    (captured,) = {json.dumps(shape(a), sort_keys=True) for a in CAPTURE["assets"]}
    for asset in _body()["assets"]:
        assert json.dumps(shape(asset), sort_keys=True) == captured


def test_symbols_match_the_capture() -> None:
    captured_rows = {json.dumps(row_shape(s), sort_keys=True) for s in CAPTURE["symbols"]}
    assert len(captured_rows) == 1  # both captured rows have one shape
    symbols = _body()["symbols"]
    assert {s["symbol"] for s in symbols} == EXPECTED
    for symbol in symbols:
        assert json.dumps(row_shape(symbol), sort_keys=True) in captured_rows, symbol["symbol"]
        assert list(symbol) == list(CAPTURE["symbols"][0]), "key order as captured"
        assert "RPI" not in symbol["timeInForce"]


def test_filters_match_the_capture() -> None:
    captured = filters_by_type(CAPTURE["symbols"])
    ours = filters_by_type(_body()["symbols"])
    assert ours == captured
    for symbol in _body()["symbols"]:
        assert {f["filterType"] for f in symbol["filters"]} == set(captured)
    assert captured["PERCENT_PRICE"]["multiplierDecimal"] == "string"  # type: ignore[index]


def test_captured_symbols_round_trip_exactly() -> None:
    raw = json.dumps({"assets": CAPTURE["assets"], "symbols": CAPTURE["symbols"]}).encode()
    file = decode_symbol_file(raw, "capture")
    assert file.assets is not None
    table = with_margin_assets(file.assets, file.symbols)
    body = json.loads(exchange_info(table, CAPTURE["serverTime"], 2400))
    assert body == CAPTURE


def test_margin_assets_missing_from_the_file_get_a_default_entry() -> None:
    btc = next(s for s in CAPTURE["symbols"] if s["symbol"] == "BTCUSDT")
    fdusd = dict(btc, symbol="BTCFDUSD", quoteAsset="FDUSD", marginAsset="FDUSD")
    file = decode_symbol_file(json.dumps([fdusd]).encode(), "f")
    assert file.assets is None
    table = with_margin_assets([Asset("USDT", True, "-10000")], file.symbols)
    assert [msgspec.to_builtins(a) for a in table.assets] == [
        {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
        {"asset": "FDUSD", "marginAvailable": True, "autoAssetExchange": "-10000"},
    ]


def test_ccxt_parses_every_market_as_an_active_linear_swap() -> None:
    ex = ccxt.binanceusdm()
    # fetch_markets for binanceusdm calls GET /fapi/v1/exchangeInfo and hands `symbols` to
    # parse_markets -> parse_market (ccxt/binance.py); we feed it our body offline.
    markets = ex.parse_markets(_body()["symbols"])
    by_id = {m["id"]: m for m in markets}
    assert set(by_id) == EXPECTED
    for m in markets:
        assert m["type"] == "swap"
        assert (m["swap"], m["contract"], m["linear"]) == (True, True, True)
        assert (m["inverse"], m["spot"], m["future"]) == (False, False, False)
        assert m["active"] is True
        assert m["settle"] == m["quote"] == "USDT"
        assert m["symbol"] == f"{m['base']}/USDT:USDT"
        assert m["contractSize"] == 1.0
    btc = by_id["BTCUSDT"]
    assert btc["precision"]["price"] == 0.1
    assert btc["precision"]["amount"] == 0.001
    assert btc["limits"]["amount"]["min"] == 0.001
    assert btc["limits"]["amount"]["max"] == 1000.0
    assert btc["limits"]["market"]["max"] == 120.0
    assert btc["limits"]["price"]["min"] == 556.8
    assert btc["limits"]["cost"]["min"] == 50.0
    doge = by_id["DOGEUSDT"]
    assert doge["precision"]["price"] == 0.00001
    assert doge["precision"]["amount"] == 1.0
    assert by_id["SOLUSDT"]["precision"]["amount"] == 1.0
    assert by_id["XRPUSDT"]["precision"]["amount"] == 0.1


def test_ccxt_set_markets_round_trip() -> None:
    ex = ccxt.binanceusdm()
    ex.set_markets(ex.parse_markets(_body()["symbols"]))
    assert ex.market("BTC/USDT:USDT")["id"] == "BTCUSDT"
    assert ex.amount_to_precision("ETH/USDT:USDT", 0.12345) == "0.123"
    assert ex.price_to_precision("BTC/USDT:USDT", 65000.1234) == "65000.1"


_DELETE = object()


def _broken(field: str, value: object) -> list[dict[str, object]]:
    btc = dict(CAPTURE["symbols"][0])
    if value is _DELETE:
        del btc[field]
    else:
        btc[field] = value
    return [btc]


def _percent_price(decimal: object) -> list[dict[str, object]]:
    flt = {"filterType": "PERCENT_PRICE", "multiplierUp": "1.05", "multiplierDown": "0.95"}
    filters = [*CAPTURE["symbols"][0]["filters"][:2], {**flt, "multiplierDecimal": decimal}]
    return _broken("filters", filters)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, r"missing required field `symbols`"),
        ([], "no symbols"),
        ({"symbols": "x"}, r"Expected `array`, got `str` - at `\$.symbols`"),
        ([1], r"Expected `object`, got `int` - at `\$\[0\]`"),
        (_broken("baseAsset", _DELETE), "missing required field `baseAsset`"),
        (_broken("baseAsset", ""), r"length >= 1 - at `\$\[0\].baseAsset`"),
        (
            _broken("pricePrecision", "2"),
            r"Expected `int`, got `str` - at `\$\[0\].pricePrecision`",
        ),
        (_broken("timeInForce", "GTC"), r"at `\$\[0\].timeInForce`"),
        (_broken("settle", 0), "unknown field `settle`"),
        (_broken("filters", {}), r"Expected `array`, got `object` - at `\$\[0\].filters`"),
        (
            _percent_price(4),
            r"Expected `str`, got `int` - at `\$\[0\].filters\[2\].multiplierDecimal`",
        ),
        (
            _broken(
                "filters",
                [{"filterType": "LOT_SIZE", "minQty": "1", "maxQty": "2", "stepSize": "1"}],
            ),
            "BTCUSDT.filters: missing PRICE_FILTER",
        ),
        (
            _broken(
                "filters",
                [{"filterType": "PRICE_FILTER", "minPrice": 1, "maxPrice": "2", "tickSize": "1"}],
            ),
            r"Expected `str`, got `int` - at `\$\[0\].filters\[0\].minPrice`",
        ),
        (
            _broken(
                "filters",
                [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": "1e-8",
                        "maxPrice": "2",
                        "tickSize": "1",
                    }
                ],
            ),
            r"minPrice",
        ),
        (_broken("filters", [{"nope": 1}]), r"missing required field `filterType`"),
        (_broken("filters", [{"filterType": "NEW"}]), r"Invalid value 'NEW'"),
        ({"symbols": CAPTURE["symbols"], "assets": [1]}, r"at `\$.assets\[0\]`"),
        (
            {
                "symbols": CAPTURE["symbols"],
                "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": None}],
            },
            r"autoAssetExchange",
        ),
    ],
)
def test_malformed_files_are_refused(doc: object, message: str) -> None:
    with pytest.raises(SymbolFileError, match=message):
        decode_symbol_file(json.dumps(doc).encode(), "f.json")


def test_duplicates_and_invalid_json() -> None:
    btc = CAPTURE["symbols"][0]
    with pytest.raises(SymbolFileError, match=r"f\.json: duplicate symbols: BTCUSDT"):
        decode_symbol_file(json.dumps([btc, btc]).encode(), "f.json")
    with pytest.raises(SymbolFileError, match=r"f\.json: not valid JSON"):
        decode_symbol_file(b"{not json", "f.json")


def test_older_rows_keep_settle_plan_and_algo_order_filter() -> None:
    btc = dict(CAPTURE["symbols"][0], settlePlan=0)
    btc["filters"] = [*btc["filters"], {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10}]
    file = decode_symbol_file(json.dumps([btc]).encode(), "f")
    table = with_margin_assets([], file.symbols)
    (row,) = json.loads(exchange_info(table, 1, 2400))["symbols"]
    assert row == btc
