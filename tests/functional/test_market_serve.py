"""`userstream serve --market SPEC` (issue 11 item 4): the synthetic market on a real clock,
live on `/market` and `/public` at once and on the market REST."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect

from tests.conftest import start_server_process, stop_server_process

TIMEOUT_S = 5.0


@pytest.mark.parametrize(
    "extra", [[], ["--market", "synthetic:7"]], ids=["default (scripts/serve)", "seeded"]
)
async def test_serve_synthetic_market_live_on_market_and_public(
    tmp_path: Path, extra: list[str]
) -> None:
    proc = start_server_process(tmp_path / "data", *extra)
    try:
        async with (
            connect(f"{proc.ws}/market/stream?streams=btcusdt@aggTrade") as market,
            connect(f"{proc.ws}/public/ws/btcusdt@bookTicker") as public,
        ):
            agg = json.loads(await asyncio.wait_for(market.recv(), TIMEOUT_S))
            book = json.loads(await asyncio.wait_for(public.recv(), TIMEOUT_S))
        assert agg["stream"] == "btcusdt@aggTrade"
        assert agg["data"]["e"] == "aggTrade"
        assert book["e"] == "bookTicker"
        assert float(book["b"]) < float(book["a"])
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{proc.url}/fapi/v1/ticker/price?symbol=BTCUSDT") as response,
        ):
            ticker = await response.json()
        # BTCUSDT starts at its reference price (market/reference.py) and moves ~0.01 %/s.
        assert 60_000 < float(ticker["price"]) < 70_000
    finally:
        stop_server_process(proc)


def test_serve_rejects_an_unknown_market(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "userstream.cli", "serve", "--port", "0", "--data",
         str(tmp_path / "data"), "--market", "bogus"],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "--market bogus: expected synthetic[:SEED]" in result.stderr
