"""ccxt.pro 4.5.90 `binanceusdm`, unmodified, against the server (real-clients.md, "ccxt").

ccxt is asyncio (aiohttp), so it runs on the test's loop against the in-process `server`.
Its URLs are plain data in `exchange.urls`, rewritten to 127.0.0.1 as real-clients.md shows.
`watch_orders()` loads markets (`GET /fapi/v1/exchangeInfo`), POSTs `/fapi/v1/listenKey`,
then derives `/private/ws?listenKey=K` from the `linear` ws URL and dials it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from tests.conftest import Harness, event_fixture
from userstream.accounts import Account

pytestmark = pytest.mark.compat

TIMEOUT_S = 5.0


def _exchange(server: Harness, account: Account) -> Any:
    exchange = ccxtpro.binanceusdm(
        {
            "apiKey": account.api_key,
            "secret": account.secret_key,
            "options": {"fetchCurrencies": False},
        }
    )
    api = exchange.urls["api"]
    for name, url in list(api.items()):
        if isinstance(url, str) and "fapi.binance.com" in url:
            api[name] = url.replace("https://fapi.binance.com", server.url)
    api["ws"]["linear"] = f"{server.ws}/ws"
    return exchange


@pytest.fixture
async def account_and_exchange(server: Harness) -> AsyncIterator[tuple[Account, Any]]:
    account = server.account()
    exchange = _exchange(server, account)
    try:
        yield account, exchange
    finally:
        await exchange.close()


async def _wait_subscribed(server: Harness, account: Account) -> str:
    """The listenKey ccxt obtained, once its stream connection is subscribed to it."""
    for _ in range(int(TIMEOUT_S / 0.01)):
        record = server.server.key_store.active(account.id, server.clock.now_ms())
        if record is not None and server.server.gateway.subscribers(record.key):
            return record.key
        await asyncio.sleep(0.01)
    raise AssertionError("ccxt never connected a user data stream")


async def test_watch_orders_returns_published_order(
    server: Harness, account_and_exchange: tuple[Account, Any]
) -> None:
    account, exchange = account_and_exchange
    first = asyncio.create_task(exchange.watch_orders())
    try:
        key = await _wait_subscribed(server, account)
        assert exchange.options["linear"]["listenKey"] == key
        assert f"{server.ws}/private/ws?listenKey={key}" in exchange.clients
        assert "BTC/USDT:USDT" in exchange.markets  # loaded from our exchangeInfo
        # ccxt's keepalive: PUT with an empty form body and no listenKey (spec §2.2).
        assert await exchange.fapiPrivatePutListenKey() == {"listenKey": key}

        sent = event_fixture("order_trade_update_doc.json")
        await server.publish(account, sent)
        orders = await asyncio.wait_for(first, TIMEOUT_S)
    finally:
        first.cancel()

    assert len(orders) == 1
    order = orders[0]
    assert order["id"] == "8886774"
    assert order["clientOrderId"] == "TEST"
    assert order["symbol"] == "BTC/USDT:USDT"
    assert order["status"] == "open"  # X = NEW
    assert order["side"] == "sell"
    assert order["amount"] == 0.001
    assert order["filled"] == 0.0
    assert order["timestamp"] == sent["o"]["T"]
    assert order["info"] == sent["o"]

    # A second update on the same connection: the 2026 real-venue market order.
    sent = event_fixture("order_trade_update_real_2026.json")
    second = asyncio.create_task(exchange.watch_orders())
    try:
        await asyncio.sleep(0.05)  # let watch_orders() register before the event arrives
        await server.publish(account, sent)
        orders = await asyncio.wait_for(second, TIMEOUT_S)
    finally:
        second.cancel()
    order = orders[-1]
    assert order["id"] == "199033476993"
    assert order["clientOrderId"] == "SOLUSDT_BOTH_1771856732181_1"
    assert order["symbol"] == "SOL/USDT:USDT"
    assert order["type"] == "market"
    assert order["side"] == "buy"
    assert order["amount"] == 0.1
