"""ccxt.pro 4.5.90 `binanceusdm`, unmodified, on the venue's risk side (issue 13 "Tests and
proof"): a stop placed with `triggerPrice` goes through the Algo Order API and `watch_orders`
sees it trigger; `fetch_funding_history` reads the FUNDING_FEE income; a liquidated position
shows in `watch_positions` and `watch_balance` as ccxt reports them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import ccxt.pro as ccxtpro
import pytest

from tests.conftest import START_MS, Harness
from tests.functional.market_helpers import get_json, market_harness
from userstream.accounts import Account
from userstream.market.synthetic import SyntheticMarket
from userstream.market.types import FundingSettlement
from userstream.symbols import load_symbol_table

pytestmark = pytest.mark.compat

SYMBOL = "BTC/USDT:USDT"
T = TypeVar("T")


def _exchange(server: Harness, account: Account) -> Any:
    exchange = ccxtpro.binanceusdm(
        {
            "apiKey": account.api_key,
            "secret": account.secret_key,
            "options": {"fetchCurrencies": False, "adjustForTimeDifference": True},
        }
    )
    api = exchange.urls["api"]
    for name, url in list(api.items()):
        if isinstance(url, str) and "fapi.binance.com" in url:
            api[name] = url.replace("https://fapi.binance.com", server.url)
    api["ws"]["linear"] = f"{server.ws}/ws"
    return exchange


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[tuple[Harness, Account, Any]]:
    source = SyntheticMarket(load_symbol_table().symbols, seed=7, start_ms=START_MS)
    async with market_harness(tmp_path / "data", source, initial_balance=Decimal(10000)) as h:
        await h.advance(2000)
        account = h.account()
        exchange = _exchange(h, account)
        try:
            await exchange.load_markets()
            yield h, account, exchange
        finally:
            await exchange.close()


async def _pump(server: Harness, pending: Awaitable[T], steps: int = 200) -> T:
    """Advance the market in 100 ms steps until `pending` (a ccxt watcher) completes."""
    task = asyncio.ensure_future(pending)
    try:
        for _ in range(steps):
            if task.done():
                return task.result()
            await server.advance(100)
            await asyncio.sleep(0.01)
        raise AssertionError("ccxt saw nothing")
    finally:
        if not task.done():
            task.cancel()


async def _settle(server: Harness) -> None:
    for _ in range(20):
        await server.advance(50)
        await asyncio.sleep(0.02)


async def _price(server: Harness) -> Decimal:
    _, body, _ = await get_json(server, "/fapi/v1/ticker/price?symbol=BTCUSDT")
    return Decimal(body["price"])


async def test_stop_through_the_algo_api_and_watch_orders(
    venue: tuple[Harness, Account, Any],
) -> None:
    server, _, exchange = venue
    await exchange.create_order(SYMBOL, "market", "buy", 0.01)
    price = await _price(server)
    trigger = float((price * Decimal("0.995")).quantize(Decimal("0.1")))
    stop = await exchange.create_order(
        SYMBOL, "market", "sell", 0.01, None, {"triggerPrice": trigger, "reduceOnly": True}
    )
    assert float(stop["triggerPrice"]) == trigger
    open_stops = await exchange.fetch_open_orders(SYMBOL, params={"trigger": True})
    assert [o["id"] for o in open_stops] == [stop["id"]]
    watching = asyncio.ensure_future(exchange.watch_orders(SYMBOL))
    await _settle(server)  # ccxt gets a listenKey and connects its stream
    moved = (price * Decimal("0.99")).quantize(Decimal("0.1"))
    status, _ = await server.admin(
        "POST", "market/price", {"symbol": "BTCUSDT", "price": str(moved)}
    )
    assert status == 200
    orders = await _pump(server, watching)
    seen = {o["id"]: o for o in orders}
    for _ in range(20):
        if stop["id"] in seen and seen[stop["id"]]["status"] != "open":
            break
        seen.update({o["id"]: o for o in await _pump(server, exchange.watch_orders(SYMBOL))})
    assert stop["id"] in seen
    assert seen[stop["id"]]["status"] != "open"
    positions = await exchange.fetch_positions([SYMBOL])
    assert all(float(p["contracts"] or 0) == 0 for p in positions)


async def test_fetch_funding_history_reads_the_funding_fee(
    venue: tuple[Harness, Account, Any],
) -> None:
    server, _, exchange = venue
    await exchange.create_order(SYMBOL, "market", "buy", 0.01)
    now = server.clock.now_ms()
    mark = server.server.venue.engine.risk.mark_price("BTCUSDT")
    server.server.venue.on_market([FundingSettlement("BTCUSDT", now, Decimal("0.0001"), mark)], now)
    history = await exchange.fetch_funding_history(SYMBOL)
    assert len(history) == 1
    expected = -(Decimal("0.01") * mark * Decimal("0.0001")).quantize(Decimal("0.00000001"))
    assert Decimal(str(history[0]["amount"])) == expected
    assert history[0]["code"] == "USDT"


async def test_a_liquidated_ccxt_position_in_watch_positions_and_watch_balance(
    venue: tuple[Harness, Account, Any],
) -> None:
    server, account, exchange = venue
    await exchange.create_order(SYMBOL, "market", "buy", 1)
    positions = asyncio.ensure_future(exchange.watch_positions([SYMBOL]))
    await _settle(server)
    status, body = await server.admin(
        "POST", f"accounts/{account.id}/liquidate", {"symbol": "BTCUSDT"}
    )
    assert status == 200, body
    seen = await _pump(server, positions)
    for _ in range(20):
        if any(float(p["contracts"] or 0) == 0 for p in seen):
            break
        seen = await _pump(server, exchange.watch_positions([SYMBOL]))
    assert any(p["symbol"] == SYMBOL and float(p["contracts"] or 0) == 0 for p in seen)
    balance = await exchange.fetch_balance()
    assert 0 <= balance["USDT"]["total"] < 10000
