"""`--market upstream:URL` against a second userstream server on loopback acting as the
upstream (issue 11 item 1): what the follower serves equals what the upstream served."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import START_MS, Harness
from tests.functional.market_helpers import get_json, market_harness
from userstream.clock import ManualClock
from userstream.exceptions import ConfigurationError
from userstream.market.replay import ReplayMarket
from userstream.market.replay_sample import write_sample
from userstream.server.market import open_market_source
from userstream.server.market_feed import FollowedUpstream
from userstream.symbols import load_symbol_table

STEP_MS = 250


async def _step(clock: ManualClock, upstream: Harness, follower: Harness) -> None:
    await clock.advance(STEP_MS)
    upstream.server.scheduler.run_due()
    await asyncio.sleep(0.02)  # the frames cross the loopback
    follower.server.scheduler.run_due()


async def _rest(server: Harness, path: str) -> Any:
    status, body, _ = await get_json(server, path)
    assert status == 200, body
    return body


@pytest.mark.parametrize("trades", ["aggTrade", "trade"])
async def test_a_follower_serves_what_its_upstream_served_across_a_reconnect(
    tmp_path: Path, trades: str
) -> None:
    write_sample(tmp_path / "files")
    table = load_symbol_table()
    clock = ManualClock(START_MS)
    replay = ReplayMarket(tmp_path / "files", table.symbols, speed=20, start_ms=START_MS + 1_000)
    # The upstream routes as Binance does since 2026 (`--strict-routing`): each stream is
    # followed on its own route.
    async with market_harness(tmp_path / "a", replay, clock=clock, strict_routing=True) as upstream:
        source = open_market_source(
            f"upstream:{upstream.server.ws_url}?symbols=BTCUSDT&trades={trades}",
            table,
            clock.now_ms(),
        )
        assert isinstance(source, FollowedUpstream)
        async with market_harness(tmp_path / "b", source, clock=clock) as follower:
            for connected in source.connected.values():
                await asyncio.wait_for(connected.wait(), 5)
            for step in range(int(16_000 / STEP_MS)):  # 5 file minutes at 20x, and the rest
                await _step(clock, upstream, follower)
                if step == 20:  # the upstream drops us: reconnect, resync the book, go on
                    assert upstream.server.drop_connections(None, 1001) == 2
                    for _ in range(500):
                        if source.opened == {"public": 2, "market": 2}:
                            break
                        await asyncio.sleep(0.01)
                    assert source.opened == {"public": 2, "market": 2}
            for _ in range(8):  # the replay is over: the last frames are flushed and folded
                await _step(clock, upstream, follower)
            query = "?symbol=BTCUSDT&limit=1000"
            their_trades = await _rest(upstream, f"/fapi/v1/trades{query}")
            our_trades = await _rest(follower, f"/fapi/v1/trades{query}")
            assert len(our_trades) == 1000
            if trades == "trade":
                # the tape itself; aggregates are the follower's own (when a fold closes
                # them depends on when frames arrive, and @trade has no taker-order id)
                assert our_trades == their_trades
            else:
                theirs = await _rest(upstream, f"/fapi/v1/aggTrades{query}")
                ours = await _rest(follower, f"/fapi/v1/aggTrades{query}")
                assert len(ours) > 500
                assert ours == theirs
                # an aggregate's fills: ids, price and side are the upstream's, sizes invented
                assert [(t["id"], t["price"], t["isBuyerMaker"]) for t in our_trades] == [
                    (t["id"], t["price"], t["isBuyerMaker"]) for t in their_trades
                ]
            their_book = await _rest(upstream, f"/fapi/v1/depth{query}")
            our_book = await _rest(follower, f"/fapi/v1/depth{query}")
            for key in ("lastUpdateId", "bids", "asks"):
                assert our_book[key] == their_book[key]
            theirs_mark = await _rest(upstream, "/fapi/v1/premiumIndex?symbol=BTCUSDT")
            ours_mark = await _rest(follower, "/fapi/v1/premiumIndex?symbol=BTCUSDT")
            for key in ("markPrice", "indexPrice", "lastFundingRate", "nextFundingTime"):
                assert ours_mark[key] == theirs_mark[key]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("upstream:http://127.0.0.1:1", "expected a ws:// or wss:// URL"),
        ("upstream:ws://127.0.0.1:1?speed=2", "unknown option 'speed'"),
        ("upstream:ws://127.0.0.1:1?symbols=NOPEUSDT", "NOPEUSDT is not in exchangeInfo"),
        ("upstream:ws://127.0.0.1:1?trades=kline", "trades must be aggTrade or trade"),
    ],
)
def test_bad_upstream_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_market_source(spec, load_symbol_table(), START_MS)


@pytest.mark.parametrize(
    ("spec", "stream", "rest"),
    [
        (
            "upstream:wss://fstream.binance.com",
            "wss://fstream.binance.com",
            "https://fapi.binance.com",
        ),
        ("upstream:ws://127.0.0.1:9000/", "ws://127.0.0.1:9000", "http://127.0.0.1:9000"),
        (
            "upstream:wss://venue.example/?rest=https://api.venue.example",
            "wss://venue.example",
            "https://api.venue.example",
        ),
    ],
)
def test_upstream_urls(spec: str, stream: str, rest: str) -> None:
    source = open_market_source(spec, load_symbol_table(), START_MS)
    assert isinstance(source, FollowedUpstream)
    assert (source.stream_url, source.rest_url) == (stream, rest)
    assert source.url_of("public") == f"{stream}/public/stream?streams=" + "/".join(
        f"{s.lower()}@depth@100ms" for s in source.symbols
    )
