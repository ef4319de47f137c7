"""Multi-assets mode collateral: non-USDT assets counted toward USDT cross margin, and the
auto-exchange that turns them into USDT when a liquidation leaves the USDT wallet negative.

In Binance's Multi-Assets Mode (`POST /fapi/v1/multiAssetsMargin`, spec §5.8) every asset in
the futures wallet backs the cross positions at its index value times its collateral rate
(1 − haircut). Binance's FAQ "What Is Multi-Assets Mode and Which Assets Are Supported?"
(support/faq/29b45c485d664028b9ca1cdf90b24f6f) gives the rates: "BTC, ETH, and BNB used as
margin in multi-asset mode will receive a 5% value haircut" (BNB worth $1,000 counts as $950),
and its table lists the "Collateral Value Ratio" USDT 99.99 %, USDC 99.99 %, BTC/ETH/BNB 95 %.
FDUSD is not in that table; the venue treats it like USDC. The live figures come from
`GET /fapi/v1/assetIndex` (`bidBuffer`: `bidRate` = index × (1 − bidBuffer)), which the
venue does not serve; the tables below are module data a deployment may change at start-up.

Auto-exchange (the Multi-Assets Info page, binance.com/en/futures/trading-rules/perpetual/
multi-asset-info): "When users get liquidated, auto exchange will be immediately triggered if
the [USDT] in the USDⓈ-M Futures Wallet balance is not enough to cover the deficit", at the
asset index less `autoExchangeBidBuffer`; "If there are multiple assets … they will be
automatically converted to negative assets according to the proportion of each asset". The
page's example sells 20,000 / 97.5 % of BTC to cover −20,000, a BTC buffer of 2.5 %; the
assetIndex example has ADA at bidBuffer 0.10 and autoExchangeBidBuffer 0.05. ETH and BNB
follow BTC's half-of-the-haircut buffer (ours); the stablecoins' buffer equals their haircut
(the `USDTUSD` stream example: 0.0001 for both).

USDT needs no conversion: the venue's symbols are USDT-margined and its index is USDT, so the
collateral of an account is the value, in USDT, of its other assets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from userstream.venue.numbers import ZERO, money
from userstream.venue.state import AssetBalance

__all__ = [
    "AUTO_EXCHANGE_RATES",
    "COLLATERAL_RATES",
    "FIXED_INDEX",
    "SETTLEMENT_ASSET",
    "Exchange",
    "auto_exchange",
    "collateral_value",
]

SETTLEMENT_ASSET = "USDT"
_UNIT = Decimal("0.00000001")

# 1 − haircut of each asset accepted as collateral (FAQ table; FDUSD is ours).
COLLATERAL_RATES: dict[str, Decimal] = {
    "USDC": Decimal("0.9999"),
    "FDUSD": Decimal("0.9999"),
    "BTC": Decimal("0.95"),
    "ETH": Decimal("0.95"),
    "BNB": Decimal("0.95"),
}

# 1 − autoExchangeBidBuffer: what one unit's index fetches when it is auto-exchanged
# (BTC from the Multi-Assets Info example; the others as the module docstring says).
AUTO_EXCHANGE_RATES: dict[str, Decimal] = {
    "USDC": Decimal("0.9999"),
    "FDUSD": Decimal("0.9999"),
    "BTC": Decimal("0.975"),
    "ETH": Decimal("0.975"),
    "BNB": Decimal("0.975"),
}

# Stablecoins are indexed at 1 USDT; the others at the mark of their USDT symbol.
FIXED_INDEX: dict[str, Decimal] = {"USDC": Decimal(1), "FDUSD": Decimal(1)}


def index_price(asset: str, marks: Callable[[str], Decimal | None]) -> Decimal | None:
    """The asset's value in USDT, None when the venue has no price for it."""
    fixed = FIXED_INDEX.get(asset)
    return fixed if fixed is not None else marks(asset + SETTLEMENT_ASSET)


def collateral_value(
    balances: Iterable[AssetBalance], marks: Callable[[str], Decimal | None]
) -> Decimal:
    """USDT value the non-USDT wallets add to cross margin: positive balances only (a
    negative balance is a debt, which the venue does not lend against)."""
    total = ZERO
    for balance in balances:
        rate = COLLATERAL_RATES.get(balance.asset)
        if rate is None or balance.wallet_balance <= 0:
            continue
        index = index_price(balance.asset, marks)
        if index is not None:
            total += balance.wallet_balance * index * rate
    return money(total)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One asset's part of an auto-exchange: `sold` units of `asset` for `covered` USDT."""

    asset: str
    sold: Decimal
    covered: Decimal


def auto_exchange(
    deficit: Decimal,
    balances: Iterable[AssetBalance],
    marks: Callable[[str], Decimal | None],
) -> list[Exchange]:
    """Cover a USDT `deficit` (> 0) from the collateral, each asset in proportion to its
    auto-exchange value; units sold are rounded up to 8 decimals (never past the balance).
    When the collateral is worth less than the deficit, all of it is sold and the parts
    cover less (the caller leaves the rest to the insurance fund)."""
    values: list[tuple[AssetBalance, Decimal, Decimal]] = []
    for balance in balances:
        rate = AUTO_EXCHANGE_RATES.get(balance.asset)
        if rate is None or balance.wallet_balance <= 0:
            continue
        index = index_price(balance.asset, marks)
        if index is None or index <= 0:
            continue
        values.append((balance, index * rate, balance.wallet_balance * index * rate))
    total = sum((value for _, _, value in values), ZERO)
    if total <= 0 or deficit <= 0:
        return []
    target = min(deficit, money(total))
    parts: list[Exchange] = []
    assigned = ZERO
    for position, (balance, unit_value, value) in enumerate(values):
        last = position == len(values) - 1
        share = target - assigned if last else money(target * value / total)
        share = min(share, money(value))
        assigned += share
        sold = min(
            (share / unit_value).quantize(_UNIT, rounding=ROUND_CEILING), balance.wallet_balance
        )
        if share > 0:
            parts.append(Exchange(balance.asset, sold, share))
    return parts
