"""python-binance 1.0.37, unmodified, on the Algo Order API (issue 13 item 1):
`futures_create_algo_order`, `futures_get_algo_order`, `futures_cancel_algo_order`."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ServerProcess

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from binance import Client
    from binance.exceptions import BinanceAPIException

pytestmark = pytest.mark.compat


@pytest.fixture
def client(server_process: ServerProcess) -> Iterator[Any]:
    class LocalClient(Client):  # type: ignore[misc]
        API_URL = f"{server_process.url}/api"
        FUTURES_URL = f"{server_process.url}/fapi"

    local = LocalClient(server_process.api_key, server_process.secret_key)
    yield local
    # The sync client opens an event loop of its own (`binance.helpers.get_loop`).
    local.close_connection()
    local.loop.close()
    asyncio.set_event_loop(None)


def test_create_get_cancel(client: Any) -> None:
    placed = client.futures_create_algo_order(
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="TAKE_PROFIT_MARKET",
        quantity="0.010",
        triggerPrice="1000000",
        clientAlgoId="pb-1",
    )
    assert (placed["algoStatus"], placed["clientAlgoId"]) == ("NEW", "pb-1")
    got = client.futures_get_algo_order(algoId=placed["algoId"])
    assert got["actualOrderId"] == ""
    cancelled = client.futures_cancel_algo_order(algoId=placed["algoId"])
    assert cancelled["code"] == "200"
    with pytest.raises(BinanceAPIException) as caught:
        client.futures_get_algo_order(algoId=placed["algoId"] + 100)
    assert caught.value.code == -20124
