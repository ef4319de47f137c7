"""Stream-name grammar, weights and decimal formatting of `protocol.market` (market-data
spec §2.1, §2.3, §3.1)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from userstream.exceptions import BinanceAPIError
from userstream.protocol.market import (
    MarketStream,
    StreamKind,
    depth_weight,
    fmt,
    int_param,
    klines_weight,
    parse_market_stream,
)


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("btcusdt@aggTrade", MarketStream(StreamKind.AGG_TRADE, "BTCUSDT", 100)),
        ("btcusdt@trade", MarketStream(StreamKind.TRADE, "BTCUSDT")),
        ("btcusdt@markPrice", MarketStream(StreamKind.MARK_PRICE, "BTCUSDT", 3000)),
        ("btcusdt@markPrice@1s", MarketStream(StreamKind.MARK_PRICE, "BTCUSDT", 1000)),
        ("!markPrice@arr", MarketStream(StreamKind.MARK_PRICE_ALL, speed_ms=3000)),
        ("!markPrice@arr@1s", MarketStream(StreamKind.MARK_PRICE_ALL, speed_ms=1000)),
        ("btcusdt@kline_1m", MarketStream(StreamKind.KLINE, "BTCUSDT", 250, interval="1m")),
        ("btcusdt@kline_1M", MarketStream(StreamKind.KLINE, "BTCUSDT", 250, interval="1M")),
        (
            "btcusdt_perpetual@continuousKline_5m",
            MarketStream(
                StreamKind.CONTINUOUS_KLINE,
                "BTCUSDT",
                250,
                interval="5m",
                contract_type="PERPETUAL",
            ),
        ),
        ("btcusdt@miniTicker", MarketStream(StreamKind.MINI_TICKER, "BTCUSDT", 2000)),
        ("!miniTicker@arr", MarketStream(StreamKind.MINI_TICKER_ALL, speed_ms=1000)),
        ("btcusdt@ticker", MarketStream(StreamKind.TICKER, "BTCUSDT", 2000)),
        ("!ticker@arr", MarketStream(StreamKind.TICKER_ALL, speed_ms=1000)),
        ("btcusdt@bookTicker", MarketStream(StreamKind.BOOK_TICKER, "BTCUSDT")),
        ("!bookTicker", MarketStream(StreamKind.BOOK_TICKER_ALL)),
        ("btcusdt@depth", MarketStream(StreamKind.DEPTH, "BTCUSDT", 250)),
        ("btcusdt@depth@100ms", MarketStream(StreamKind.DEPTH, "BTCUSDT", 100)),
        ("btcusdt@depth@250ms", MarketStream(StreamKind.DEPTH, "BTCUSDT", 250)),
        ("btcusdt@depth@500ms", MarketStream(StreamKind.DEPTH, "BTCUSDT", 500)),
        ("btcusdt@depth@0ms", MarketStream(StreamKind.DEPTH, "BTCUSDT", 100)),
        (
            "btcusdt@depth20@100ms",
            MarketStream(StreamKind.DEPTH_PARTIAL, "BTCUSDT", 100, levels=20),
        ),
        ("btcusdt@depth5", MarketStream(StreamKind.DEPTH_PARTIAL, "BTCUSDT", 250, levels=5)),
        ("btcusdt@forceOrder", MarketStream(StreamKind.FORCE_ORDER, "BTCUSDT", 1000)),
        ("!forceOrder@arr", MarketStream(StreamKind.FORCE_ORDER_ALL, speed_ms=1000)),
        ("BTCUSDT@aggTrade", MarketStream(StreamKind.AGG_TRADE, "BTCUSDT", 100)),
        ("btcusdt@rpiDepth@500ms", MarketStream(StreamKind.RPI_DEPTH, "BTCUSDT", 500)),
        ("btcusd@assetIndex", MarketStream(StreamKind.ASSET_INDEX, "BTCUSD", 1000)),
        ("!assetIndex@arr", MarketStream(StreamKind.ASSET_INDEX_ALL, speed_ms=1000)),
    ],
)
def test_names_map_to_topics(name: str, topic: MarketStream) -> None:
    assert parse_market_stream(name) == topic


@pytest.mark.parametrize(
    "name",
    [
        "a" * 64,  # a listenKey
        "key@ORDER_TRADE_UPDATE",
        "btcusdt@depth7",
        "btcusdt@depth@1s",
        "btcusdt@kline_1s",
        "btcusdt_weekly@continuousKline_1m",
        "btcusdt@aggtrade",
        "!nothing@arr",
        "btcusdt@rpiDepth",  # 500 ms is its only speed, and it is always named
        "btcusdt@rpiDepth@100ms",
    ],
)
def test_other_names_are_not_market_topics(name: str) -> None:
    assert parse_market_stream(name) is None


def test_weights() -> None:
    assert [depth_weight(n) for n in (5, 10, 20, 50, 100, 500, 1000)] == [2, 2, 2, 2, 5, 10, 20]
    assert [klines_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == [
        1, 1, 2, 2, 5, 5, 10, 10
    ]  # fmt: skip


def test_fmt_keeps_places_without_exponent() -> None:
    assert fmt(Decimal("68005.1"), 2) == "68005.10"
    assert fmt(Decimal("0E-8"), 3) == "0.000"
    assert fmt(Decimal("0.0001"), 8) == "0.00010000"


def test_int_param() -> None:
    assert int_param({"limit": "5"}, "limit") == 5
    assert int_param({}, "limit") is None
    assert int_param({"limit": ""}, "limit") is None
    for bad in ("-1", "1.5", "x", "1" * 21, "٣"):
        with pytest.raises(BinanceAPIError) as raised:
            int_param({"limit": bad}, "limit")
        assert raised.value.code == -1100
