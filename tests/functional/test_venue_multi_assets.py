"""Multi-assets mode over signed REST (issue 13 item 4): an account holding only USDC is
refused a USDT-M position in single-asset mode and opens it in multi-assets mode, and the
account and balance pages report the collateral consistently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import Harness, running_harness
from tests.functional.venue_helpers import signed

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path / "data", initial_balance=Decimal(0)) as harness:
        yield harness


async def test_usdc_only_account_trades_in_multi_assets_mode(venue: Harness) -> None:
    account = venue.account()
    status, body = await venue.admin(
        "POST", f"accounts/{account.id}/deposit", {"asset": "USDC", "amount": "5000"}
    )
    assert status == 200, body
    status, body, _ = await signed(venue, account, "POST", "/fapi/v1/order", ORDER, in_body=True)
    assert (status, body["code"]) == (400, -2019), body

    status, body, _ = await signed(
        venue, account, "POST", "/fapi/v1/multiAssetsMargin", {"multiAssetsMargin": "true"}
    )
    assert status == 200, body
    status, account_v3, _ = await signed(venue, account, "GET", "/fapi/v3/account")
    assert status == 200
    # 5000 USDC x index 1 x (1 - 0.0001 haircut).
    assert Decimal(account_v3["availableBalance"]) == Decimal("4999.5")
    assert Decimal(account_v3["totalMarginBalance"]) == Decimal("4999.5")
    status, order, _ = await signed(venue, account, "POST", "/fapi/v1/order", ORDER, in_body=True)
    assert status == 200, order

    status, account_v3, _ = await signed(venue, account, "GET", "/fapi/v3/account")
    status, balances, _ = await signed(venue, account, "GET", "/fapi/v3/balance")
    assert status == 200
    usdt = next(a for a in account_v3["assets"] if a["asset"] == "USDT")
    (usdt_row,) = [b for b in balances if b["asset"] == "USDT"]
    (usdc_row,) = [b for b in balances if b["asset"] == "USDC"]
    assert usdc_row["balance"] in ("5000", "5000.00000000")
    assert usdc_row["marginAvailable"] is True
    assert Decimal(usdt["availableBalance"]) == Decimal(usdt_row["availableBalance"])
    assert Decimal(account_v3["availableBalance"]) == Decimal(usdt["availableBalance"])
    assert Decimal(usdt["positionInitialMargin"]) > 0
    assert Decimal(account_v3["availableBalance"]) == (
        Decimal(account_v3["totalMarginBalance"])
        - Decimal(account_v3["totalPositionInitialMargin"])
        - Decimal(account_v3["totalOpenOrderInitialMargin"])
    )
