"""Where each packaged symbol's price starts, and how busy its market is.

The packaged exchangeInfo (`data/symbols.json`) carries filters but no prices; these are the
prices the synthetic market (and the account simulator) start from. A symbol missing here
starts at the geometric middle of its `PRICE_FILTER` range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

__all__ = ["ACTIVITY", "REFERENCE_PRICES", "reference_price"]

REFERENCE_PRICES: Final[Mapping[str, Decimal]] = {
    "BTCUSDT": Decimal("65000"),
    "ETHUSDT": Decimal("3400"),
    "SOLUSDT": Decimal("150"),
    "BNBUSDT": Decimal("600"),
    "XRPUSDT": Decimal("0.6"),
    "DOGEUSDT": Decimal("0.15"),
}

# Trade rate and book depth relative to BTCUSDT (1.0 ≈ 40 trades/s and BTCUSDT's depth in
# notional, market-data spec §7); a symbol missing here gets `DEFAULT_ACTIVITY`.
ACTIVITY: Final[Mapping[str, float]] = {
    "BTCUSDT": 1.0,
    "ETHUSDT": 0.7,
    "SOLUSDT": 0.4,
    "BNBUSDT": 0.2,
    "XRPUSDT": 0.3,
    "DOGEUSDT": 0.25,
}
DEFAULT_ACTIVITY: Final = 0.1


def reference_price(symbol: str, min_price: Decimal, max_price: Decimal) -> Decimal:
    """The symbol's starting price: the table's, else the middle of its filter range."""
    known = REFERENCE_PRICES.get(symbol)
    if known is not None:
        return known
    middle = math.sqrt(float(max(min_price, Decimal("1e-8"))) * float(max_price))
    return Decimal(str(middle))
