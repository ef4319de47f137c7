"""`serve --strict-routing`: Binance's 2026 routing reproduced (market-data spec §1, user-data
spec §4.1). `/public` carries the book streams (and `@trade`), `/market` every other market
stream, `/private` user data, and an unrouted `/ws` or `/stream` is served as `/public`. A
stream on the wrong route is accepted and ACKed, listed, and never delivers. Without the
option every stream flows on every path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import Harness, event_fixture, start_server_process, stop_server_process
from tests.functional.market_helpers import market_harness
from tests.functional.stream_helpers import assert_quiet, assert_silent, new_account

MIXED = ["btcusdt@bookTicker", "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@markPrice@1s"]
PUBLIC = {"btcusdt@bookTicker", "btcusdt@trade"}
MARKET = {"btcusdt@aggTrade", "btcusdt@markPrice@1s"}


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[Harness]:
    async with market_harness(tmp_path / "data", strict_routing=True) as server:
        yield server


@pytest.fixture
async def lenient(tmp_path: Path) -> AsyncIterator[Harness]:
    async with market_harness(tmp_path / "data") as server:
        yield server


def _open(server: Harness, target: str) -> connect:
    return connect(server.ws + target, ping_interval=None, max_size=None, open_timeout=5)


async def _three_seconds(server: Harness, ws: ClientConnection) -> list[Any]:
    """Every frame `ws` receives while the market runs three seconds."""
    frames: list[Any] = []
    for _ in range(30):
        await server.advance(100)
        while True:
            try:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 0.05)))
            except TimeoutError:
                break
    return frames


async def _subscribed_mix(server: Harness, path: str) -> set[str]:
    """The names that delivered on `path` after SUBSCRIBE to both routes' streams."""
    async with _open(server, path) as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": MIXED, "id": 7}))
        assert json.loads(await ws.recv()) == {"result": None, "id": 7}
        frames = await _three_seconds(server, ws)
        assert sorted(await assert_quiet(ws)) == sorted(MIXED)  # the silent ones are listed
    return {frame["stream"] for frame in frames}


@pytest.mark.parametrize(
    ("path", "delivered"),
    [
        ("/public/stream", PUBLIC),
        ("/market/stream", MARKET),
        ("/stream", PUBLIC),  # unrouted: served as /public
        ("/private/stream", set()),
    ],
)
async def test_strict_subscribe_is_acked_and_only_the_routes_streams_deliver(
    strict: Harness, path: str, delivered: set[str]
) -> None:
    assert await _subscribed_mix(strict, path) == delivered


async def test_without_strict_routing_everything_flows_everywhere(lenient: Harness) -> None:
    assert await _subscribed_mix(lenient, "/public/stream") == PUBLIC | MARKET
    assert await _subscribed_mix(lenient, "/stream") == PUBLIC | MARKET


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("/public/ws/btcusdt@depth@100ms", "depthUpdate"),
        ("/ws/btcusdt@depth@100ms", "depthUpdate"),
        ("/market/ws/btcusdt@aggTrade", "aggTrade"),
        ("/market/ws/btcusdt@bookTicker", None),
        ("/public/ws/btcusdt@aggTrade", None),
        ("/ws/btcusdt@markPrice@1s", None),
        ("/private/ws/btcusdt@depth@100ms", None),
    ],
)
async def test_strict_raw_url_of_the_wrong_route_is_accepted_and_silent(
    strict: Harness, target: str, kind: str | None
) -> None:
    async with _open(strict, target) as ws:
        frames = await _three_seconds(strict, ws)
        if kind is None:
            assert frames == []
            await assert_silent(ws)  # still open: nothing refused the stream
        else:
            assert frames
            assert {frame["e"] for frame in frames} == {kind}


async def test_strict_legacy_path_carries_no_user_data(strict: Harness) -> None:
    account, key = await new_account(strict)
    order = event_fixture("order_trade_update_doc")
    async with _open(strict, f"/ws/{key}") as legacy, _open(strict, f"/private/ws/{key}") as ws:
        await strict.publish(account, order)
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == order
        await assert_silent(legacy)
        assert await assert_quiet(legacy) == [key]


async def test_serve_strict_routing_flag(tmp_path: Path) -> None:
    """`userstream serve --strict-routing` on a real clock: `/public` serves the book, and
    `@aggTrade` on it is ACKed and stays silent while the book flows."""
    proc = start_server_process(tmp_path / "data", "--strict-routing")
    try:
        async with connect(f"{proc.ws}/public/stream?streams=btcusdt@bookTicker") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": MIXED[2:], "id": 1}))
            frames = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(150)]
        assert {"result": None, "id": 1} in frames
        # At most one book frame per 50 ms tick: 150 frames span 7.5 s of a live market, in
        # which aggTrade and markPrice@1s frames would have come.
        assert {f["stream"] for f in frames if "stream" in f} == {"btcusdt@bookTicker"}
    finally:
        stop_server_process(proc)
