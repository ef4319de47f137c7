"""ccxt.pro 4.5.90 `binanceusdm`, unmodified, trading against the venue (issue #12, "Tests
and proof"): markets, leverage, limit and market orders, cancel, open orders, balance,
positions, and the four user-data watches; the events it saw agree with the REST state it
reads afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from tests.compat.test_ccxt import _exchange
from tests.functional.venue_helpers import LiveVenue, live_venue
from userstream.accounts import Account

pytestmark = pytest.mark.compat

TIMEOUT_S = 5.0
SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[LiveVenue]:
    async with live_venue(tmp_path / "data") as harness:
        yield harness


@pytest.fixture
async def trader(venue: LiveVenue) -> AsyncIterator[tuple[Account, Any]]:
    account = venue.account()
    exchange = _exchange(venue, account)  # type: ignore[arg-type]
    try:
        yield account, exchange
    finally:
        await exchange.close()


async def test_ccxt_trades_and_its_watches_agree_with_rest(
    venue: LiveVenue, trader: tuple[Account, Any]
) -> None:
    account, exchange = trader
    markets = await exchange.load_markets()
    assert SYMBOL in markets
    await exchange.set_leverage(5, SYMBOL)
    assert (await exchange.fetch_balance())["USDT"]["total"] == 10000

    orders_watch = asyncio.create_task(exchange.watch_orders(SYMBOL))
    trades_watch = asyncio.create_task(exchange.watch_my_trades(SYMBOL))
    positions_watch = asyncio.create_task(exchange.watch_positions([SYMBOL]))
    balance_watch = asyncio.create_task(exchange.watch_balance())
    try:
        await venue.wait_subscribed(account)
        await asyncio.sleep(0.1)  # the watches register before the events arrive

        limit = await exchange.create_order(SYMBOL, "limit", "buy", 0.01, 10000)
        assert limit["status"] == "open"
        open_orders = await exchange.fetch_open_orders(SYMBOL)
        assert [o["id"] for o in open_orders] == [limit["id"]]
        cancelled = await exchange.cancel_order(limit["id"], SYMBOL)
        assert cancelled["status"] == "canceled"
        assert await exchange.fetch_open_orders(SYMBOL) == []

        market = await exchange.create_order(SYMBOL, "market", "buy", 0.01)
        assert market["status"] == "closed"
        assert market["filled"] == 0.01

        orders = await asyncio.wait_for(orders_watch, TIMEOUT_S)
        trades = await asyncio.wait_for(trades_watch, TIMEOUT_S)
        positions_seen = await asyncio.wait_for(positions_watch, TIMEOUT_S)
        balance_seen = await asyncio.wait_for(balance_watch, TIMEOUT_S)
    finally:
        for task in (orders_watch, trades_watch, positions_watch, balance_watch):
            task.cancel()

    assert orders[0]["id"] == limit["id"]
    # The fills ccxt watched are the order's fills.
    filled_by_watch = 0.0
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while filled_by_watch < 0.01 and asyncio.get_running_loop().time() < deadline:
        filled_by_watch = sum(t["amount"] for t in trades if t["order"] == market["id"])
        if filled_by_watch < 0.01:
            trades = await asyncio.wait_for(exchange.watch_my_trades(SYMBOL), TIMEOUT_S)
    assert round(filled_by_watch, 8) == 0.01

    positions = await exchange.fetch_positions([SYMBOL])
    (position,) = [p for p in positions if p["symbol"] == SYMBOL]
    assert position["contracts"] == 0.01
    assert position["side"] == "long"
    assert positions_seen == []  # watch_positions' first answer: the REST snapshot
    # Then ccxt folds each ACCOUNT_UPDATE into its cache of positions.
    watched: list[Any] = []
    for _ in range(int(TIMEOUT_S / 0.01)):
        watched = [p for p in exchange.positions["linear"] if p["symbol"] == SYMBOL]
        if watched:
            break
        await asyncio.sleep(0.01)
    assert watched[-1]["contracts"] == position["contracts"]
    assert watched[-1]["entryPrice"] == position["entryPrice"]

    balance = await exchange.fetch_balance()
    my_trades = await exchange.fetch_my_trades(SYMBOL)
    fees = sum(t["fee"]["cost"] for t in my_trades)
    assert float(balance["info"]["totalWalletBalance"]) == pytest.approx(10000 - fees)
    # ccxt's watched total is the event's wallet balance `wb`; its REST total is the margin
    # balance (wallet + unrealized PnL): compare like with like.
    (usdt,) = [a for a in balance["info"]["assets"] if a["asset"] == "USDT"]
    assert balance_seen["USDT"]["total"] == float(usdt["walletBalance"])


async def test_ccxt_sees_binance_errors(venue: LiveVenue, trader: tuple[Account, Any]) -> None:
    _, exchange = trader
    await exchange.load_markets()
    # On a non-Binance URL ccxt uses its generic map (spec §1.6): the code is in the message.
    with pytest.raises(ccxtpro.ExchangeError, match="-2019"):
        await exchange.create_order(SYMBOL, "market", "buy", 100)
    with pytest.raises(ccxtpro.OrderNotFound):
        await exchange.cancel_order("12345", SYMBOL)
    with pytest.raises(ccxtpro.MarginModeAlreadySet):
        await exchange.set_margin_mode("cross", SYMBOL)


async def test_generic_binance_class_loads_markets_from_a_futures_only_venue(
    venue: LiveVenue,
) -> None:
    """ccxt's generic `binance` (what many bots use for futures too) loads spot, margin and
    coin-M markets at start-up (`/api/v3/exchangeInfo`, `/sapi/v1/margin/allPairs`,
    `/sapi/v1/margin/isolated/allPairs`, `/dapi/v1/exchangeInfo`; `capital/config/getall`
    for currencies): the venue answers them as a futures-only venue, so it starts."""
    account = venue.account()
    exchange = ccxtpro.binance({"apiKey": account.api_key, "secret": account.secret_key})
    try:
        api = exchange.urls["api"]
        for name, url in list(api.items()):
            if isinstance(url, str):
                for host in (
                    "https://api.binance.com",
                    "https://fapi.binance.com",
                    "https://dapi.binance.com",
                ):
                    api[name] = api[name].replace(host, venue.url)
        markets = await exchange.load_markets()
        assert SYMBOL in markets
        assert all(m["swap"] for m in markets.values())
        currencies = await exchange.fetch_currencies()
        assert currencies == {} or currencies is None
        order = await exchange.create_order(SYMBOL, "market", "buy", 0.01)
        assert order["status"] == "closed"
    finally:
        await exchange.close()
