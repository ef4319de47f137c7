"""Multi-assets mode collateral: non-USDT assets counted toward USDT cross margin.

In Binance's Multi-Assets Mode (`POST /fapi/v1/multiAssetsMargin`, spec §5.8) every asset in
the futures wallet backs the cross positions: an asset counts at its index value in USD
times its collateral rate (1 − haircut). Binance publishes the rates per asset and tier
(the cross-margin collateral ratio table, `GET /sapi/v1/margin/crossMarginCollateralRatio`,
shows `discountRate` 1 for BTC, ETH and USDT in its first tier); the futures page's figures
are not public text, so the venue uses the rates in `COLLATERAL_RATES` (docs/venue-risk.md
states them). One tier per asset: the venue's accounts are far below the tier boundaries.

USDT needs no conversion: the venue's symbols are USDT-margined, so the collateral of an
account is the value, in USDT, of its other assets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from userstream.venue.numbers import ZERO, money
from userstream.venue.state import AssetBalance

__all__ = ["COLLATERAL_RATES", "FIXED_INDEX", "SETTLEMENT_ASSET", "collateral_value"]

SETTLEMENT_ASSET = "USDT"

# 1 − haircut of each asset accepted as collateral.
COLLATERAL_RATES: dict[str, Decimal] = {
    "USDC": Decimal("0.9999"),
    "FDUSD": Decimal("0.9999"),
    "BTC": Decimal("0.95"),
    "ETH": Decimal("0.95"),
    "BNB": Decimal("0.95"),
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
