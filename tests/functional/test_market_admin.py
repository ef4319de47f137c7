"""Operator moves through `POST /admin/v1/market/<move>` on the seeded synthetic market (issue
11 item 4): each shows on the same REST a bot reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import START_MS, Harness
from tests.functional.market_helpers import get_json, market_harness
from tests.market_source import TinyMarket
from userstream.market.synthetic import SyntheticMarket
from userstream.symbols import load_symbol_table


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Harness]:
    source = SyntheticMarket(load_symbol_table().symbols, seed=3, start_ms=START_MS)
    async with market_harness(tmp_path / "data", source) as server:
        await server.advance(2000)
        yield server


async def _price(server: Harness) -> Decimal:
    _, body, _ = await get_json(server, "/fapi/v1/ticker/bookTicker?symbol=BTCUSDT")
    return (Decimal(body["bidPrice"]) + Decimal(body["askPrice"])) / 2


async def test_set_price_and_crash(market: Harness) -> None:
    status, body = await market.admin(
        "POST", "market/price", {"symbol": "BTCUSDT", "price": "50000"}
    )
    assert status == 200, body
    assert body == {"applied": "price", "symbol": "BTCUSDT", "time": market.clock.now_ms()}
    await market.advance(1000)
    assert abs(await _price(market) - 50_000) < 50
    status, body = await market.admin(
        "POST", "market/crash", {"symbol": "BTCUSDT", "percent": "10", "seconds": 5}
    )
    assert status == 200, body
    await market.advance(6000)
    assert abs(await _price(market) - 45_000) < 100


async def test_pause_spread_thin_funding(market: Harness) -> None:
    assert (await market.admin("POST", "market/pause", {"symbol": "ETHUSDT"}))[0] == 200
    await market.advance(500)
    _, before, _ = await get_json(market, "/fapi/v1/trades?symbol=ETHUSDT&limit=1")
    await market.advance(3000)
    _, after, _ = await get_json(market, "/fapi/v1/trades?symbol=ETHUSDT&limit=1")
    assert after == before  # no trade while paused
    assert (await market.admin("POST", "market/resume", {}))[0] == 200

    assert (await market.admin("POST", "market/spread", {"symbol": "BTCUSDT", "ticks": 5}))[
        0
    ] == 200
    await market.advance(1000)
    _, book, _ = await get_json(market, "/fapi/v1/ticker/bookTicker?symbol=BTCUSDT")
    assert Decimal(book["askPrice"]) - Decimal(book["bidPrice"]) >= Decimal("0.5")

    _, deep, _ = await get_json(market, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
    status, _ = await market.admin("POST", "market/thin", {"symbol": "BTCUSDT", "factor": 0.1})
    assert status == 200
    await market.advance(1000)
    _, thin, _ = await get_json(market, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
    total = sum(Decimal(q) for _, q in deep["bids"])
    assert sum(Decimal(q) for _, q in thin["bids"]) < total / 2

    status, _ = await market.admin("POST", "market/funding", {"rate": "0.0005"})
    assert status == 200
    await market.advance(2000)
    _, premium, _ = await get_json(market, "/fapi/v1/premiumIndex?symbol=SOLUSDT")
    assert premium["lastFundingRate"] == "0.00050000"


async def test_bad_moves(market: Harness) -> None:
    status, body = await market.admin("POST", "market/price", {"symbol": "NOPE", "price": "1"})
    assert (status, body["code"]) == (400, -1121)
    status, body = await market.admin("POST", "market/price", {"symbol": "BTCUSDT", "price": "-1"})
    assert (status, body["code"]) == (400, -1130)
    status, _ = await market.admin("POST", "market/teleport", {})
    assert status == 404


async def test_a_source_without_controls_answers_409(tmp_path: Path) -> None:
    async with market_harness(tmp_path / "data", TinyMarket()) as server:
        status, body = await server.admin("POST", "market/pause", {})
        assert status == 409, body
