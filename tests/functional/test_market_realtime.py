"""On a real clock the real-time streams go out at the update's instant (a `TimedSource`'s, or
as an upstream's message arrives), not at the service's next `TICK_MS` tick, while the
streams with a stated speed keep their grid (market-data spec §2.1: `@bookTicker` and
`@trade` real-time, `@aggTrade` 100 ms, `@depth@100ms` 100 ms)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from userstream import Server, ServerConfig
from userstream.clock import SystemClock
from userstream.market.book import OrderBook
from userstream.market.replay import ReplayMarket
from userstream.market.replay_sample import write_sample
from userstream.market.types import BookUpdate, Level, MarketUpdate, MarkUpdate, Trade
from userstream.server.market import TICK_MS, open_market_source
from userstream.server.market_feed import FollowedUpstream
from userstream.symbols import load_symbol_table

SYMBOL = "BTCUSDT"
OFFSET_MS = 17  # every change falls this far after a tick of the service's grid
PRICE = Decimal("60000.0")
TICK = Decimal("0.1")


class OffGridMarket:
    """A `TimedSource`: every `TICK_MS`, `OFFSET_MS` past the grid, the best bid's size
    changes and one trade prints (at alternating prices, so each is its own aggregate)."""

    def __init__(self) -> None:
        now = time.time_ns() // 1_000_000
        self._next = now - now % TICK_MS + OFFSET_MS
        self._count = 0
        self._book = OrderBook(SYMBOL, 1_000)
        self._book.replace(
            [Level(PRICE - TICK * k, Decimal("1.000")) for k in range(1, 6)],
            [Level(PRICE + TICK * k, Decimal("1.000")) for k in range(1, 6)],
            1_000,
        )

    @property
    def symbols(self) -> Sequence[str]:
        return [SYMBOL]

    def book(self, symbol: str) -> OrderBook:
        return self._book

    def mark(self, symbol: str) -> MarkUpdate:
        return MarkUpdate(SYMBOL, PRICE, PRICE, PRICE, Decimal(0), Decimal(0), 0, 0)

    def next_update_ms(self) -> int:
        return self._next

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        out: list[MarketUpdate] = []
        while self._next <= now_ms:
            self._count += 1
            first = self._book.last_update_id + 1
            qty = Decimal("1.000") + Decimal(self._count) / 1000
            update = BookUpdate(SYMBOL, first, first, (Level(PRICE - TICK, qty),), (), self._next)
            self._book.apply(update)
            price = PRICE + TICK * (self._count % 2)
            out += [update, Trade(SYMBOL, self._count, price, qty, True, self._next)]
            self._next += TICK_MS
        return out


async def test_book_ticker_leaves_at_the_update_and_the_speed_streams_on_their_grid(
    tmp_path: Path,
) -> None:
    config = ServerConfig(
        port=0, data_dir=tmp_path, clock=SystemClock(), market_source=OffGridMarket()
    )
    frames: dict[str, list[dict[str, Any]]] = {}
    async with Server(config) as server:
        streams = "btcusdt@bookTicker/btcusdt@aggTrade/btcusdt@depth@100ms"
        url = server.url.replace("http://", "ws://") + f"/stream?streams={streams}"
        async with connect(url) as ws:
            while min(len(frames.get(e, ())) for e in ("bookTicker", "aggTrade", "depth")) < 6:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                frames.setdefault(message["stream"].split("@")[1], []).append(message["data"])
    # the first frames may carry changes the source made before the server started
    book_tickers = frames["bookTicker"][2:]
    assert all(f["E"] == f["T"] for f in book_tickers), book_tickers
    assert all(f["E"] % TICK_MS == OFFSET_MS for f in book_tickers), book_tickers
    assert all(f["E"] % TICK_MS == 0 for f in frames["aggTrade"]), frames["aggTrade"]
    assert all(f["E"] % 100 == 0 for f in frames["depth"]), frames["depth"]


async def test_a_follower_passes_an_upstream_trade_on_as_it_arrives(tmp_path: Path) -> None:
    clock = SystemClock()
    upstream_config = ServerConfig(
        port=0, data_dir=tmp_path / "a", clock=clock, market_source=OffGridMarket()
    )
    async with Server(upstream_config) as upstream:
        source = open_market_source(
            f"upstream:{upstream.ws_url}?symbols=BTCUSDT&trades=trade",
            load_symbol_table(),
            clock.now_ms(),
        )
        assert isinstance(source, FollowedUpstream)
        config = ServerConfig(port=0, data_dir=tmp_path / "b", clock=clock, market_source=source)
        async with Server(config) as follower:
            url = follower.url.replace("http://", "ws://") + "/ws?streams=btcusdt@trade"
            async with connect(url) as ws:
                trades = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(6)]
    # each trade left the upstream `OFFSET_MS` past a tick and is passed on as it arrives,
    # not at the follower's next tick
    assert all(t["E"] % TICK_MS != 0 for t in trades), trades


async def test_a_replay_trade_goes_out_when_its_record_falls_due(tmp_path: Path) -> None:
    write_sample(tmp_path / "files")
    clock = SystemClock()
    table = load_symbol_table()
    replay = ReplayMarket(tmp_path / "files", table.symbols, speed=20, start_ms=clock.now_ms())
    config = ServerConfig(port=0, data_dir=tmp_path / "data", clock=clock, market_source=replay)
    async with Server(config) as server:
        url = server.url.replace("http://", "ws://") + "/ws?streams=btcusdt@trade"
        async with connect(url) as ws:
            trades = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(12)]
    # `T` is the record's time on the server's clock (floored at 20x): the frame leaves then
    later = trades[2:]
    assert all(0 <= t["E"] - t["T"] <= 1 for t in later), later


async def test_the_synthetic_market_book_ticker_leaves_at_the_book_change(tmp_path: Path) -> None:
    config = ServerConfig(port=0, data_dir=tmp_path, clock=SystemClock(), market="synthetic:7")
    async with Server(config) as server:
        url = server.url.replace("http://", "ws://") + "/ws?streams=btcusdt@bookTicker"
        async with connect(url) as ws:
            tickers = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(8)]
    later = tickers[2:]
    assert all(t["E"] == t["T"] for t in later), later
