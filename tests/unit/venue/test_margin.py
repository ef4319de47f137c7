"""Liquidation price, bankruptcy price and margin ratio, with the Binance FAQ's worked example.

Golden numbers: Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
(one-way mode, wallet 1,535,443.01 USDT; ETHUSDT long 3,683.979 @ 1,456.84, mark 1,335.18;
BTCUSDT long 109.488 @ 32,481.98, mark 31,967.27). Its answers, at price precision: ETHUSDT
1,153.26 and BTCUSDT 26,316.89 under cross margin, 1,114.78 and 18,778.73 when each position is
isolated with that wallet. The same transcription is freqtrade's
tests/exchange/test_binance.py::test_liquidation_price_binance.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest

from userstream.venue.brackets import PACKAGED_BRACKETS
from userstream.venue.margin import (
    Leg,
    RiskLevel,
    bankruptcy_price,
    liquidation_price,
    margin_ratio,
    risk_level,
    round_price_for_user,
    unrealized_pnl,
)

BTC = PACKAGED_BRACKETS["BTCUSDT"]
ETH = PACKAGED_BRACKETS["ETHUSDT"]
WALLET = Decimal("1535443.01")
ETH_LEG = Leg("BOTH", Decimal("3683.979"), Decimal("1456.84"))
ETH_MARK = Decimal("1335.18")
BTC_LEG = Leg("BOTH", Decimal("109.488"), Decimal("32481.98"))
BTC_MARK = Decimal("31967.27")


def cents(price: Decimal) -> Decimal:
    return price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_faq_intermediate_values() -> None:
    assert cents(BTC.maintenance_margin(BTC_LEG.amount * BTC_MARK)) == Decimal("71200.81")
    assert cents(ETH.maintenance_margin(ETH_LEG.amount * ETH_MARK)) == Decimal("356512.51")
    assert cents(unrealized_pnl(BTC_LEG.amount, BTC_LEG.entry_price, BTC_MARK)) == Decimal(
        "-56354.57"
    )
    assert cents(unrealized_pnl(ETH_LEG.amount, ETH_LEG.entry_price, ETH_MARK)) == Decimal(
        "-448192.89"
    )


POSITIONS = {"ETHUSDT": (ETH, ETH_LEG, ETH_MARK), "BTCUSDT": (BTC, BTC_LEG, BTC_MARK)}


@pytest.mark.parametrize(
    ("symbol", "other", "expected"),
    [("ETHUSDT", "BTCUSDT", "1153.26"), ("BTCUSDT", "ETHUSDT", "26316.89")],
)
def test_faq_cross_one_way(symbol: str, other: str, expected: str) -> None:
    table, leg, mark = POSITIONS[symbol]
    other_table, other_leg, other_mark = POSITIONS[other]
    price = liquidation_price(
        table,
        [leg],
        WALLET,
        mark,
        other_maintenance=other_table.maintenance_margin(other_leg.amount * other_mark),
        other_unrealized=unrealized_pnl(other_leg.amount, other_leg.entry_price, other_mark),
    )
    assert cents(price) == Decimal(expected)


def test_faq_cross_from_the_faqs_printed_terms() -> None:
    # The FAQ substitutes its rounded intermediate values; the answer is the same.
    eth = liquidation_price(
        ETH,
        [ETH_LEG],
        WALLET,
        ETH_MARK,
        other_maintenance=Decimal("71200.81144"),
        other_unrealized=Decimal("-56354.57"),
    )
    btc = liquidation_price(
        BTC,
        [BTC_LEG],
        WALLET,
        BTC_MARK,
        other_maintenance=Decimal("356512.508"),
        other_unrealized=Decimal("-448192.89"),
    )
    assert (cents(eth), cents(btc)) == (Decimal("1153.26"), Decimal("26316.89"))


def test_faq_isolated() -> None:
    assert cents(liquidation_price(ETH, [ETH_LEG], WALLET, ETH_MARK)) == Decimal("1114.78")
    assert cents(liquidation_price(BTC, [BTC_LEG], WALLET, BTC_MARK)) == Decimal("18778.73")


def test_the_tier_at_the_liquidation_price_is_used() -> None:
    # 20 BTC long at 60,000 with 300,000 isolated: at the mark (1.2 M) the tier is 2.5 %, but
    # at the liquidation price the notional falls below 1 M, into the 1 % tier.
    leg = Leg("BOTH", Decimal(20), Decimal(60000))
    price = liquidation_price(BTC, [leg], Decimal(300000), Decimal(60000))
    tier = BTC.for_notional(20 * price)
    assert tier.maint_margin_ratio == Decimal("0.01")
    # At that price the margin balance equals the maintenance margin exactly.
    balance = Decimal(300000) + unrealized_pnl(leg.amount, leg.entry_price, price)
    assert abs(balance - BTC.maintenance_margin(20 * price)) < Decimal("1e-18")


def test_short_and_hedge_legs() -> None:
    short = Leg("BOTH", Decimal(-1), Decimal(30000))
    price = liquidation_price(BTC, [short], Decimal(1000), Decimal(30000))
    balance = Decimal(1000) + unrealized_pnl(short.amount, short.entry_price, price)
    assert price > 30000
    assert abs(balance - BTC.maintenance_margin(price)) < Decimal("1e-18")
    # Hedge mode, cross: a LONG and a SHORT share one price, where the combined balance
    # meets the combined maintenance.
    legs = [Leg("LONG", Decimal(2), Decimal(30000)), Leg("SHORT", Decimal(-1), Decimal(31000))]
    price = liquidation_price(BTC, legs, Decimal(3000), Decimal(30000))
    upnl = sum(unrealized_pnl(leg.amount, leg.entry_price, price) for leg in legs)
    mm = sum(BTC.maintenance_margin(abs(leg.amount) * price) for leg in legs)
    assert abs(Decimal(3000) + upnl - mm) < Decimal("1e-18")


def test_no_position_or_unreachable_price_reads_zero() -> None:
    assert liquidation_price(BTC, [], WALLET, BTC_MARK) == 0
    assert (
        liquidation_price(
            BTC, [Leg("BOTH", Decimal(1), Decimal(100))], Decimal(10**6), Decimal(100)
        )
        == 0
    )


def test_bankruptcy_price_leaves_zero_after_the_fee() -> None:
    fee = Decimal("0.0125")
    for leg in (
        Leg("BOTH", Decimal("0.5"), Decimal(30000)),
        Leg("BOTH", Decimal("-0.5"), Decimal(30000)),
    ):
        price = bankruptcy_price(leg, Decimal(1000), fee)
        left = Decimal(1000) + unrealized_pnl(leg.amount, leg.entry_price, price)
        left -= fee * abs(leg.amount) * price
        assert abs(left) < Decimal("1e-18")
        rounded = round_price_for_user(price, Decimal("0.10"), leg.amount)
        left = Decimal(1000) + unrealized_pnl(leg.amount, leg.entry_price, rounded)
        left -= fee * abs(leg.amount) * rounded
        assert left >= 0
        assert rounded % Decimal("0.10") == 0


def test_risk_levels() -> None:
    assert margin_ratio(Decimal(0), Decimal(-5)) == 0
    assert margin_ratio(Decimal(10), Decimal(0)) == Decimal("Infinity")
    assert risk_level(Decimal(0), Decimal(100)) is RiskLevel.SAFE
    assert risk_level(Decimal(79), Decimal(100)) is RiskLevel.SAFE
    assert risk_level(Decimal(80), Decimal(100)) is RiskLevel.MARGIN_CALL
    assert risk_level(Decimal(100), Decimal(100)) is RiskLevel.LIQUIDATE
    assert risk_level(Decimal(1), Decimal(-1)) is RiskLevel.LIQUIDATE


def test_margin_ratio_target_price() -> None:
    # Where the margin call starts: maintenance ÷ margin balance = 80 %.
    leg = Leg("BOTH", Decimal(1), Decimal(60000))
    price = liquidation_price(
        BTC, [leg], Decimal(3000), Decimal(60000), margin_ratio=Decimal("0.8")
    )
    balance = Decimal(3000) + unrealized_pnl(leg.amount, leg.entry_price, price)
    assert abs(BTC.maintenance_margin(price) / balance - Decimal("0.8")) < Decimal("1e-20")
    assert price > liquidation_price(BTC, [leg], Decimal(3000), Decimal(60000))
