"""Funding payments: sign, rounding, and the ACCOUNT_UPDATE m=FUNDING_FEE they produce."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from userstream.protocol.codec import encode_event
from userstream.protocol.events import Position
from userstream.venue.funding import funding_account_update, funding_income


def test_longs_pay_and_shorts_receive_when_the_rate_is_positive() -> None:
    # Nominal value × rate (FAQ formula): 0.5 BTC at mark 60,000 with 0.01 % is 3 USDT.
    assert funding_income(Decimal("0.5"), Decimal(60000), Decimal("0.0001")) == Decimal("-3")
    assert funding_income(Decimal("-0.5"), Decimal(60000), Decimal("0.0001")) == Decimal("3")
    assert funding_income(Decimal("0.5"), Decimal(60000), Decimal("-0.0001")) == Decimal("3")
    assert funding_income(Decimal(0), Decimal(60000), Decimal("0.0001")) == 0


def test_income_is_rounded_half_up_at_eight_decimals() -> None:
    # 0.003 × 91,831.57 × 0.00010000 = 0.027549471 → pays 0.02754947.
    assert funding_income(Decimal("0.003"), Decimal("91831.57"), Decimal("0.00010000")) == Decimal(
        "-0.02754947"
    )
    # A short of 1 at 1.5 with 0.00000001 receives 0.000000015 → 0.00000002 (half up).
    assert funding_income(Decimal(-1), Decimal("1.5"), Decimal("0.00000001")) == Decimal(
        "0.00000002"
    )


def test_cross_funding_event_has_no_position_rows() -> None:
    event = funding_account_update(
        time_ms=1_700_000_000_000,
        symbol="BTCUSDT",
        asset="USDT",
        income=Decimal("-3.00000000"),
        wallet_balance=Decimal("997.00000000"),
        cross_wallet_balance=Decimal("997.00000000"),
    )
    body = msgspec.json.decode(encode_event(event))
    assert body == {
        "e": "ACCOUNT_UPDATE",
        "T": 1_700_000_000_000,
        "E": 1_700_000_000_000,
        "a": {
            "B": [{"a": "USDT", "wb": "997.00000000", "cw": "997.00000000", "bc": "-3.00000000"}],
            "P": [],
            "m": "FUNDING_FEE",
            "S": "BTCUSDT",
        },
    }


def test_isolated_funding_event_carries_the_position_row() -> None:
    row = Position(
        symbol="BTCUSDT",
        position_amount=Decimal("0.5"),
        entry_price=Decimal(60000),
        accumulated_realized=Decimal(0),
        unrealized_pnl=Decimal(0),
        margin_type="isolated",
        isolated_wallet=Decimal("1497"),
        position_side="BOTH",
        margin_asset="USDT",
        breakeven_price=Decimal(60030),
    )
    event = funding_account_update(
        time_ms=1,
        symbol="BTCUSDT",
        asset="USDT",
        income=Decimal(-3),
        wallet_balance=Decimal(1997),
        cross_wallet_balance=Decimal(500),
        isolated_positions=[row],
    )
    assert event.update.positions == (row,)
