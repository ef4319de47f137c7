"""ccxt.pro 4.5.90 `binanceusdm`, unmodified, on the market side (issue 11, market-data spec
§3.2): REST fetches and the order book watcher, which runs the snapshot + diff algorithm and
raises `ChecksumError` on any gap in the `pu` chain.

ccxt derives `<root>/public/ws/<n>` and `<root>/market/ws/<n>` from the `linear` URL when it
ends in `/ws` (ccxt `get_ws_url`), then SUBSCRIBEs on them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from tests.conftest import START_MS, Harness
from tests.functional.market_helpers import get_json, market_harness
from tests.market_source import TinyMarket
from userstream.market.synthetic import SyntheticMarket
from userstream.market.types import MarketSource
from userstream.symbols import load_symbol_table

pytestmark = pytest.mark.compat

SYMBOL = "BTC/USDT:USDT"
TIMEOUT_S = 5.0


def _exchange(server: Harness) -> Any:
    exchange = ccxtpro.binanceusdm({"options": {"fetchCurrencies": False}})
    api = exchange.urls["api"]
    for name, url in list(api.items()):
        if isinstance(url, str) and "fapi.binance.com" in url:
            api[name] = url.replace("https://fapi.binance.com", server.url)
    api["ws"]["linear"] = f"{server.ws}/ws"
    return exchange


def _source(kind: str) -> MarketSource:
    if kind == "synthetic":
        return SyntheticMarket(load_symbol_table().symbols, seed=5, start_ms=START_MS)
    return TinyMarket()


@pytest.fixture(params=["tiny"])
async def market(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Harness, Any]]:
    async with market_harness(tmp_path / "data", _source(request.param)) as server:
        exchange = _exchange(server)
        try:
            await server.advance(1000)
            yield server, exchange
        finally:
            await exchange.close()


async def test_fetch_order_book_matches_the_rest_snapshot(market: tuple[Harness, Any]) -> None:
    server, exchange = market
    book = await exchange.fetch_order_book(SYMBOL, 20)
    _, raw, _ = await get_json(server, "/fapi/v1/depth?symbol=BTCUSDT&limit=20")
    assert book["nonce"] == raw["lastUpdateId"]
    assert book["bids"][0] == [float(raw["bids"][0][0]), float(raw["bids"][0][1])]
    assert book["asks"][0][0] > book["bids"][0][0]
    assert len(book["bids"]) == 20


@pytest.mark.parametrize("market", ["tiny", "synthetic"], indirect=True)
async def test_watch_order_book_runs_minutes_without_resync(market: tuple[Harness, Any]) -> None:
    server, exchange = market
    updates = 0
    failure: list[BaseException] = []

    async def watch() -> None:
        nonlocal updates
        try:
            while True:
                await exchange.watch_order_book(SYMBOL)
                updates += 1
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            failure.append(exc)

    watcher = asyncio.create_task(watch())
    try:
        for _ in range(int(TIMEOUT_S / 0.01)):
            if updates:
                break
            await server.advance(100)
            await asyncio.sleep(0.01)
        assert updates, "ccxt never produced an order book"
        assert list(exchange.clients) == [f"{server.ws}/public/ws/0"]  # its derived URL form
        for _ in range(1200):  # two virtual minutes of 100 ms frames
            await server.advance(100)
            await asyncio.sleep(0.002)
            assert not failure, failure
        await asyncio.sleep(0.2)
        assert not failure, failure
        _, raw, _ = await get_json(server, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
        book = exchange.orderbooks[SYMBOL]
        assert book["nonce"] == raw["lastUpdateId"]
        assert book["bids"][:10] == [[float(p), float(q)] for p, q in raw["bids"][:10]]
        assert book["asks"][:10] == [[float(p), float(q)] for p, q in raw["asks"][:10]]
        assert updates > 600
    finally:
        watcher.cancel()


async def test_fetch_trades_and_funding_rate(market: tuple[Harness, Any]) -> None:
    server, exchange = market
    await server.advance(5000)
    trades = await exchange.fetch_trades(SYMBOL, limit=20)  # GET /fapi/v1/aggTrades
    _, raw, _ = await get_json(server, "/fapi/v1/aggTrades?symbol=BTCUSDT&limit=20")
    assert [t["id"] for t in trades] == [str(t["a"]) for t in raw]
    assert trades[-1]["price"] == float(raw[-1]["p"])
    assert trades[-1]["side"] == ("sell" if raw[-1]["m"] else "buy")
    funding = await exchange.fetch_funding_rate(SYMBOL)  # GET /fapi/v1/premiumIndex
    _, premium, _ = await get_json(server, "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    assert funding["fundingRate"] == float(premium["lastFundingRate"])
    assert funding["markPrice"] == float(premium["markPrice"])
    assert funding["fundingTimestamp"] == premium["nextFundingTime"]


async def test_watch_trades(market: tuple[Harness, Any]) -> None:
    server, exchange = market
    waiter = asyncio.ensure_future(exchange.watch_trades(SYMBOL))  # <s>@trade on /public
    try:
        for _ in range(int(TIMEOUT_S / 0.01)):
            if waiter.done():
                break
            await server.advance(100)
            await asyncio.sleep(0.01)
        trades = await asyncio.wait_for(waiter, TIMEOUT_S)
    finally:
        waiter.cancel()
    assert trades
    assert trades[0]["symbol"] == SYMBOL
    assert trades[0]["price"] > 0


async def test_fetch_ticker_and_ohlcv(market: tuple[Harness, Any]) -> None:
    server, exchange = market
    await server.advance(130_000)
    ticker = await exchange.fetch_ticker(SYMBOL)  # GET /fapi/v1/ticker/24hr
    _, raw, _ = await get_json(server, "/fapi/v1/ticker/24hr?symbol=BTCUSDT")
    assert ticker["last"] == float(raw["lastPrice"])
    assert ticker["baseVolume"] == float(raw["volume"])
    assert ticker["timestamp"] == raw["closeTime"]
    bars = await exchange.fetch_ohlcv(SYMBOL, "1m", limit=3)  # GET /fapi/v1/klines
    assert len(bars) == 3
    assert bars[1][0] - bars[0][0] == 60_000
    assert bars[-1][4] == ticker["last"]
    marks = await exchange.fetch_ohlcv(SYMBOL, "1m", limit=2, params={"price": "mark"})
    assert len(marks) == 2


async def test_watch_ticker(market: tuple[Harness, Any]) -> None:
    server, exchange = market
    waiter = asyncio.ensure_future(exchange.watch_ticker(SYMBOL))  # <s>@ticker on /market
    try:
        for _ in range(int(TIMEOUT_S / 0.01)):
            if waiter.done():
                break
            await server.advance(500)
            await asyncio.sleep(0.01)
        ticker = await asyncio.wait_for(waiter, TIMEOUT_S)
    finally:
        waiter.cancel()
    _, raw, _ = await get_json(server, "/fapi/v1/ticker/24hr?symbol=BTCUSDT")
    assert ticker["symbol"] == SYMBOL
    assert ticker["last"] > 0
    assert ticker["open"] == float(raw["openPrice"])
