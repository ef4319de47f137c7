"""`userstream account watch --json` against a real `userstream serve` process: the demo
account's keys come from the data folder, and the one snapshot it prints is the venue's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from rich.console import Console

from tests.conftest import START_MS, Harness, start_server_process, stop_server_process
from tests.functional.market_helpers import market_harness
from tests.unit.client.mirror_events import account_event
from userstream import AccountMirror
from userstream.cli.account_watch import held_symbols, render
from userstream.cli.watch_marks import MarkFollower
from userstream.market.synthetic import SyntheticMarket
from userstream.protocol.signing import hmac_signature
from userstream.symbols import load_symbol_table


async def place_resting_buy(url: str, api_key: str, secret: str, client_id: str) -> None:
    """A LIMIT GTC buy 3 % below the mark (inside PERCENT_PRICE, never filled here)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/fapi/v1/premiumIndex?symbol=BTCUSDT") as response:
            mark = Decimal((await response.json())["markPrice"])
        price = (mark * Decimal("0.97")).quantize(Decimal("0.1"))
        params = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": str(price),
            "newClientOrderId": client_id,
            "timestamp": str(time.time_ns() // 1_000_000),
        }
        query = urlencode(params)
        signature = hmac_signature(secret.encode(), query.encode())
        async with http.post(
            f"{url}/fapi/v1/order?{query}&signature={signature}",
            headers={"X-MBX-APIKEY": api_key},
        ) as response:
            assert response.status == 200, await response.text()


def test_watch_json_prints_one_consistent_snapshot(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = start_server_process(data, "--initial-balance", "10000", "--market", "synthetic:7")
    try:
        port = proc.url.rsplit(":", 1)[1]
        asyncio.run(place_resting_buy(proc.url, proc.api_key, proc.secret_key, "watch-1"))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "userstream.cli",
                "account",
                "watch",
                "--local",
                "--port",
                port,
                "--data",
                str(data),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stop_server_process(proc)
    assert done.returncode == 0, done.stderr
    snapshot = json.loads(done.stdout)
    usdt = next(b for b in snapshot["balances"] if b["asset"] == "USDT")
    assert Decimal(usdt["wallet_balance"]) == 10_000
    assert [o["client_order_id"] for o in snapshot["openOrders"]] == ["watch-1"]
    assert snapshot["health"]["consistent"] is True
    assert snapshot["health"]["resyncs"] >= 1


async def _mark_after_moving_to(server: Harness, marks: MarkFollower, price: int) -> Decimal:
    status, body = await server.admin(
        "POST", "market/price", {"symbol": "BTCUSDT", "price": str(price)}
    )
    assert status == 200, body
    for _ in range(100):
        await server.advance(1000)
        await asyncio.sleep(0.05)
        mark = marks.marks.get("BTCUSDT")
        if mark is not None and abs(mark - price) < 50:
            return mark
    raise AssertionError(f"the streamed mark never reached {price}: {marks.marks}")


async def test_watch_upnl_follows_the_streamed_mark(tmp_path: Path) -> None:
    source = SyntheticMarket(load_symbol_table().symbols, seed=3, start_ms=START_MS)
    async with market_harness(tmp_path / "data", source) as server:
        mirror = AccountMirror("k" * 64, "s" * 64)
        mirror.apply(account_event(time=11, wallet="1000", position="2", entry="100"))
        marks = MarkFollower(server.ws, lambda: held_symbols(mirror))
        follower = asyncio.create_task(marks.run())
        try:
            for price in (50_000, 40_000):
                mark = await _mark_after_moving_to(server, marks, price)
                console = Console(record=True, width=200)
                console.print(render(mirror, marks.marks))
                assert str(2 * (mark - 100)) in console.export_text()
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
