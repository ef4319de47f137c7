"""The venue's seam: `MarketService.add_listener` hears every advance on the server's clock,
with the same updates the streams and REST are built from (issue 11 item 5)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.functional.market_helpers import get_json, market_harness
from userstream.market.types import MarketUpdate, Trade


async def test_listeners_hear_every_tick_and_agree_with_rest(tmp_path: Path) -> None:
    async with market_harness(tmp_path / "data") as server:
        market = server.server.market
        assert market is not None
        calls: list[int] = []
        trades: list[Trade] = []

        def broken(updates: Sequence[MarketUpdate], now_ms: int) -> None:
            raise RuntimeError("a failing listener must not stop the market")

        def venue(updates: Sequence[MarketUpdate], now_ms: int) -> None:
            calls.append(now_ms)
            trades.extend(u for u in updates if isinstance(u, Trade) and u.symbol == "BTCUSDT")
            # The source's book is already the one these updates lead to.
            assert all(u.time_ms <= now_ms for u in updates if isinstance(u, Trade))

        start = market.sync()  # the first advance, at the start, is behind us
        market.add_listener(broken)
        market.add_listener(venue)
        await server.advance(2000)
        assert calls == list(range(start + 50, start + 2001, 50))
        _, rest, _ = await get_json(server, "/fapi/v1/trades?symbol=BTCUSDT&limit=1000")
        tail = [t["id"] for t in rest][-len(trades) :]
        assert tail == [t.trade_id for t in trades]


async def test_metrics_count_market_updates_and_frames(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect

    async with market_harness(tmp_path / "data") as server:
        async with connect(server.ws + "/public/ws/btcusdt@depth@100ms") as ws:
            await server.advance(1000)
            for _ in range(10):
                await ws.recv()
        async with server.http.get(server.url + "/metrics") as response:
            text = await response.text()
        values = {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("userstream_market_")
        }
        assert values["userstream_market_updates_total"] > 0
        assert values["userstream_market_frames_delivered_total"] == 10
