"""The WebSocket API's trading methods on `/ws-fapi/v1` (trading spec §3): signed with HMAC
per request, or unsigned after an Ed25519 `session.logon`; same engine and errors as REST."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Harness, running_harness
from tests.functional.test_wsapi import WS_API, call
from tests.functional.test_wsapi_session import ed25519_params, register
from tests.functional.venue_helpers import signed
from tests.functional.wsclient import recv_json, ws_connect
from userstream.accounts import Account
from userstream.protocol.limits import OrderLimits
from userstream.protocol.signing import hmac_signature, ws_payload


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path / "data", initial_balance=Decimal(10000)) as harness:
        yield harness


def hmac_params(account: Account, now: int, **params: Any) -> dict[str, Any]:
    signed_params: dict[str, Any] = {**params, "apiKey": account.api_key, "timestamp": now}
    signed_params["signature"] = hmac_signature(
        account.secret_key.encode(), ws_payload(signed_params)
    )
    return signed_params


async def test_place_status_cancel_with_hmac(venue: Harness) -> None:
    account = venue.account()
    now = venue.clock.now_ms()
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": "10000",
    }
    async with ws_connect(venue.ws + WS_API) as ws:
        placed = await call(ws, "order.place", hmac_params(account, now, **order))
        assert placed["status"] == 200, placed
        # REQUEST_WEIGHT, then the account's ORDERS counts (shared with REST).
        assert [(r["rateLimitType"], r["interval"], r["count"]) for r in placed["rateLimits"]][
            1:
        ] == [("ORDERS", "SECOND", 1), ("ORDERS", "MINUTE", 1)]
        order_id = placed["result"]["orderId"]
        assert placed["result"]["status"] == "NEW"
        status = await call(
            ws, "order.status", hmac_params(account, now, symbol="BTCUSDT", orderId=order_id)
        )
        assert status["result"]["status"] == "NEW"
        assert isinstance(status["result"]["time"], int)
        bad = dict(hmac_params(account, now, **order), quantity="0.020")
        refused = await call(ws, "order.place", bad)
        assert (refused["status"], refused["error"]["code"]) == (400, -1022)
        exponent = {**order, "price": "1e3"}
        too_big = await call(ws, "order.place", hmac_params(account, now, **exponent))
        assert too_big["error"]["code"] == -1100
        cancelled = await call(
            ws, "order.cancel", hmac_params(account, now, symbol="BTCUSDT", orderId=order_id)
        )
        assert cancelled["result"]["status"] == "CANCELED"
        again = await call(
            ws, "order.cancel", hmac_params(account, now, symbol="BTCUSDT", orderId=order_id)
        )
        assert again["error"] == {"code": -2011, "msg": "Unknown order sent."}
    _, rest_order, _ = await signed(
        venue, account, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": order_id}
    )
    assert rest_order["status"] == "CANCELED"


async def test_logged_on_session_trades_and_reads_the_account(venue: Harness) -> None:
    account = venue.account()
    private, api_key = await register(venue, account)
    now = venue.clock.now_ms()
    key = await venue.listen_key(account)
    async with (
        ws_connect(venue.ws + WS_API) as ws,
        ws_connect(f"{venue.ws}/private/ws?listenKey={key}") as stream,
    ):
        logon = await call(ws, "session.logon", ed25519_params(private, api_key, now))
        assert logon["status"] == 200, logon
        market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
        placed = await call(ws, "order.place", {**market, "newOrderRespType": "RESULT"})
        assert placed["result"]["status"] == "FILLED", placed
        seen: list[dict[str, Any]] = []
        while not (seen and seen[-1]["e"] == "ACCOUNT_UPDATE" and seen[-1]["a"]["m"] == "ORDER"):
            seen.append(await asyncio.wait_for(recv_json(stream), 5))
        pa = Decimal(seen[-1]["a"]["P"][0]["pa"])
        wb = Decimal(seen[-1]["a"]["B"][0]["wb"])
        status = await call(ws, "account.status", {})
        assert status["status"] == 200, status
        assert "feeTier" in status["result"]  # v1 method: the v2 account shape
        v3 = await call(ws, "v2/account.status", {})
        (position,) = v3["result"]["positions"]
        assert Decimal(position["positionAmt"]) == pa
        balance = await call(ws, "account.balance", {})
        (usdt,) = [b for b in balance["result"] if b["asset"] == "USDT"]
        assert Decimal(usdt["balance"]) == wb
        positions = await call(ws, "v2/account.position", {"symbol": "BTCUSDT"})
        assert Decimal(positions["result"][0]["positionAmt"]) == pa


async def test_rest_and_ws_api_share_the_order_count(tmp_path: Path) -> None:
    async with running_harness(
        tmp_path / "data", initial_balance=Decimal(10000), order_limits=OrderLimits(1, 100)
    ) as venue:
        account = venue.account()
        market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
        status, body, _ = await signed(venue, account, "POST", "/fapi/v1/order", market)
        assert status == 200, body
        async with ws_connect(venue.ws + WS_API) as ws:
            now = venue.clock.now_ms()
            refused = await call(ws, "order.place", hmac_params(account, now, **market))
            assert (refused["status"], refused["error"]["code"]) == (429, -1015)


async def test_a_burst_of_orders_is_answered_in_order_and_a_lone_one_at_once(
    venue: Harness,
) -> None:
    # Behind a burst the answers leave in batches (server/wsapi.py FLUSH_EVERY); every one
    # still arrives, in order, and a request with nothing queued behind it is answered alone.
    account = venue.account()
    private, api_key = await register(venue, account)
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": "10000",
        "timestamp": venue.clock.now_ms(),
    }
    async with ws_connect(venue.ws + WS_API) as ws:
        logon = await call(
            ws, "session.logon", ed25519_params(private, api_key, venue.clock.now_ms())
        )
        assert logon["status"] == 200, logon
        burst = 20
        for n in range(burst):
            request = {"id": n, "method": "order.place", "params": order}
            await ws.send(json.dumps(request))
        answers = [await recv_json(ws) for _ in range(burst)]
        assert [(a["id"], a["status"]) for a in answers] == [(n, 200) for n in range(burst)]
        assert len({a["result"]["orderId"] for a in answers}) == burst
        alone = await asyncio.wait_for(call(ws, "order.place", order, id="alone"), 5)
        assert (alone["id"], alone["status"]) == ("alone", 200)
