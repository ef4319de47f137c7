"""`<asset>@assetIndex`, `!assetIndex@arr`, `GET /fapi/v1/assetIndex` and `indexInfo`
(market-data spec §2.1, §2.2): each second, every asset the venue takes as Multi-Assets
collateral, indexed at what the venue values it at, every figure a string at 8 places that
the official SDK's models accept; no composite index symbol is listed."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

from binance_sdk_derivatives_trading_usds_futures.rest_api.models import AssetIndexResponse1
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    AssetIndexResponseInner,
)
from websockets.asyncio.client import connect

from tests.functional.market_helpers import get_json, market_harness
from userstream.venue.collateral import COLLATERAL_RATES

KEYS = ["e", "E", "s", "i", "b", "a", "B", "A", "q", "g", "Q", "G"]
ASSETS = {"USDCUSD", "FDUSDUSD", "BTCUSD", "ETHUSD"}  # TinyMarket prices BTC and ETH only


async def test_asset_index_streams_each_second_agree_with_the_venues_collateral(
    tmp_path: Path,
) -> None:
    async with market_harness(tmp_path / "data") as server:
        target = "/market/stream?streams=!assetIndex@arr/btcusd@assetIndex"
        async with connect(server.ws + target, ping_interval=None, max_size=None) as ws:
            frames = []
            for _ in range(30):
                await server.advance(100)
                while True:
                    try:
                        frames.append(json.loads(await asyncio.wait_for(ws.recv(), 0.05)))
                    except TimeoutError:
                        break
            _, premium, _ = await get_json(server, "/fapi/v1/premiumIndex?symbol=BTCUSDT")
        arrays = [f["data"] for f in frames if f["stream"] == "!assetIndex@arr"]
        singles = [f["data"] for f in frames if f["stream"] == "btcusd@assetIndex"]
        assert len(arrays) == len(singles) == 3  # one per second
        assert all(event["E"] % 1000 == 0 for event in singles)
        for array in arrays:
            assert {event["s"] for event in array} == ASSETS
        for event in [*arrays[-1], *singles]:
            assert list(event) == KEYS
            assert event["e"] == "assetIndexUpdate"
            assert all(isinstance(event[k], str) and len(event[k].split(".")[1]) == 8
                       for k in KEYS[3:])  # fmt: skip
            assert AssetIndexResponseInner.from_dict(event) is not None
        last = singles[-1]
        assert last == next(e for e in arrays[-1] if e["s"] == "BTCUSD")
        index = Decimal(last["i"])
        assert index == Decimal(premium["markPrice"])  # the venue values BTC at its mark
        rate = COLLATERAL_RATES["BTC"]
        assert Decimal(last["b"]) == 1 - rate
        assert Decimal(last["B"]) == (index * rate).quantize(Decimal("1e-8"))
        assert Decimal(last["A"]) == (index * (2 - rate)).quantize(Decimal("1e-8"))
        assert Decimal(last["q"]) == (1 - rate) / 2
        usdc = next(e for e in arrays[-1] if e["s"] == "USDCUSD")
        assert usdc["i"] == "1.00000000"


async def test_asset_index_rest_one_or_all(tmp_path: Path) -> None:
    async with market_harness(tmp_path / "data") as server:
        await server.advance(1000)
        status, every, headers = await get_json(server, "/fapi/v1/assetIndex")
        assert status == 200
        assert headers["X-MBX-USED-WEIGHT-1M"] == "10"
        assert {row["symbol"] for row in every} == ASSETS
        status, one, headers = await get_json(server, "/fapi/v1/assetIndex?symbol=BTCUSD")
        assert status == 200
        assert headers["X-MBX-USED-WEIGHT-1M"] == "11"
        assert one == next(row for row in every if row["symbol"] == "BTCUSD")
        assert list(one) == [
            "symbol", "time", "index", "bidBuffer", "askBuffer", "bidRate", "askRate",
            "autoExchangeBidBuffer", "autoExchangeAskBuffer", "autoExchangeBidRate",
            "autoExchangeAskRate",
        ]  # fmt: skip
        model = AssetIndexResponse1.from_dict(one)
        assert model is not None
        assert model.bid_rate == one["bidRate"]
        status, body, _ = await get_json(server, "/fapi/v1/assetIndex?symbol=DOGEUSD")
        assert (status, body["code"]) == (400, -1121)


async def test_index_info_lists_no_composite_index(tmp_path: Path) -> None:
    async with market_harness(tmp_path / "data") as server:
        status, body, headers = await get_json(server, "/fapi/v1/indexInfo")
        assert (status, body, headers["X-MBX-USED-WEIGHT-1M"]) == (200, [], "1")
        status, body, _ = await get_json(server, "/fapi/v1/indexInfo?symbol=BTCUSDT")
        assert (status, body["code"]) == (400, -1121)
