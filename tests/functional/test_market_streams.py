"""Market streams on every path and in both envelopes (market-data spec §1, §2; issue 11
item 3): payload keys in Binance's order, decimals at the symbol's precision, the documented
update speeds, SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS."""

from __future__ import annotations

import asyncio
import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import Harness
from tests.functional.market_helpers import market_harness, recv_json
from userstream.market.types import Side


@pytest.fixture
async def market(tmp_path: Path) -> Any:
    async with market_harness(tmp_path / "data") as server:
        yield server


def _open(server: Harness, target: str) -> connect:
    return connect(server.ws + target, ping_interval=None, max_size=None, open_timeout=5)


async def _frames_until(
    server: Harness, ws: ClientConnection, count: int, step_ms: int = 100
) -> list[Any]:
    """Advance the clock step by step until `count` frames arrived."""
    frames: list[Any] = []
    for _ in range(500):
        await server.advance(step_ms)
        while True:
            try:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 0.05)))
            except TimeoutError:
                break
        if len(frames) >= count:
            return frames
    raise AssertionError(f"only {len(frames)} frames arrived")


async def _read_until_closed(ws: ClientConnection) -> None:
    while True:
        await recv_json(ws)


@pytest.mark.parametrize(
    "target",
    [
        "/ws/btcusdt@bookTicker",
        "/public/ws/btcusdt@bookTicker",
        "/market/ws/btcusdt@bookTicker",
        "/private/ws/btcusdt@bookTicker",
    ],
)
async def test_raw_book_ticker_on_every_path(market: Harness, target: str) -> None:
    async with _open(market, target) as ws:
        frames = await _frames_until(market, ws, 3)
    frame = frames[0]
    assert list(frame) == ["e", "u", "s", "b", "B", "a", "A", "T", "E"]
    assert frame["e"] == "bookTicker"
    assert frame["s"] == "BTCUSDT"
    assert len(frame["b"].split(".")[1]) == 2
    assert len(frame["B"].split(".")[1]) == 3
    assert Decimal(frame["b"]) < Decimal(frame["a"])
    assert all(isinstance(frame[k], int) for k in ("u", "T", "E"))


@pytest.mark.parametrize("path", ["/stream", "/public/stream", "/market/stream"])
async def test_combined_envelope_echoes_the_name(market: Harness, path: str) -> None:
    name = "ethusdt@depth5@100ms"
    async with _open(market, f"{path}?streams={name}") as ws:
        frames = await _frames_until(market, ws, 2)
    assert frames[0]["stream"] == name
    data = frames[0]["data"]
    assert list(data) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]
    assert data["s"] == "ETHUSDT"
    assert len(data["b"]) == len(data["a"]) == 5
    assert frames[1]["data"]["pu"] == data["u"]


