"""`POST /admin/v1/market/fundingNow` on a real server with a seeded market (issue 13 item 6):
positions pay or receive exactly notional × rate at once, through the same settlement a
scheduled funding instant makes; bad input is refused and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import ADMIN_TOKEN, START_MS, Harness
from tests.functional.market_helpers import get_json, market_harness
from tests.functional.venue_helpers import signed
from tests.functional.wsclient import recv_json, ws_connect
from userstream.accounts import Account
from userstream.market.synthetic import SyntheticMarket
from userstream.symbols import load_symbol_table

RATE = Decimal("0.0005")


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Harness]:
    source = SyntheticMarket(load_symbol_table().symbols, seed=5, start_ms=START_MS)
    async with market_harness(tmp_path / "data", source, initial_balance=Decimal(10000)) as h:
        await h.advance(2000)
        yield h


async def _open(venue: Harness, account: Account, side: str) -> None:
    status, body, _ = await signed(
        venue,
        account,
        "POST",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": "0.100"},
    )
    assert status == 200, body


async def _wallet(venue: Harness, account: Account) -> Decimal:
    status, rows, _ = await signed(venue, account, "GET", "/fapi/v3/balance")
    assert status == 200, rows
    return Decimal(next(row for row in rows if row["asset"] == "USDT")["balance"])


async def _funding_income(venue: Harness, account: Account) -> list[Any]:
    status, rows, _ = await signed(
        venue, account, "GET", "/fapi/v1/income", {"incomeType": "FUNDING_FEE"}
    )
    assert status == 200, rows
    return list(rows)


async def _funding_update(ws: ClientConnection) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(recv_json(ws), 5)
        if event["e"] == "ACCOUNT_UPDATE" and event["a"]["m"] == "FUNDING_FEE":
            return dict(event)


async def _raw_admin(venue: Harness, path: str, body: bytes) -> tuple[int, Any]:
    async with venue.http.post(
        f"{venue.url}/admin/v1/{path}",
        data=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json(content_type=None)


async def test_funding_now_pays_and_receives_notional_times_rate(venue: Harness) -> None:
    long, short = venue.account("long"), venue.account("short")
    await _open(venue, long, "BUY")
    await _open(venue, short, "SELL")
    status, body = await venue.admin(
        "POST", "market/funding", {"symbol": "BTCUSDT", "rate": str(RATE)}
    )
    assert status == 200, body
    await venue.advance(2000)
    streams = {
        account.id: await ws_connect(
            f"{venue.ws}/private/ws?listenKey={await venue.listen_key(account)}"
        )
        for account in (long, short)
    }
    try:
        before = {account.id: await _wallet(venue, account) for account in (long, short)}
        _, history_before, _ = await get_json(venue, "/fapi/v1/fundingRate?symbol=BTCUSDT")

        status, body = await venue.admin("POST", "market/fundingNow", {"symbol": "BTCUSDT"})
        assert status == 200, body
        now = body["time"]
        assert venue.clock.now_ms() - 100 < now <= venue.clock.now_ms()
        (settled,) = body["settlements"]
        assert (body["applied"], body["symbol"]) == ("fundingNow", "BTCUSDT")
        assert (settled["symbol"], settled["fundingTime"]) == ("BTCUSDT", now)
        assert settled["fundingRate"] == "0.00050000"
        mark = Decimal(settled["markPrice"])
        _, premium, _ = await get_json(venue, "/fapi/v1/premiumIndex?symbol=BTCUSDT")
        assert Decimal(premium["markPrice"]) == mark  # the current mark

        owed = (Decimal("0.100") * mark * RATE).quantize(Decimal("1E-8"), rounding=ROUND_HALF_UP)
        assert owed > 0
        for account, income in ((long, -owed), (short, owed)):
            update = await _funding_update(streams[account.id])
            (balance,) = update["a"]["B"]
            assert Decimal(balance["bc"]) == income
            assert Decimal(balance["wb"]) == before[account.id] + income
            (row,) = await _funding_income(venue, account)
            assert (row["symbol"], Decimal(row["income"]), row["time"]) == (
                "BTCUSDT",
                income,
                now,
            )
            assert await _wallet(venue, account) == before[account.id] + income

        _, history, _ = await get_json(venue, "/fapi/v1/fundingRate?symbol=BTCUSDT")
        assert history == [
            *history_before,
            {
                "symbol": "BTCUSDT",
                "fundingTime": now,
                "fundingRate": "0.00050000",
                "markPrice": settled["markPrice"],
            },
        ]
    finally:
        for ws in streams.values():
            await ws.close()


async def test_funding_now_without_symbol_settles_every_symbol(venue: Harness) -> None:
    status, body = await venue.admin("POST", "market/fundingNow", {})
    assert status == 200, body
    symbols = {row["symbol"] for row in body["settlements"]}
    _, marks, _ = await get_json(venue, "/fapi/v1/premiumIndex")
    assert symbols == {mark["symbol"] for mark in marks}
    assert len(symbols) > 1
    _, history, _ = await get_json(venue, "/fapi/v1/fundingRate?limit=1000")
    assert {r["symbol"] for r in history if r["fundingTime"] == body["time"]} == symbols


async def test_bad_funding_now_changes_nothing(venue: Harness) -> None:
    account = venue.account()
    await _open(venue, account, "BUY")
    wallet = await _wallet(venue, account)
    _, history, _ = await get_json(venue, "/fapi/v1/fundingRate?limit=1000")

    status, body = await venue.admin("POST", "market/fundingNow", {"symbol": "NOPE"})
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    status, body = await venue.admin("POST", "market/fundingNow", {"symbol": 5})
    assert (status, body["code"]) == (400, -1130)
    assert "Expected `str | null`, got `int`" in body["msg"], body
    status, body = await venue.admin("POST", "market/fundingNow", {"symbol": "BTCUSDT", "x": 1})
    assert (status, body["code"]) == (400, -1130)
    status, body = await _raw_admin(venue, "market/fundingNow", b'{"symbol": ')
    assert (status, body["code"]) == (400, -1130)
    assert body["msg"].startswith("Invalid JSON"), body
    async with venue.http.get(
        f"{venue.url}/admin/v1/market/fundingNow",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as response:
        assert response.status == 404

    assert await _wallet(venue, account) == wallet
    assert await _funding_income(venue, account) == []
    _, after, _ = await get_json(venue, "/fapi/v1/fundingRate?limit=1000")
    assert after == history
