"""python-binance 1.0.37, unmodified, on the Algo Order API (issue 13 item 1):
`futures_create_algo_order`, `futures_get_algo_order`, `futures_cancel_algo_order`."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from tests.conftest import ServerProcess

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from binance import Client
    from binance.exceptions import BinanceAPIException

pytestmark = pytest.mark.compat


def _client(proc: ServerProcess) -> Any:
    class LocalClient(Client):  # type: ignore[misc]
        API_URL = f"{proc.url}/api"
        FUTURES_URL = f"{proc.url}/fapi"

    return LocalClient(proc.api_key, proc.secret_key)


def test_create_get_cancel(server_process: ServerProcess) -> None:
    client = _client(server_process)
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
