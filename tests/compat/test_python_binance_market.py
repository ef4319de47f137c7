"""python-binance 1.0.37, unmodified, on the market side (issue 11): `futures_symbol_ticker`
(`/fapi/v1/ticker/price`), `futures_order_book` (`/fapi/v1/depth`) and its futures multiplex
socket (`/market/stream?streams=a/b/c`, combined envelopes)."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Harness
from tests.functional.market_helpers import get_json, market_harness

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from binance import AsyncClient, BinanceSocketManager

pytestmark = pytest.mark.compat

RECV_TIMEOUT_S = 5.0


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[tuple[Harness, Any]]:
    async with market_harness(tmp_path / "data") as server:

        class LocalAsyncClient(AsyncClient):  # type: ignore[misc]
            API_URL = f"{server.url}/api"
            FUTURES_URL = f"{server.url}/fapi"

        await server.advance(1000)
        client = await asyncio.wait_for(LocalAsyncClient.create(), RECV_TIMEOUT_S)
        try:
            yield server, client
        finally:
            await client.close_connection()


async def test_symbol_ticker_and_order_book(market: tuple[Harness, Any]) -> None:
    server, client = market
    ticker = await client.futures_symbol_ticker(symbol="BTCUSDT")
    assert list(ticker) == ["symbol", "price", "time"]
    assert ticker["symbol"] == "BTCUSDT"
    assert len(ticker["price"].split(".")[1]) == 2
    everything = await client.futures_symbol_ticker()
    assert [t["symbol"] for t in everything] == ["BTCUSDT", "ETHUSDT"]
    book = await client.futures_order_book(symbol="BTCUSDT", limit=10)
    _, raw, _ = await get_json(server, "/fapi/v1/depth?symbol=BTCUSDT&limit=10")
    assert book == raw


async def test_futures_multiplex_socket(market: tuple[Harness, Any]) -> None:
    server, client = market

    class LocalBSM(BinanceSocketManager):  # type: ignore[misc]
        FSTREAM_URL = f"{server.ws}/"

    streams = ["btcusdt@aggTrade", "btcusdt@markPrice@1s", "ethusdt@bookTicker"]

    async def tick() -> None:
        while True:
            await server.advance(100)
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    seen: dict[str, dict[str, Any]] = {}
    try:
        async with LocalBSM(client).futures_multiplex_socket(streams) as socket:
            while len(seen) < len(streams):
                message = await asyncio.wait_for(socket.recv(), RECV_TIMEOUT_S)
                assert message.get("e") != "error", message
                seen[message["stream"]] = message["data"]
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    assert seen["btcusdt@aggTrade"]["e"] == "aggTrade"
    assert seen["btcusdt@markPrice@1s"]["e"] == "markPriceUpdate"
    assert seen["ethusdt@bookTicker"]["s"] == "ETHUSDT"
