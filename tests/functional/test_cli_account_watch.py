"""`userstream account watch --json` against a real `userstream serve` process: the demo
account's keys come from the data folder, and the one snapshot it prints is the venue's."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

from tests.conftest import start_server_process, stop_server_process
from userstream.protocol.signing import hmac_signature


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
