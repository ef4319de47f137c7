"""Binance's official SDK (`binance-sdk-derivatives-trading-usds-futures` 18.x), unmodified: its
market stream methods dial `/market/stream` and `/public/stream`, SUBSCRIBE with string ids,
and every message must parse into the SDK's pydantic model for that stream. The SDK drops a
message that fails validation (it logs and emits "error" instead of calling back), so a
callback per stream that fires proves the payload parsed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from binance_common.configuration import ConfigurationWebSocketStreams
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)

from tests.functional.market_helpers import market_harness
from userstream.market.types import Side

pytestmark = pytest.mark.compat

TIMEOUT_S = 10.0


async def test_market_streams_parse_into_sdk_models(tmp_path: Path) -> None:
    async with market_harness(tmp_path / "data") as server:
        client: Any = DerivativesTradingUsdsFutures(
            config_ws_streams=ConfigurationWebSocketStreams(
                stream_url=server.ws, reconnect_delay=500
            )
        )
        streams = await asyncio.wait_for(client.websocket_streams.create_connection(), TIMEOUT_S)
        assert streams is not None
        received: dict[str, list[Any]] = {}
        errors: list[Any] = []

        def keep(name: str) -> Callable[[Any], None]:
            return lambda message: received.setdefault(name, []).append(message)

        ws = streams
        subscriptions = {
            "aggTrade": ws.aggregate_trade_streams(symbol="btcusdt"),
            "markPrice": ws.mark_price_stream(symbol="btcusdt", update_speed="1s"),
            "markPriceAll": ws.mark_price_stream_for_all_market(update_speed="1s"),
            "liquidation": ws.liquidation_order_streams(symbol="btcusdt"),
            "bookTicker": ws.individual_symbol_book_ticker_streams(symbol="btcusdt"),
            "allBookTickers": ws.all_book_tickers_stream(),
            "diffDepth": ws.diff_book_depth_streams(symbol="btcusdt", update_speed="100ms"),
            "partialDepth": ws.partial_book_depth_streams(
                symbol="btcusdt", levels=5, update_speed="100ms"
            ),
            "kline": ws.kline_candlestick_streams(symbol="btcusdt", interval="1m"),
            "continuousKline": ws.continuous_contract_kline_candlestick_streams(
                pair="btcusdt", contract_type="perpetual", interval="1m"
            ),
            "ticker": ws.individual_symbol_ticker_streams(symbol="btcusdt"),
            "miniTicker": ws.individual_symbol_mini_ticker_stream(symbol="btcusdt"),
            "allTickers": ws.all_market_tickers_streams(),
            "allMiniTickers": ws.all_market_mini_tickers_stream(),
            "rpiDepth": ws.rpi_diff_book_depth_streams(symbol="btcusdt"),
            "assetIndex": ws.asset_index(),
        }
        streams.on_connection("error", errors.append)
        handles = {}
        for name, request in subscriptions.items():
            handles[name] = await asyncio.wait_for(request, TIMEOUT_S)
            handles[name].on("message", keep(name))

        assert server.server.market is not None
        liquidated = False
        try:
            for _ in range(int(TIMEOUT_S / 0.01)):
                await server.advance(100)
                if not liquidated and server.clock.now_ms() % 1000 == 500:
                    server.server.market.publish_force_order(
                        "BTCUSDT",
                        Side.BUY,
                        Decimal("0.5"),
                        Decimal("60000"),
                        Decimal("60000"),
                        server.clock.now_ms(),
                    )
                    liquidated = True
                await asyncio.sleep(0.01)
                if set(received) == set(subscriptions):
                    break
        finally:
            with contextlib.suppress(Exception):
                await streams.close_connection()
        assert set(received) == set(subscriptions), sorted(received)
        assert not errors
        agg = received["aggTrade"][0]
        assert type(agg).__name__ == "AggregateTradeStreamsResponse"
        assert agg.s == "BTCUSDT"
        mark_all = received["markPriceAll"][0]
        assert isinstance(mark_all, list)
        assert {m.s for m in mark_all} == {"BTCUSDT", "ETHUSDT"}
        assert received["liquidation"][0].o.S == "BUY"
        assert len(received["partialDepth"][0].b) == 5
        assert received["kline"][0].k.i == "1m"
        assert received["continuousKline"][0].ps == "BTCUSDT"
        assert received["ticker"][0].s == "BTCUSDT"
        assert {t.s for t in received["allTickers"][0]} == {"BTCUSDT", "ETHUSDT"}
        assert received["rpiDepth"][0].e == "depthUpdate"
        assert "BTCUSD" in {a.s for a in received["assetIndex"][0]}
