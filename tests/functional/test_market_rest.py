"""Market REST shapes, types and weights (market-data spec §3.1), read from the same state as
the streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Harness
from tests.functional.market_helpers import get_json, market_harness
from tests.market_source import TinyMarket


@pytest.fixture
async def market(tmp_path: Path) -> Any:
    async with market_harness(tmp_path / "data") as server:
        await server.advance(150_000)  # two and a half minutes of trades
        yield server


def _places(value: str) -> int:
    return len(value.split(".")[1]) if "." in value else 0


async def test_klines_rows(market: Harness) -> None:
    status, rows, headers = await get_json(
        market, "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=3"
    )
    assert status == 200
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert len(rows) == 3
    row = rows[-1]
    types = [int, str, str, str, str, str, int, str, int, str, str, str]
    assert [type(v) for v in row] == types
    assert row[6] == row[0] + 60_000 - 1
    assert rows[1][0] == rows[0][0] + 60_000
    assert _places(row[1]) == 2  # prices at pricePrecision
    assert _places(row[5]) == 3  # volume at quantityPrecision
    assert row[11] == "0"
    assert float(row[3]) <= float(row[4]) <= float(row[2])
    # The open bar is included and closes at the latest trade.
    _, trades, _ = await get_json(market, "/fapi/v1/trades?symbol=BTCUSDT&limit=1")
    assert row[4] == trades[-1]["price"]


async def test_mark_index_premium_klines_and_errors(market: Harness) -> None:
    for path in (
        "/fapi/v1/markPriceKlines?symbol=BTCUSDT&interval=1m",
        "/fapi/v1/indexPriceKlines?pair=BTCUSDT&interval=1m",
        "/fapi/v1/continuousKlines?pair=BTCUSDT&contractType=PERPETUAL&interval=1m",
    ):
        status, rows, _ = await get_json(market, path)
        assert status == 200, (path, rows)
        assert rows, path
    _, mark_rows, _ = await get_json(market, "/fapi/v1/markPriceKlines?symbol=BTCUSDT&interval=1m")
    assert _places(mark_rows[-1][1]) == 8
    assert mark_rows[-1][5] == "0"
    cases = {
        "/fapi/v1/klines?symbol=BTCUSDT&interval=1s": (-1120, "Invalid interval."),
        "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=2000": (
            -1130,
            "Data sent for parameter 'limit' is not valid.",
        ),
        "/fapi/v1/aggTrades?symbol=BTCUSDT&limit=1001": (
            -1130,
            "Data sent for parameter 'limit' is not valid.",
        ),
        "/fapi/v1/ticker/24hr?symbol=NOPE": (-1121, "Invalid symbol."),
        "/fapi/v1/klines?symbol=BTCUSDT": (
            -1102,
            "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
        ),
    }
    for path, (code, msg) in cases.items():
        status, body, _ = await get_json(market, path)
        assert (status, body) == (400, {"code": code, "msg": msg}), path


async def test_ticker_24hr_agrees_with_trades(market: Harness) -> None:
    status, ticker, headers = await get_json(market, "/fapi/v1/ticker/24hr?symbol=BTCUSDT")
    assert status == 200
    assert list(ticker) == [
        "symbol",
        "priceChange",
        "priceChangePercent",
        "weightedAvgPrice",
        "lastPrice",
        "lastQty",
        "openPrice",
        "highPrice",
        "lowPrice",
        "volume",
        "quoteVolume",
        "openTime",
        "closeTime",
        "firstId",
        "lastId",
        "count",
    ]
    _, trades, _ = await get_json(market, "/fapi/v1/trades?symbol=BTCUSDT&limit=1000")
    assert ticker["lastPrice"] == trades[-1]["price"]
    assert ticker["lastId"] == trades[-1]["id"]
    assert ticker["count"] == ticker["lastId"] - ticker["firstId"] + 1
    assert ticker["closeTime"] == market.clock.now_ms()
    _, everything, headers = await get_json(market, "/fapi/v1/ticker/24hr")
    assert [t["symbol"] for t in everything] == ["BTCUSDT", "ETHUSDT"]
    assert headers["X-MBX-USED-WEIGHT-1M"] == "46"  # ticker 1 + trades 5 + all tickers 40


async def test_small_endpoints(market: Harness) -> None:
    now = market.clock.now_ms()
    _, premium, _ = await get_json(market, "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    assert list(premium) == [
        "symbol",
        "markPrice",
        "indexPrice",
        "estimatedSettlePrice",
        "lastFundingRate",
        "interestRate",
        "nextFundingTime",
        "time",
    ]
    assert _places(premium["markPrice"]) == 8
    assert premium["time"] == now
    _, book, _ = await get_json(market, "/fapi/v1/ticker/bookTicker?symbol=BTCUSDT")
    _, depth, _ = await get_json(market, "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
    assert book["lastUpdateId"] == depth["lastUpdateId"]
    assert [book["bidPrice"], book["bidQty"]] == depth["bids"][0]
    assert [book["askPrice"], book["askQty"]] == depth["asks"][0]
    _, price_v2, _ = await get_json(market, "/fapi/v2/ticker/price?symbol=ETHUSDT")
    assert list(price_v2) == ["symbol", "price", "time"]
    _, oi, _ = await get_json(market, "/fapi/v1/openInterest?symbol=BTCUSDT")
    assert list(oi) == ["openInterest", "symbol", "time"]
    _, info, _ = await get_json(market, "/fapi/v1/fundingInfo")
    assert info == []
    _, aggs, _ = await get_json(market, "/fapi/v1/aggTrades?symbol=BTCUSDT&limit=5")
    assert list(aggs[0]) == ["a", "p", "q", "nq", "f", "l", "T", "m"]
    _, from_id, _ = await get_json(
        market, f"/fapi/v1/aggTrades?symbol=BTCUSDT&fromId={aggs[0]['a']}&limit=2"
    )
    assert from_id == aggs[:2]


async def test_funding_history_after_a_settlement(tmp_path: Path) -> None:
    async with market_harness(tmp_path / "data", TinyMarket(funding_ms=60_000)) as server:
        await server.advance(150_000)
        status, rows, _ = await get_json(server, "/fapi/v1/fundingRate?symbol=BTCUSDT")
        assert status == 200
        assert [row["fundingTime"] % 60_000 for row in rows] == [0, 0]
        assert list(rows[0]) == ["symbol", "fundingTime", "fundingRate", "markPrice"]
        assert rows[0]["fundingRate"] == "0.00010000"
        assert len(rows[0]["markPrice"].split(".")[1]) == 8
        _, both, _ = await get_json(server, "/fapi/v1/fundingRate")
        assert len(both) == 4
