"""The venue over signed REST on a real server (issue #12 items 4, 6-8): orders fill against
the market, the stream carries the events Binance would send, REST agrees with them, and bad
input gets Binance's error and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import Harness, event_fixture, running_harness
from tests.functional.venue_helpers import signed
from tests.functional.wsclient import recv_json, ws_connect
from userstream.accounts import Account

BALANCE = Decimal("10000")


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path / "data", initial_balance=BALANCE) as harness:
        yield harness


async def stream(server: Harness, account: Account) -> ClientConnection:
    key = await server.listen_key(account)
    return await ws_connect(f"{server.ws}/private/ws?listenKey={key}")


async def events_until(ws: ClientConnection, stop: str, count: int = 1) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while sum(1 for e in seen if _kind(e) == stop) < count:
        seen.append(await asyncio.wait_for(recv_json(ws), 5))
    return seen


def _kind(event: dict[str, Any]) -> str:
    if event["e"] == "ACCOUNT_UPDATE":
        return f"ACCOUNT_UPDATE:{event['a']['m']}"
    if event["e"] == "ORDER_TRADE_UPDATE":
        return f"ORDER_TRADE_UPDATE:{event['o']['x']}"
    return str(event["e"])


async def test_market_order_events_agree_with_rest(venue: Harness) -> None:
    account = venue.account()
    ws = await stream(venue, account)
    try:
        status, body, _ = await signed(
            venue, account, "POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 10}
        )
        assert (status, body["leverage"]) == (200, 10), body
        deposit = await events_until(ws, "ACCOUNT_UPDATE:DEPOSIT")
        assert deposit[-1]["a"]["B"][0]["wb"] in ("10000", "10000.00000000")
        status, order, headers = await signed(
            venue,
            account,
            "POST",
            "/fapi/v1/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "0.010",
                "newOrderRespType": "RESULT",
            },
            in_body=True,
        )
        assert status == 200, order
        assert order["status"] == "FILLED"
        assert order["executedQty"] == "0.010"
        assert isinstance(order["orderId"], int)
        assert isinstance(order["reduceOnly"], bool)
        assert headers["X-MBX-ORDER-COUNT-10S"] == "1"
        assert headers["X-MBX-ORDER-COUNT-1M"] == "1"
        seen = await events_until(ws, "ACCOUNT_UPDATE:ORDER")
        kinds = [_kind(e) for e in seen]
        assert kinds[0] == "ACCOUNT_CONFIG_UPDATE"
        assert "ORDER_TRADE_UPDATE:NEW" in kinds
        assert kinds.index("TRADE_LITE") < kinds.index("ORDER_TRADE_UPDATE:TRADE")
        last_trade = [e for e in seen if _kind(e) == "ORDER_TRADE_UPDATE:TRADE"][-1]["o"]
        assert last_trade["X"] == "FILLED"
        assert last_trade["i"] == order["orderId"]
        position_event = seen[-1]["a"]["P"][0]
        wallet_event = seen[-1]["a"]["B"][0]["wb"]

        status, rows, _ = await signed(venue, account, "GET", "/fapi/v3/positionRisk")
        assert status == 200
        (row,) = [r for r in rows if r["symbol"] == "BTCUSDT"]
        assert Decimal(row["positionAmt"]) == Decimal(position_event["pa"]) == Decimal("0.01")
        assert Decimal(row["entryPrice"]) == Decimal(position_event["ep"])
        assert Decimal(row["entryPrice"]) == Decimal(order["avgPrice"])
        status, account_v3, _ = await signed(venue, account, "GET", "/fapi/v3/account")
        (usdt,) = [a for a in account_v3["assets"] if a["asset"] == "USDT"]
        assert Decimal(usdt["walletBalance"]) == Decimal(wallet_event)
        assert Decimal(usdt["walletBalance"]) < BALANCE  # the taker fee
        status, trades, _ = await signed(
            venue, account, "GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"}
        )
        assert sum(Decimal(tr["qty"]) for tr in trades) == Decimal("0.01")
        fees = sum(Decimal(tr["commission"]) for tr in trades)
        assert Decimal(usdt["walletBalance"]) == BALANCE - fees
        status, queried, _ = await signed(
            venue,
            account,
            "GET",
            "/fapi/v1/order",
            {"symbol": "BTCUSDT", "orderId": order["orderId"]},
        )
        assert queried["status"] == "FILLED"
        assert isinstance(queried["time"], int)
    finally:
        await ws.close()


async def test_limit_rest_cancel_and_open_orders(venue: Harness) -> None:
    account = venue.account()
    ws = await stream(venue, account)
    try:
        params = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.010",
            "price": "10000",
            "newClientOrderId": "my-order-1",
        }
        status, order, _ = await signed(venue, account, "POST", "/fapi/v1/order", params)
        assert (status, order["status"], order["price"]) == (200, "NEW", "10000.00"), order
        status, dup, _ = await signed(venue, account, "POST", "/fapi/v1/order", params)
        assert (status, dup["code"]) == (400, -4116)
        status, rows, _ = await signed(venue, account, "GET", "/fapi/v1/openOrders")
        assert [r["clientOrderId"] for r in rows] == ["my-order-1"]
        status, cancelled, headers = await signed(
            venue,
            account,
            "DELETE",
            "/fapi/v1/order",
            {"symbol": "BTCUSDT", "origClientOrderId": "my-order-1"},
        )
        assert (status, cancelled["status"]) == (200, "CANCELED")
        assert "X-MBX-ORDER-COUNT-10S" in headers
        seen = await events_until(ws, "ORDER_TRADE_UPDATE:CANCELED")
        assert [_kind(e) for e in seen][-2:] == [
            "ORDER_TRADE_UPDATE:NEW",
            "ORDER_TRADE_UPDATE:CANCELED",
        ]
        status, again, _ = await signed(
            venue, account, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": 999}
        )
        assert (status, again) == (400, {"code": -2011, "msg": "Unknown order sent."})
        status, missing, _ = await signed(
            venue, account, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": 999}
        )
        assert (status, missing) == (400, {"code": -2013, "msg": "Order does not exist."})
        status, rows, _ = await signed(venue, account, "GET", "/fapi/v1/openOrders")
        assert rows == []
    finally:
        await ws.close()


BAD = [
    ("stale timestamp", {}, {"timestamp_offset": -60_000}, -1021),
    ("bad signature", {}, {"api_key_of": "other"}, -1022),
    ("wrong type", {"quantity": "a lot"}, {}, -1100),
    ("exponent", {"quantity": "1e-2"}, {}, -1100),
    ("unknown symbol", {"symbol": "NOPEUSDT"}, {}, -1121),
    ("absurd quantity", {"quantity": "100000"}, {}, -4005),
    ("too precise", {"quantity": "0.0101"}, {}, -1111),
    ("missing side", {"side": None}, {}, -1102),
    ("bad side", {"side": "UP"}, {}, -1117),
    ("price on market", {"price": "1"}, {}, -1106),
    ("conditional", {"type": "STOP_MARKET", "stopPrice": "1"}, {}, -4120),
    ("unknown param", {"colour": "red"}, {}, -1104),
    ("margin", {"quantity": "100"}, {}, -2019),
]


@pytest.mark.parametrize(("case", "change", "how", "code"), BAD, ids=[b[0] for b in BAD])
async def test_bad_orders_change_nothing(
    venue: Harness, case: str, change: dict[str, Any], how: dict[str, Any], code: int
) -> None:
    account = venue.account()
    other = venue.account("other")
    # Funded first, so the rejected order is the only thing that could change the state.
    _, before, _ = await signed(venue, account, "GET", "/fapi/v2/account")
    ws = await stream(venue, account)
    try:
        params: dict[str, Any] = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.010",
        }
        for name, value in change.items():
            if value is None:
                params.pop(name)
            else:
                params[name] = value
        stamp = venue.clock.now_ms() + how.get("timestamp_offset", 0)
        api_key = other.api_key if how.get("api_key_of") == "other" else None
        status, body, _ = await signed(
            venue,
            account,
            "POST",
            "/fapi/v1/order",
            params,
            timestamp=stamp,
            api_key=api_key,
        )
        assert (status, body["code"]) == (400, code), body
        _, after, _ = await signed(venue, account, "GET", "/fapi/v2/account")
        assert after == before
        _, orders, _ = await signed(
            venue, account, "GET", "/fapi/v1/allOrders", {"symbol": "BTCUSDT"}
        )
        assert orders == []
        # No event reached the stream (the admin intake's marker arrives first otherwise).
        await venue.publish(account, [event_fixture("account_config_update_leverage")])
        marker = await asyncio.wait_for(recv_json(ws), 5)
        assert marker["e"] == "ACCOUNT_CONFIG_UPDATE"
    finally:
        await ws.close()


async def test_admin_deposit_withdraw_and_commission(venue: Harness) -> None:
    account = venue.account()
    ws = await stream(venue, account)
    try:
        status, body = await venue.admin(
            "POST", f"accounts/{account.id}/deposit", {"asset": "USDT", "amount": "500"}
        )
        assert status == 200, body
        assert Decimal(body["balance"]) == BALANCE + 500
        status, body = await venue.admin(
            "POST", f"accounts/{account.id}/withdraw", {"asset": "USDT", "amount": "200"}
        )
        assert Decimal(body["balance"]) == BALANCE + 300
        seen = await events_until(ws, "ACCOUNT_UPDATE:WITHDRAW")
        reasons = [_kind(e) for e in seen]
        assert reasons == [
            "ACCOUNT_UPDATE:DEPOSIT",
            "ACCOUNT_UPDATE:DEPOSIT",
            "ACCOUNT_UPDATE:WITHDRAW",
        ]
        status, body = await venue.admin(
            "POST", f"accounts/{account.id}/commission", {"maker": "0.0001", "taker": "0.0003"}
        )
        assert status == 200, body
        status, rate, _ = await signed(
            venue, account, "GET", "/fapi/v1/commissionRate", {"symbol": "BTCUSDT"}
        )
        assert (rate["makerCommissionRate"], rate["takerCommissionRate"]) == ("0.0001", "0.0003")
        status, body = await venue.admin(
            "POST", f"accounts/{account.id}/withdraw", {"asset": "USDT", "amount": "1e9"}
        )
        assert status == 400
    finally:
        await ws.close()


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_harness(data, initial_balance=BALANCE) as first:
        account = first.account()
        params = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.010",
            "price": "10000",
        }
        status, resting, _ = await signed(first, account, "POST", "/fapi/v1/order", params)
        assert status == 200, resting
        market = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.005"}
        status, sold, _ = await signed(first, account, "POST", "/fapi/v1/order", market)
        assert status == 200, sold
        _, before, _ = await signed(first, account, "GET", "/fapi/v2/account")
        clock = first.clock
    async with running_harness(data, clock=clock, initial_balance=BALANCE) as second:
        _, after, _ = await signed(second, account, "GET", "/fapi/v2/account")
        assert after == before
        _, rows, _ = await signed(second, account, "GET", "/fapi/v1/openOrders")
        assert [r["orderId"] for r in rows] == [resting["orderId"]]
        status, next_order, _ = await signed(second, account, "POST", "/fapi/v1/order", market)
        assert next_order["orderId"] > sold["orderId"]