async def test_ccxt_style_index_path_subscribe_list_unsubscribe(market: Harness) -> None:
    async with _open(market, "/market/ws/0") as ws:
        await ws.send(
            json.dumps(
                {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@trade"], "id": 1}
            )
        )
        assert await recv_json(ws) == {"result": None, "id": 1}
        frames = await _frames_until(market, ws, 10)
        kinds = {f["e"] for f in frames}
        assert kinds == {"aggTrade", "trade"}
        agg = next(f for f in frames if f["e"] == "aggTrade")
        assert list(agg) == ["e", "E", "s", "a", "p", "q", "nq", "f", "l", "T", "m"]
        assert agg["f"] <= agg["l"]
        trade = next(f for f in frames if f["e"] == "trade")
        assert list(trade) == ["e", "E", "T", "s", "t", "p", "q", "X", "m"]
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": "x"}))
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        # Frames queued before the UNSUBSCRIBE may still arrive; then only aggTrades.
        replies: list[Any] = []
        while len(replies) < 2:
            message = await recv_json(ws)
            if "id" in message:
                replies.append(message)
        assert replies == [
            {"result": None, "id": "x"},
            {"result": ["0", "btcusdt@aggTrade"], "id": 3},
        ]
        frames = await _frames_until(market, ws, 5)
        assert {f["e"] for f in frames} == {"aggTrade"}


async def test_mark_price_speeds_and_array(market: Harness) -> None:
    target = "/stream?streams=btcusdt@markPrice@1s/btcusdt@markPrice/!markPrice@arr@1s"
    async with _open(market, target) as ws:
        frames = await _frames_until(market, ws, 8, step_ms=500)
    by_stream: dict[str, list[Any]] = {}
    for frame in frames:
        by_stream.setdefault(frame["stream"], []).append(frame["data"])
    one_s = by_stream["btcusdt@markPrice@1s"]
    assert list(one_s[0]) == ["e", "E", "s", "p", "ap", "i", "P", "r", "T"]
    assert all(event["E"] % 1000 == 0 for event in one_s)
    assert one_s[1]["E"] - one_s[0]["E"] == 1000
    assert len(one_s[0]["p"].split(".")[1]) == 8
    assert all(event["E"] % 3000 == 0 for event in by_stream["btcusdt@markPrice"])
    array = by_stream["!markPrice@arr@1s"][0]
    assert [event["s"] for event in array] == ["BTCUSDT", "ETHUSDT"]


async def test_force_order_is_published_at_the_next_second(market: Harness) -> None:
    assert market.server.market is not None
    async with _open(market, "/stream?streams=btcusdt@forceOrder/!forceOrder@arr") as ws:
        await market.advance(1000)
        now = market.clock.now_ms()
        market.server.market.publish_force_order(
            "BTCUSDT", Side.SELL, Decimal("0.014"), Decimal("59000.1"), Decimal("59010.2"), now
        )
        frames = await _frames_until(market, ws, 2)
    assert {f["stream"] for f in frames} == {"btcusdt@forceOrder", "!forceOrder@arr"}
    data = frames[0]["data"]
    assert data["e"] == "forceOrder"
    assert data["o"] == {
        "s": "BTCUSDT",
        "S": "SELL",
        "o": "LIMIT",
        "f": "IOC",
        "q": "0.014",
        "p": "59000.10",
        "ap": "59010.20",
        "X": "FILLED",
        "l": "0.014",
        "z": "0.014",
        "T": now,
    }


async def test_all_book_tickers_one_object_per_frame(market: Harness) -> None:
    async with _open(market, "/public/ws/!bookTicker") as ws:
        frames = await _frames_until(market, ws, 4)
    assert {f["s"] for f in frames} == {"BTCUSDT", "ETHUSDT"}
    assert all(f["e"] == "bookTicker" for f in frames)


async def test_kline_every_250ms_and_one_closed_bar(market: Harness) -> None:
    target = "/stream?streams=btcusdt@kline_1m/btcusdt_perpetual@continuousKline_1m"
    async with _open(market, target) as ws:
        frames = await _frames_until(market, ws, 2 * 4 * 65, step_ms=1000)
    klines = [f["data"] for f in frames if f["stream"] == "btcusdt@kline_1m"]
    assert list(klines[0]) == ["e", "E", "s", "k"]
    assert list(klines[0]["k"]) == [
        "t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"
    ]  # fmt: skip
    open_bars = [k for k in klines if not k["k"]["x"]]
    assert {b["E"] - a["E"] for a, b in itertools.pairwise(open_bars)} == {250}
    closed = [k["k"] for k in klines if k["k"]["x"]]
    assert len(closed) == 1  # exactly one final frame for the bar that ended
    assert closed[0]["T"] == closed[0]["t"] + 59_999
    nxt = klines[klines.index(next(k for k in klines if k["k"]["x"])) + 1]["k"]
    assert nxt["t"] == closed[0]["T"] + 1
    assert not nxt["x"]
    continuous = [f["data"] for f in frames if f["stream"].endswith("continuousKline_1m")]
    assert list(continuous[0]) == ["e", "E", "ps", "ct", "k"]
    assert continuous[0]["e"] == "continuous_kline"
    assert (continuous[0]["ps"], continuous[0]["ct"]) == ("BTCUSDT", "PERPETUAL")
    assert "s" not in continuous[0]["k"]


async def test_tickers_and_arrays(market: Harness) -> None:
    target = "/stream?streams=btcusdt@ticker/btcusdt@miniTicker/!ticker@arr/!miniTicker@arr"
    async with _open(market, target) as ws:
        frames = await _frames_until(market, ws, 8, step_ms=500)
    by_stream: dict[str, list[Any]] = {}
    for frame in frames:
        by_stream.setdefault(frame["stream"], []).append(frame["data"])
    ticker = by_stream["btcusdt@ticker"][0]
    assert list(ticker) == [
        "e", "E", "s", "p", "P", "w", "c", "Q", "o", "h", "l", "v", "q", "O", "C", "F", "L", "n"
    ]  # fmt: skip
    assert ticker["E"] % 2000 == 0
    assert list(by_stream["btcusdt@miniTicker"][0]) == [
        "e", "E", "s", "c", "o", "h", "l", "v", "q"
    ]  # fmt: skip
    array = by_stream["!ticker@arr"][0]
    assert {t["s"] for t in array} == {"BTCUSDT", "ETHUSDT"}
    assert all(t["e"] == "24hrTicker" for t in array)
    assert all(t["e"] == "24hrMiniTicker" for t in by_stream["!miniTicker@arr"][0])


async def test_market_connections_have_the_user_stream_limits(market: Harness) -> None:
    names = [f"s{n}usdt@aggTrade" for n in range(1025)]
    async with _open(market, "/market/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": names, "id": 1}))
        assert await recv_json(ws) == {
            "error": {"code": 4, "msg": "Too many subscriptions"},
            "id": 1,
        }
        for n in range(11):  # over 10 incoming messages per second: disconnected
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": n + 2}))
        with pytest.raises(ConnectionClosed) as closed:
            await _read_until_closed(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
