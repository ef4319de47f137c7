"""Leverage brackets: tiers, maintenance margin, -2027 caps, the leverageBracket wire shape."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from userstream.exceptions import BinanceAPIError
from userstream.venue.brackets import (
    PACKAGED_BRACKETS,
    Bracket,
    BracketTable,
    bracket_for,
    brackets,
    brackets_for,
    encode_leverage_brackets,
    max_notional,
)


def test_faq_examples_pick_the_faq_tiers() -> None:
    btc = PACKAGED_BRACKETS["BTCUSDT"]
    # FAQ: "264,000 USDT ... the maintenance margin rate would be 1%".
    assert btc.for_notional(Decimal(264_000)).maint_margin_ratio == Decimal("0.01")
    # FAQ: "500,000 USDT ... the maintenance amount would be 1,300 USDT".
    assert btc.for_notional(Decimal(500_000)).cum == Decimal(1300)
    # FAQ worked example: 3,500,032.458 × 2.50% − 16,300 and 4,918,775.081 × 10.00% − 135,365.
    assert btc.maintenance_margin(Decimal("3500032.458")) == Decimal("71200.81145")
    assert PACKAGED_BRACKETS["ETHUSDT"].maintenance_margin(Decimal("4918775.081")) == Decimal(
        "356512.5081"
    )


def test_tier_bounds_are_floor_inclusive_cap_exclusive() -> None:
    btc = PACKAGED_BRACKETS["BTCUSDT"]
    assert btc.for_notional(Decimal(0)).bracket == 1
    assert btc.for_notional(Decimal("49999.99")).bracket == 1
    assert btc.for_notional(Decimal(50_000)).bracket == 2
    assert btc.for_notional(Decimal(10**12)).bracket == 10  # beyond the last cap: the last tier


def test_maintenance_is_continuous_across_every_cap() -> None:
    for table in PACKAGED_BRACKETS.values():
        for lower, upper in zip(table.brackets, table.brackets[1:], strict=False):
            cap = upper.notional_floor
            assert lower.maintenance_margin(cap) == upper.maintenance_margin(cap)


def test_max_notional_and_the_2027_refusal() -> None:
    btc = PACKAGED_BRACKETS["BTCUSDT"]
    assert btc.max_leverage == 125
    assert btc.max_notional(125) == Decimal(50_000)
    assert btc.max_notional(20) == Decimal(10_000_000)
    assert btc.max_notional(126) == Decimal(0)
    btc.check_notional(Decimal(10_000_000), 20)
    with pytest.raises(BinanceAPIError) as caught:
        btc.check_notional(Decimal("10000000.01"), 20)
    assert (caught.value.code, caught.value.msg) == (
        -2027,
        "Exceeded the maximum allowable position at current leverage.",
    )


def test_a_table_with_a_discontinuous_cum_is_refused() -> None:
    rows = [
        Bracket(
            bracket=1,
            initial_leverage=50,
            notional_cap=Decimal(100),
            notional_floor=Decimal(0),
            maint_margin_ratio=Decimal("0.01"),
            cum=Decimal(0),
        ),
        Bracket(
            bracket=2,
            initial_leverage=20,
            notional_cap=Decimal(1000),
            notional_floor=Decimal(100),
            maint_margin_ratio=Decimal("0.025"),
            cum=Decimal(2),
        ),
    ]
    with pytest.raises(ValueError, match="cum"):
        BracketTable("X", rows)


def test_unknown_symbols_get_the_75x_table() -> None:
    table = brackets_for("ADAUSDT")
    assert table.symbol == "ADAUSDT"
    assert table.brackets == PACKAGED_BRACKETS["XRPUSDT"].brackets
    assert table.max_leverage == 75


def test_wire_shape_has_bare_numbers_in_binance_key_order() -> None:
    body = encode_leverage_brackets([PACKAGED_BRACKETS["BTCUSDT"].row()])
    decoded = msgspec.json.decode(body)
    first = decoded[0]["brackets"][0]
    assert decoded[0]["symbol"] == "BTCUSDT"
    assert list(first) == [
        "bracket",
        "initialLeverage",
        "notionalCap",
        "notionalFloor",
        "maintMarginRatio",
        "cum",
    ]
    assert first == {
        "bracket": 1,
        "initialLeverage": 125,
        "notionalCap": 50000,
        "notionalFloor": 0,
        "maintMarginRatio": 0.004,
        "cum": 0,
    }


def test_module_level_lookups_follow_the_symbol() -> None:
    assert brackets("BTCUSDT") == PACKAGED_BRACKETS["BTCUSDT"].brackets
    assert bracket_for("ETHUSDT", Decimal(10_000)).maint_margin_ratio == Decimal("0.0065")
    assert max_notional("SOLUSDT", 75) == Decimal(10_000)
