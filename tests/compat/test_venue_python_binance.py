"""python-binance 1.0.37, unmodified, trading against the venue: `futures_create_order`
(sorted form body labelled `application/json`, `recvWindow=10000`), `futures_cancel_order`,
`futures_account`, `futures_position_information`, with its futures user socket; the events
it received agree with the REST state it reads afterwards."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.compat.test_python_binance import RECV_TIMEOUT_S
from tests.functional.venue_helpers import LiveVenue, live_venue

with warnings.catch_warnings():
    # python-binance imports `websockets.legacy`, which warns on import (its code, not ours).
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from binance import AsyncClient, BinanceSocketManager

pytestmark = pytest.mark.compat


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[LiveVenue]:
    async with live_venue(tmp_path / "data") as harness:
        yield harness


async def _recv_until(socket: Any, done: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or not done(seen[-1]):
        message = await asyncio.wait_for(socket.recv(), RECV_TIMEOUT_S)
        assert message.get("e") != "error", message
        seen.append(message)
    return seen


async def test_python_binance_trades_with_its_user_socket(venue: LiveVenue) -> None:
    account = venue.account()

    class LocalAsyncClient(AsyncClient):  # type: ignore[misc]
        API_URL = f"{venue.url}/api"
        FUTURES_URL = f"{venue.url}/fapi"

    class LocalBSM(BinanceSocketManager):  # type: ignore[misc]
        FSTREAM_URL = f"{venue.ws}/"

    client = await LocalAsyncClient.create(account.api_key, account.secret_key)
    try:
        bsm = LocalBSM(client, user_timeout=300)
        socket = await asyncio.wait_for(bsm.futures_user_socket().__aenter__(), RECV_TIMEOUT_S)
        try:
            await venue.wait_subscribed(account)
            resting = await client.futures_create_order(
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.010",
                price="10000",
            )
            assert resting["status"] == "NEW"
            assert resting["clientOrderId"].startswith("x-Cb7ytekJ")
            cancelled = await client.futures_cancel_order(
                symbol="BTCUSDT", orderId=resting["orderId"]
            )
            assert cancelled["status"] == "CANCELED"
            filled = await client.futures_create_order(
                symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.020"
            )
            assert isinstance(filled["orderId"], int)
            seen = await _recv_until(
                socket, lambda e: e["e"] == "ACCOUNT_UPDATE" and e["a"]["m"] == "ORDER"
            )
        finally:
            exiting = asyncio.create_task(socket.__aexit__(None, None, None))
            await asyncio.sleep(0)
            await venue.admin("POST", "connections/drop", {"code": 1000})
            await asyncio.wait_for(exiting, RECV_TIMEOUT_S)

        statuses = [(e["o"]["i"], e["o"]["X"]) for e in seen if e["e"] == "ORDER_TRADE_UPDATE"]
        assert (resting["orderId"], "NEW") in statuses
        assert (resting["orderId"], "CANCELED") in statuses
        assert (filled["orderId"], "FILLED") in statuses
        update = seen[-1]["a"]

        account_v2 = await client.futures_account()
        (usdt,) = [a for a in account_v2["assets"] if a["asset"] == "USDT"]
        assert Decimal(usdt["walletBalance"]) == Decimal(update["B"][0]["wb"])
        positions = await client.futures_position_information(symbol="BTCUSDT")
        (position,) = positions
        assert Decimal(position["positionAmt"]) == Decimal(update["P"][0]["pa"]) == Decimal("-0.02")
        assert Decimal(position["entryPrice"]) == Decimal(update["P"][0]["ep"])
        order = await client.futures_get_order(symbol="BTCUSDT", orderId=filled["orderId"])
        assert order["status"] == "FILLED"
    finally:
        await client.close_connection()
