"""The depth diff streams against the REST snapshot (market-data spec §2.3): a local book kept
from each speed's diffs equals `GET /fapi/v1/depth` taken at the same update id, over a long
virtual run, and every speed's `pu` chain is gap-free."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from binance_sdk_derivatives_trading_usds_futures.rest_api.models import RpiOrderBookResponse
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    RpiDiffBookDepthStreamsResponse,
)
from websockets.asyncio.client import connect

from tests.conftest import START_MS
from tests.functional.market_helpers import LocalBook, get_json, market_harness, recv_json
from tests.market_source import TinyMarket
from userstream.market.synthetic import SyntheticMarket
from userstream.market.types import MarketSource
from userstream.symbols import load_symbol_table

STEPS = 300  # 300 × 500 ms: two and a half virtual minutes


def _tiny() -> MarketSource:
    return TinyMarket()


def _synthetic() -> MarketSource:
    return SyntheticMarket(load_symbol_table().symbols, seed=11, start_ms=START_MS)


@pytest.mark.parametrize("make_source", [_tiny, _synthetic], ids=["tiny", "synthetic"])
async def test_local_books_from_every_speed_equal_the_snapshot(
    tmp_path: Path, make_source: Callable[[], MarketSource]
) -> None:
    async with market_harness(tmp_path / "data", make_source()) as server:
        speeds = ("btcusdt@depth@100ms", "btcusdt@depth", "btcusdt@depth@500ms")
        target = "/stream?streams=" + "/".join(speeds)
        async with connect(server.ws + target, ping_interval=None, max_size=None) as ws:
            status, snapshot, _ = await get_json(server, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
            assert status == 200
            books = {name: LocalBook(snapshot) for name in speeds}
            for step in range(STEPS):
                await server.advance(500)
                # Each speed closes its batch on the 500 ms boundary: its last frame ends at
                # the book's id now.
                _, current, _ = await get_json(server, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
                for name in speeds:
                    book = books[name]
                    while book.last_u < current["lastUpdateId"]:
                        frame = await recv_json(ws)
                        books[frame["stream"]].apply(frame["data"])
                    assert book.last_u == current["lastUpdateId"]
                if step % 50 == 0 or step == STEPS - 1:
                    for name in speeds:
                        assert books[name].synced
                        assert books[name].matches(current), name


async def test_depth_snapshot_shape_and_errors(tmp_path: Path) -> None:
    async with market_harness(tmp_path / "data") as server:
        await server.advance(1000)
        status, body, headers = await get_json(server, "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
        assert status == 200
        assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
        assert isinstance(body["lastUpdateId"], int)
        assert len(body["bids"]) == len(body["asks"]) == 5
        price, qty = body["bids"][0]
        assert len(price.split(".")[1]) == 2  # pricePrecision 2
        assert len(qty.split(".")[1]) == 3  # quantityPrecision 3
        assert float(body["bids"][0][0]) < float(body["asks"][0][0])
        assert headers["X-MBX-USED-WEIGHT-1M"] == "2"
        _, _, headers = await get_json(server, "/fapi/v1/depth?symbol=BTCUSDT")
        assert headers["X-MBX-USED-WEIGHT-1M"] == "12"  # default limit 500 weighs 10

        cases = {
            "/fapi/v1/depth?symbol=NOPE": (-1121, "Invalid symbol."),
            "/fapi/v1/depth": (
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            ),
            "/fapi/v1/depth?symbol=BTCUSDT&limit=3": (-4021, "3 is not valid depth limit"),
            "/fapi/v1/depth?symbol=BTCUSDT&limit=1500": (
                -1130,
                "Data sent for parameter 'limit' is not valid.",
            ),
            "/fapi/v1/depth?symbol=BTCUSDT&limit=x": (
                -1100,
                "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
            ),
        }
        for path, (code, msg) in cases.items():
            status, body, _ = await get_json(server, path)
            assert (status, body) == (400, {"code": code, "msg": msg}), path


async def test_rpi_depth_stream_keeps_a_book_equal_to_the_rpi_snapshot(tmp_path: Path) -> None:
    """`@rpiDepth@500ms` + `GET /fapi/v1/rpiDepth` run the documented algorithm (spec §2.1:
    "pair with GET /fapi/v1/rpiDepth"), and both parse into the official SDK's models."""
    async with market_harness(tmp_path / "data") as server:
        target = "/public/stream?streams=btcusdt@rpiDepth@500ms"
        async with connect(server.ws + target, ping_interval=None, max_size=None) as ws:
            path = "/fapi/v1/rpiDepth?symbol=BTCUSDT"
            status, snapshot, headers = await get_json(server, path)
            assert status == 200
            assert headers["X-MBX-USED-WEIGHT-1M"] == "20"
            assert RpiOrderBookResponse.from_dict(snapshot) is not None
            assert len(snapshot["bids"]) > 20
            book = LocalBook(snapshot)
            for _ in range(40):
                await server.advance(500)
                _, current, _ = await get_json(server, path + "&limit=1000")
                while book.last_u < current["lastUpdateId"]:
                    frame = await recv_json(ws)
                    assert frame["stream"] == "btcusdt@rpiDepth@500ms"
                    data = frame["data"]
                    model = RpiDiffBookDepthStreamsResponse.from_dict(data)
                    assert model is not None
                    assert model.e == "depthUpdate"
                    assert data["E"] % 500 == 0
                    book.apply(data)
                assert book.synced
                assert book.matches(current)
        for query, code in (("&limit=500", -4021), ("&limit=5000", -1130), ("", -1121)):
            symbol = "NOPE" if not query else "BTCUSDT"
            status, body, _ = await get_json(server, f"/fapi/v1/rpiDepth?symbol={symbol}{query}")
            assert (status, body["code"]) == (400, code)
