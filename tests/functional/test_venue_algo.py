"""The Algo Order API, income and the mode switches on a real server with a seeded market
(issue 13 items 1, 4, 5): a stop triggers when the operator moves the price, the stream shows
its ALGO_UPDATEs and the child order, and REST agrees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import START_MS, Harness
from tests.functional.market_helpers import get_json, market_harness
from tests.functional.test_wsapi import WS_API, call
from tests.functional.test_wsapi_trading import hmac_params
from tests.functional.venue_helpers import signed
from tests.functional.wsclient import recv_json, ws_connect
from userstream.accounts import Account
from userstream.market.synthetic import SyntheticMarket
from userstream.symbols import load_symbol_table


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Harness]:
    source = SyntheticMarket(load_symbol_table().symbols, seed=5, start_ms=START_MS)
    async with market_harness(tmp_path / "data", source, initial_balance=Decimal(10000)) as h:
        await h.advance(2000)
        yield h


async def _stream(server: Harness, account: Account) -> ClientConnection:
    key = await server.listen_key(account)
    return await ws_connect(f"{server.ws}/private/ws?listenKey={key}")


async def _until(
    server: Harness, ws: ClientConnection, done: str, steps: int = 40
) -> list[dict[str, Any]]:
    """Advance the market in 250 ms steps, collecting events until one has kind `done`."""
    seen: list[dict[str, Any]] = []
    for _ in range(steps):
        await server.advance(250)
        try:
            while True:
                event = await asyncio.wait_for(recv_json(ws), 0.05)
                seen.append(event)
                if _kind(event) == done:
                    return seen
        except TimeoutError:
            continue
    raise AssertionError(f"no {done} in {seen}")


def _kind(event: dict[str, Any]) -> str:
    if event["e"] == "ALGO_UPDATE":
        return f"ALGO_UPDATE:{event['o']['X']}"
    if event["e"] == "ORDER_TRADE_UPDATE":
        return f"ORDER_TRADE_UPDATE:{event['o']['x']}"
    if event["e"] == "ACCOUNT_UPDATE":
        return f"ACCOUNT_UPDATE:{event['a']['m']}"
    return str(event["e"])


async def _last_price(server: Harness) -> Decimal:
    _, body, _ = await get_json(server, "/fapi/v1/ticker/price?symbol=BTCUSDT")
    return Decimal(body["price"])


async def test_stop_market_triggers_and_rest_agrees(venue: Harness) -> None:
    account = venue.account()
    ws = await _stream(venue, account)
    try:
        status, order, _ = await signed(
            venue,
            account,
            "POST",
            "/fapi/v1/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"},
        )
        assert status == 200, order
        price = await _last_price(venue)
        trigger = (price * Decimal("0.995")).quantize(Decimal("0.1"))
        status, algo, headers = await signed(
            venue,
            account,
            "POST",
            "/fapi/v1/algoOrder",
            {
                "algoType": "CONDITIONAL",
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "STOP_MARKET",
                "triggerPrice": str(trigger),
                "closePosition": "true",
                "workingType": "CONTRACT_PRICE",
                "clientAlgoId": "sl-1",
            },
            in_body=True,
        )
        assert status == 200, algo
        assert headers["X-MBX-ORDER-COUNT-1M"] == "2"
        assert (algo["algoStatus"], algo["clientAlgoId"], algo["orderType"]) == (
            "NEW",
            "sl-1",
            "STOP_MARKET",
        )
        assert algo["triggerPrice"] == f"{trigger:.2f}"
        assert isinstance(algo["algoId"], int)
        status, rows, _ = await signed(venue, account, "GET", "/fapi/v1/openAlgoOrders")
        assert [r["algoId"] for r in rows] == [algo["algoId"]]
        status, query, _ = await signed(
            venue, account, "GET", "/fapi/v1/algoOrder", {"clientAlgoId": "sl-1"}
        )
        assert (status, query["actualOrderId"]) == (200, "")

        moved = (price * Decimal("0.99")).quantize(Decimal("0.1"))
        status, _ = await venue.admin(
            "POST", "market/price", {"symbol": "BTCUSDT", "price": str(moved)}
        )
        assert status == 200
        events = await _until(venue, ws, "ALGO_UPDATE:FINISHED")
        kinds = [_kind(e) for e in events]
        start = kinds.index("ALGO_UPDATE:TRIGGERING")
        assert kinds[start : start + 3] == [
            "ALGO_UPDATE:TRIGGERING",
            "ALGO_UPDATE:TRIGGERED",
            "ORDER_TRADE_UPDATE:NEW",
        ]
        child = events[start + 2]["o"]
        assert (child["o"], child["ot"], child["cp"]) == ("MARKET", "STOP_MARKET", True)
        assert events[start + 1]["o"]["ai"] == str(child["i"])

        status, query, _ = await signed(
            venue, account, "GET", "/fapi/v1/algoOrder", {"algoId": algo["algoId"]}
        )
        assert (query["algoStatus"], query["actualOrderId"]) == ("FINISHED", str(child["i"]))
        status, placed, _ = await signed(
            venue, account, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": child["i"]}
        )
        assert (status, placed["status"]) == (200, "FILLED")
        status, risk, _ = await signed(venue, account, "GET", "/fapi/v3/positionRisk")
        assert risk == []

        status, income, _ = await signed(venue, account, "GET", "/fapi/v1/income")
        assert status == 200, income
        types = [row["incomeType"] for row in income]
        assert types[0] == "TRANSFER"
        assert "REALIZED_PNL" in types
        assert all(
            row["income"].startswith("-") for row in income if row["incomeType"] == "COMMISSION"
        )
    finally:
        await ws.close()


async def test_algo_refusals_cancel_and_modes(venue: Harness) -> None:
    account = venue.account()
    price = await _last_price(venue)
    base = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "STOP_MARKET",
        "quantity": "0.010",
    }
    status, body, _ = await signed(
        venue, account, "POST", "/fapi/v1/algoOrder", {**base, "triggerPrice": str(price - 100)}
    )
    assert (status, body) == (400, {"code": -2021, "msg": "Order would immediately trigger."})
    status, algo, _ = await signed(
        venue, account, "POST", "/fapi/v1/algoOrder", {**base, "triggerPrice": str(price + 500)}
    )
    assert status == 200, algo
    status, body, _ = await signed(
        venue, account, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"}
    )
    assert body == {
        "code": -4067,
        "msg": "Position side cannot be changed if there exists open orders.",
    }
    status, body, _ = await signed(
        venue, account, "DELETE", "/fapi/v1/algoOrder", {"algoId": algo["algoId"]}
    )
    assert body == {
        "algoId": algo["algoId"],
        "clientAlgoId": algo["clientAlgoId"],
        "code": "200",
        "msg": "success",
    }
    status, body, _ = await signed(
        venue, account, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"}
    )
    assert (status, body) == (200, {"code": 200, "msg": "success"})
    status, body, _ = await signed(venue, account, "GET", "/fapi/v1/positionSide/dual")
    assert body == {"dualSidePosition": True}
    for side, position_side in (("BUY", "LONG"), ("SELL", "SHORT")):
        status, body, _ = await signed(
            venue,
            account,
            "POST",
            "/fapi/v1/order",
            {
                "symbol": "BTCUSDT",
                "side": side,
                "positionSide": position_side,
                "type": "MARKET",
                "quantity": "0.010",
            },
        )
        assert status == 200, body
    status, rows, _ = await signed(venue, account, "GET", "/fapi/v3/positionRisk")
    assert sorted((r["positionSide"], r["positionAmt"]) for r in rows) == [
        ("LONG", "0.010"),
        ("SHORT", "-0.010"),
    ]
    status, rows, _ = await signed(venue, account, "GET", "/fapi/v1/allAlgoOrders")
    assert [r["algoStatus"] for r in rows] == ["CANCELED"]


async def test_a_crash_liquidates_and_feeds_force_order(venue: Harness) -> None:
    account = venue.account()
    ws = await _stream(venue, account)
    market_ws = await ws_connect(f"{venue.ws}/market/stream?streams=btcusdt@forceOrder")
    try:
        status, body, _ = await signed(
            venue,
            account,
            "POST",
            "/fapi/v1/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"},
        )
        assert status == 200, body
        status, rows, _ = await signed(venue, account, "GET", "/fapi/v3/positionRisk")
        (row,) = rows
        liquidation = Decimal(row["liquidationPrice"])
        assert 0 < liquidation < Decimal(row["markPrice"])
        status, body = await venue.admin(
            "POST", "market/crash", {"symbol": "BTCUSDT", "percent": "30", "seconds": 2}
        )
        assert status == 200, body
        events = await _until(venue, ws, "ACCOUNT_UPDATE:ORDER", steps=80)
        events += await _until(venue, ws, "ACCOUNT_UPDATE:ORDER", steps=80)
        kinds = [_kind(e) for e in events]
        assert "MARGIN_CALL" in kinds
        forced = next(e for e in events if _kind(e) == "ORDER_TRADE_UPDATE:CALCULATED")["o"]
        assert forced["c"].startswith("autoclose-")
        assert (forced["o"], forced["X"], forced["f"]) == ("LIQUIDATION", "FILLED", "IOC")
        assert events[-1]["a"]["P"][0]["pa"] == "0"
        frame = await asyncio.wait_for(recv_json(market_ws), 5)
        assert frame["data"]["o"]["S"] == "SELL"
        assert frame["data"]["o"]["q"] == "1.000"
        status, risk, _ = await signed(venue, account, "GET", "/fapi/v3/positionRisk")
        assert risk == []
        status, balance, _ = await signed(venue, account, "GET", "/fapi/v3/balance")
        usdt = next(row for row in balance if row["asset"] == "USDT")
        assert Decimal(usdt["balance"]) >= 0
    finally:
        await ws.close()
        await market_ws.close()


async def test_admin_drives_a_position_to_margin_call_then_liquidation(venue: Harness) -> None:
    account = venue.account()
    ws = await _stream(venue, account)
    try:
        status, body = await venue.admin(
            "POST", f"accounts/{account.id}/liquidate", {"symbol": "BTCUSDT"}
        )
        assert status == 400, body  # no position yet
        status, body, _ = await signed(
            venue,
            account,
            "POST",
            "/fapi/v1/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"},
        )
        assert status == 200, body
        status, body = await venue.admin(
            "POST", f"accounts/{account.id}/marginCall", {"symbol": "BTCUSDT"}
        )
        assert status == 200, body
        assert Decimal(body["price"]) < Decimal(body["target"])
        events = await _until(venue, ws, "MARGIN_CALL", steps=120)
        assert "ORDER_TRADE_UPDATE:CALCULATED" not in [_kind(e) for e in events]
        call = events[-1]
        assert call["p"][0]["mt"] == "CROSSED"
        status, body = await venue.admin(
            "POST", f"accounts/{account.id}/liquidate", {"symbol": "BTCUSDT"}
        )
        assert status == 200, body
        events = await _until(venue, ws, "ORDER_TRADE_UPDATE:CALCULATED", steps=120)
        assert events[-1]["o"]["c"].startswith("autoclose-")
    finally:
        await ws.close()


async def test_ws_api_algo_order_place_and_cancel(venue: Harness) -> None:
    account = venue.account()
    now = venue.clock.now_ms()
    params = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "STOP_MARKET",
        "quantity": "0.010",
        "triggerPrice": "1000000",
        "clientAlgoId": "ws-1",
    }
    async with ws_connect(venue.ws + WS_API) as ws:
        placed = await call(ws, "algoOrder.place", hmac_params(account, now, **params))
        assert placed["status"] == 200, placed
        assert placed["result"]["algoStatus"] == "NEW"
        cancelled = await call(
            ws, "algoOrder.cancel", hmac_params(account, now, clientAlgoId="ws-1")
        )
        assert cancelled["result"]["code"] == "200", cancelled


async def test_adl_quantile_ranks_the_profitable_side(venue: Harness) -> None:
    long, short = venue.account("long"), venue.account("short")
    for account, side in ((long, "BUY"), (short, "SELL")):
        status, body, _ = await signed(
            venue,
            account,
            "POST",
            "/fapi/v1/order",
            {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": "0.010"},
        )
        assert status == 200, body
    status, body = await venue.admin(
        "POST", "market/crash", {"symbol": "BTCUSDT", "percent": "5", "seconds": 1}
    )
    assert status == 200, body
    for _ in range(8):
        await venue.advance(250)
    # The short alone on its side and in profit heads its ADL queue; the losing long scores 0.
    for account, expected in ((short, 4), (long, 0)):
        status, rows, _ = await signed(venue, account, "GET", "/fapi/v3/positionRisk")
        assert status == 200, rows
        assert [row["adl"] for row in rows] == [expected]
        status, rows, _ = await signed(
            venue, account, "GET", "/fapi/v1/adlQuantile", {"symbol": "BTCUSDT"}
        )
        assert status == 200, rows
        assert rows == [
            {"symbol": "BTCUSDT", "adlQuantile": {"LONG": 0, "SHORT": 0, "BOTH": expected}}
        ]
    status, rows, _ = await signed(
        venue, short, "GET", "/fapi/v1/adlQuantile", {"symbol": "ETHUSDT"}
    )
    assert (status, rows) == (200, [])


async def test_admin_margin_call_aims_at_the_engines_ratio(venue: Harness) -> None:
    account = venue.account()
    status, body, _ = await signed(
        venue,
        account,
        "POST",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"},
    )
    assert status == 200, body
    targets = []
    for ratio in (Decimal("0.8"), Decimal("0.5")):
        venue.server.venue.engine.risk.margin_call_ratio = ratio
        status, body = await venue.admin(
            "POST", f"accounts/{account.id}/marginCall", {"symbol": "BTCUSDT"}
        )
        assert status == 200, body
        targets.append(Decimal(body["target"]))
    # A lower call ratio is reached further from the liquidation price: a higher price for a long.
    assert targets[1] > targets[0]
