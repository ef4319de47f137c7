"""Every account endpoint's answer, field by field and type by type (trading spec §2.5-§2.6):
each body decodes strictly into its `protocol.trading` struct and carries exactly its keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.conftest import Harness, running_harness
from tests.functional.venue_helpers import signed
from userstream.protocol import trading as t


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path / "data", initial_balance=Decimal(10000)) as harness:
        yield harness


def keys_of(kind: type[msgspec.Struct]) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(kind)}


def check(body: Any, kind: type[msgspec.Struct]) -> None:
    rows = body if isinstance(body, list) else [body]
    for row in rows:
        msgspec.json.decode(msgspec.json.encode(row), type=kind, strict=True)
        optional = {
            f.encode_name
            for f in msgspec.structs.fields(kind)
            if f.default is None and f.encode_name not in row
        }
        assert set(row) | optional == keys_of(kind), (kind.__name__, set(row) ^ keys_of(kind))


SHAPES: list[tuple[str, str, dict[str, Any], type[msgspec.Struct]]] = [
    ("GET", "/fapi/v2/account", {}, t.AccountV2),
    ("GET", "/fapi/v3/account", {}, t.AccountV3),
    ("GET", "/fapi/v2/balance", {}, t.BalanceRow),
    ("GET", "/fapi/v3/balance", {}, t.BalanceRow),
    ("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"}, t.PositionRiskV2),
    ("GET", "/fapi/v3/positionRisk", {}, t.PositionRiskV3),
    ("GET", "/fapi/v1/openOrders", {}, t.Order),
    ("GET", "/fapi/v1/allOrders", {"symbol": "BTCUSDT"}, t.Order),
    ("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"}, t.UserTrade),
    ("GET", "/fapi/v1/income", {}, t.IncomeRow),
    ("GET", "/fapi/v1/commissionRate", {"symbol": "BTCUSDT"}, t.CommissionRate),
    ("GET", "/fapi/v1/leverageBracket", {"symbol": "BTCUSDT"}, t.SymbolBrackets),
    ("GET", "/fapi/v1/leverageBracket", {}, t.SymbolBrackets),
    ("GET", "/fapi/v1/symbolConfig", {}, t.SymbolConfig),
    ("GET", "/fapi/v1/accountConfig", {}, t.AccountConfig),
    ("GET", "/fapi/v1/positionSide/dual", {}, t.DualSideMode),
    ("GET", "/fapi/v1/multiAssetsMargin", {}, t.MultiAssetsMode),
    ("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 7}, t.LeverageResponse),
    (
        "POST",
        "/fapi/v1/countdownCancelAll",
        {"symbol": "BTCUSDT", "countdownTime": 60000},
        t.CountdownResponse,
    ),
    ("POST", "/fapi/v1/marginType", {"symbol": "ETHUSDT", "marginType": "ISOLATED"}, t.CodeMsg),
]


async def test_every_answer_has_binance_shape(venue: Harness) -> None:
    account = venue.account()
    resting = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": "10000",
    }
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    for params in (resting, market):
        status, body, _ = await signed(venue, account, "POST", "/fapi/v1/order", params)
        assert status == 200, body
        check(body, t.Order)
    for method, path, params, kind in SHAPES:
        status, body, _ = await signed(venue, account, method, path, params)
        assert status == 200, (path, body)
        assert body != [], path  # every list has rows here, so every row is checked
        check(body, kind)


async def test_amend_then_countdown_cancels(venue: Harness) -> None:
    account = venue.account()
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": "10000",
    }
    _, placed, _ = await signed(venue, account, "POST", "/fapi/v1/order", order)
    amend = {"symbol": "BTCUSDT", "orderId": placed["orderId"], "side": "BUY"}
    status, amended, headers = await signed(
        venue, account, "PUT", "/fapi/v1/order", {**amend, "quantity": "0.020", "price": "10001"}
    )
    assert status == 200, amended
    assert (amended["origQty"], amended["price"]) == ("0.020", "10001.00")
    assert "X-MBX-ORDER-COUNT-1M" in headers
    status, same, _ = await signed(
        venue, account, "PUT", "/fapi/v1/order", {**amend, "quantity": "0.020", "price": "10001"}
    )
    assert (status, same["code"]) == (400, -5027)
    status, body, _ = await signed(
        venue,
        account,
        "POST",
        "/fapi/v1/countdownCancelAll",
        {"symbol": "BTCUSDT", "countdownTime": 2000},
    )
    assert body == {"symbol": "BTCUSDT", "countdownTime": "2000"}
    await venue.advance(3000)
    status, rows, _ = await signed(venue, account, "GET", "/fapi/v1/openOrders")
    assert rows == []
    _, query, _ = await signed(
        venue, account, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    )
    assert query["status"] == "CANCELED"
