"""exchangeInfo body and symbol file; checked against ccxt 4.5.90's own market parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ccxt
import pytest

from userstream.exceptions import ConfigurationError
from userstream.protocol.exchange_info import exchange_info, load_assets, load_symbols

EXPECTED = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT"}


def _body(limit: int = 2400) -> dict[str, Any]:
    symbols = load_symbols()
    out: dict[str, Any] = json.loads(
        exchange_info(symbols, 1_767_225_600_123, limit, assets=load_assets())
    )
    return out


def test_default_symbols() -> None:
    symbols = load_symbols()
    assert {s["symbol"] for s in symbols} == EXPECTED
    for s in symbols:
        assert s["contractType"] == "PERPETUAL"
        assert s["deliveryDate"] == 4133404800000
        assert s["status"] == "TRADING"
        assert s["marginAsset"] == s["quoteAsset"] == "USDT"
        filters = {f["filterType"]: f for f in s["filters"]}  # type: ignore[attr-defined]
        assert set(filters) == {
            "PRICE_FILTER",
            "LOT_SIZE",
            "MARKET_LOT_SIZE",
            "MAX_NUM_ORDERS",
            "PERCENT_PRICE",
            "MIN_NOTIONAL",
        }
        for f in filters.values():
            for key, value in f.items():
                if key in ("limit", "multiplierDecimal"):
                    assert isinstance(value, int)
                else:
                    assert isinstance(value, str)


def test_top_level_shape_and_order() -> None:
    body = _body(limit=1200)
    assert list(body) == [
        "timezone",
        "serverTime",
        "futuresType",
        "rateLimits",
        "exchangeFilters",
        "assets",
        "symbols",
    ]
    assert body["timezone"] == "UTC"
    assert body["serverTime"] == 1_767_225_600_123
    assert body["futuresType"] == "U_MARGINED"
    assert body["exchangeFilters"] == []
    assert body["rateLimits"] == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
    ]
    assets = {a["asset"]: a for a in body["assets"]}
    assert assets["USDT"] == {
        "asset": "USDT",
        "marginAvailable": True,
        "autoAssetExchange": "-10000",
    }


def test_default_assets_cover_every_margin_asset() -> None:
    body = json.loads(exchange_info(load_symbols(), 1, 2400))
    assert body["assets"] == load_assets()
    fdusd = dict(load_symbols()[0], symbol="BTCFDUSD", quoteAsset="FDUSD", marginAsset="FDUSD")
    body = json.loads(exchange_info([fdusd], 1, 2400))
    assert body["assets"][-1] == {
        "asset": "FDUSD",
        "marginAvailable": True,
        "autoAssetExchange": "-10000",
    }


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
    assert btc["limits"]["cost"]["min"] == 100.0
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


def _write(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "symbols.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_user_file_overrides_and_bare_list_is_accepted(tmp_path: Path) -> None:
    btc = next(s for s in load_symbols() if s["symbol"] == "BTCUSDT")
    path = _write(tmp_path, [btc])
    assert [s["symbol"] for s in load_symbols(path)] == ["BTCUSDT"]
    assert load_assets(path) is None


def _broken(field: str, value: object) -> list[dict[str, object]]:
    btc = dict(next(s for s in load_symbols() if s["symbol"] == "BTCUSDT"))
    if value is _DELETE:
        del btc[field]
    else:
        btc[field] = value
    return [btc]


_DELETE = object()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "expected a non-empty list"),
        ([], "expected a non-empty list"),
        ({"symbols": "x"}, "expected a non-empty list"),
        ([1], r"symbols\[0\]: expected an object"),
        (_broken("baseAsset", _DELETE), "baseAsset: expected a non-empty string"),
        (_broken("pricePrecision", "2"), "BTCUSDT.pricePrecision: expected a non-negative"),
        (_broken("filters", {}), "BTCUSDT.filters: expected a list"),
        (
            _broken(
                "filters",
                [{"filterType": "LOT_SIZE", "minQty": "1", "maxQty": "2", "stepSize": "1"}],
            ),
            "missing PRICE_FILTER",
        ),
        (
            _broken(
                "filters",
                [{"filterType": "PRICE_FILTER", "minPrice": 1, "maxPrice": "2", "tickSize": "1"}],
            ),
            "PRICE_FILTER.minPrice: expected a decimal",
        ),
        (_broken("filters", [{"nope": 1}]), r"filters\[0\]: expected an object with filterType"),
    ],
)
def test_malformed_files_raise_configuration_error(
    tmp_path: Path, doc: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_symbols(_write(tmp_path, doc))


def test_duplicates_invalid_json_and_missing_file(tmp_path: Path) -> None:
    btc = next(s for s in load_symbols() if s["symbol"] == "BTCUSDT")
    with pytest.raises(ConfigurationError, match="duplicate symbols: BTCUSDT"):
        load_symbols(_write(tmp_path, [btc, btc]))
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"{not json")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_symbols(str(bad))
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_symbols(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="assets"):
        load_assets(_write(tmp_path, {"assets": [1], "symbols": [btc]}))
