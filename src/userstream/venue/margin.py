"""Margin ratio, margin call, liquidation and bankruptcy prices of USDⓈ-M positions (sans-I/O).

Formulas: trading spec §4.5 and §4.7, Binance FAQ "How to Calculate Liquidation Price of
USDⓈ-M Futures Contracts" (support/faq/b3c689c1f50a44cabb3a84e663b81d93). The FAQ's liquidation
price, cross margin, for contract 1:

    LP = (WB − TMM₁ + UPNL₁ + cumB + cumL + cumS − Side₁BOTH × Position₁BOTH × EP₁BOTH
          − Position₁LONG × EP₁LONG + Position₁SHORT × EP₁SHORT)
       / (Position₁BOTH × MMRB + Position₁LONG × MMRL + Position₁SHORT × MMRS
          − Side₁BOTH × Position₁BOTH − Position₁LONG + Position₁SHORT)

`WB` is the cross wallet balance; `TMM₁` and `UPNL₁` are the maintenance margin and unrealized
PnL of every other cross position. For an isolated position `WB` is its isolated wallet and
`TMM₁ = UPNL₁ = 0`. The tier (MMR, cum) is the one of the notional *at the liquidation
price*: when it differs from the tier of the current notional, the FAQ recomputes with it,
which `liquidation_price` does until the tiers agree. A negative result is shown as "--" by
Binance's UI and as `"0"` by the API.

Margin call and liquidation (spec §4.7): margin ratio = maintenance margin ÷ margin balance
(cross: Σ cross maintenance ÷ (cross wallet + cross uPnL); isolated: the position's
maintenance ÷ (isolated wallet + its uPnL)). Binance warns as the ratio approaches 100 %; the
exact threshold is not published ([UNCONFIRMED] in the spec; the user-data doc only says the
event is pushed "when the user's position risk ratio is too high"), so the venue sends
MARGIN_CALL from `MARGIN_CALL_RATIO` (80 %, ours; `Risk.margin_call_ratio` overrides it).
Liquidation starts when margin balance ≤ maintenance margin (ratio ≥ 100 %).

The forced order's price: the venue closes at the bankruptcy price net of the liquidation
clearance fee, the price at which the liquidated scope's margin balance less the fee
(`liquidationFee` of exchangeInfo × notional) is exactly zero. The user loses the whole
margin of the scope (the isolated wallet, or the cross wallet plus, in multi-assets mode, the
collateral value) and never more, so no insurance clearing is needed for a single position.
Who takes the other side (the book, or ADL counterparties) is `venue.risk`'s business.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final

from userstream.venue.brackets import Bracket, BracketTable

__all__ = [
    "MARGIN_CALL_RATIO",
    "Leg",
    "RiskLevel",
    "bankruptcy_price",
    "liquidation_price",
    "margin_ratio",
    "risk_level",
    "round_price_for_user",
    "unrealized_pnl",
]

MARGIN_CALL_RATIO: Final = Decimal("0.8")
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)


@dataclass(frozen=True, slots=True)
class Leg:
    """One position of the contract whose liquidation price is asked.

    `amount` is signed as Binance signs `positionAmt`: negative for a short, also for a
    hedge-mode SHORT row. `position_side` is "BOTH", "LONG" or "SHORT".
    """

    position_side: str
    amount: Decimal
    entry_price: Decimal


def unrealized_pnl(amount: Decimal, entry_price: Decimal, mark_price: Decimal) -> Decimal:
    """`positionAmt × (mark − entry)` (spec §4.5)."""
    return amount * (mark_price - entry_price)


def _direction(leg: Leg) -> int:
    return 1 if leg.amount > 0 else -1


def _solve(
    legs: Sequence[Leg],
    tiers: Sequence[Bracket],
    wallet: Decimal,
    other_maintenance: Decimal,
    other_unrealized: Decimal,
    scale: Decimal,
) -> Decimal | None:
    numerator = wallet - other_maintenance * scale + other_unrealized
    denominator = _ZERO
    for leg, tier in zip(legs, tiers, strict=True):
        size = abs(leg.amount)
        side = _direction(leg)
        numerator += tier.cum * scale - side * size * leg.entry_price
        denominator += size * tier.maint_margin_ratio * scale - side * size
    return None if denominator == 0 else numerator / denominator


def liquidation_price(
    table: BracketTable,
    legs: Sequence[Leg],
    wallet: Decimal,
    mark_price: Decimal,
    *,
    other_maintenance: Decimal = _ZERO,
    other_unrealized: Decimal = _ZERO,
    margin_ratio: Decimal = _ONE,
) -> Decimal:
    """The mark price at which the contract's positions reach maintenance (FAQ formula).

    Args:
        table: the contract's leverage brackets.
        legs: its open positions: one BOTH leg (one-way), or LONG and/or SHORT (hedge mode,
            cross; they share one price), or the one isolated position.
        wallet: cross wallet balance, or the isolated position's wallet.
        mark_price: the current mark, which picks the tier the FAQ starts from.
        other_maintenance, other_unrealized: `TMM₁` and `UPNL₁`; 0 for isolated.
        margin_ratio: solve for this margin ratio instead of 100 % (maintenance ÷ margin
            balance; `MARGIN_CALL_RATIO` gives where the margin call starts).

    Returns:
        The price, exact (round it with `round_price_for_user` or to the symbol's precision);
        0 when there is no position or the price would be negative.
    """
    open_legs = [leg for leg in legs if leg.amount != 0]
    if not open_legs:
        return _ZERO
    tiers = [table.for_notional(abs(leg.amount) * mark_price) for leg in open_legs]
    price: Decimal | None = None
    # The tier at the candidate price moves monotonically with it, so this ends within the
    # number of tiers; the bound only guards against a malformed table.
    for _ in range(len(table.brackets) + 1):
        price = _solve(
            open_legs, tiers, wallet, other_maintenance, other_unrealized, 1 / margin_ratio
        )
        if price is None or price <= 0:
            return _ZERO
        at_price = [table.for_notional(abs(leg.amount) * price) for leg in open_legs]
        if at_price == tiers:
            break
        tiers = at_price
    assert price is not None
    return price


def bankruptcy_price(
    leg: Leg,
    wallet: Decimal,
    fee_rate: Decimal,
    *,
    other_unrealized: Decimal = _ZERO,
) -> Decimal:
    """The price at which closing `leg` leaves the scope's margin balance at zero after the
    liquidation fee: `wallet + UPNL₁ + amount × (P − entry) − fee_rate × |amount| × P = 0`.

    It is the FAQ formula with the fee rate in place of the MMR, no maintenance amount and no
    other maintenance. Returns 0 when the price would not be positive (a short's wallet can
    never reach that).
    """
    size = abs(leg.amount)
    side = _direction(leg)
    if size == 0:
        return _ZERO
    price = (side * size * leg.entry_price - wallet - other_unrealized) / (size * (side - fee_rate))
    return max(price, _ZERO)


def round_price_for_user(price: Decimal, tick: Decimal, amount: Decimal) -> Decimal:
    """`price` on the tick grid, rounded in the position holder's favour (up when closing a
    long, down when closing a short), so a forced close never leaves a negative balance."""
    rounding = ROUND_CEILING if amount > 0 else ROUND_FLOOR
    return (price / tick).to_integral_value(rounding=rounding) * tick


def margin_ratio(maintenance: Decimal, margin_balance: Decimal) -> Decimal:
    """Maintenance ÷ margin balance; infinite when the balance is gone but margin is needed."""
    if maintenance <= 0:
        return _ZERO
    if margin_balance <= 0:
        return Decimal("Infinity")
    return maintenance / margin_balance


class RiskLevel(enum.Enum):
    """What the engine does for a margin scope (the cross account or one isolated position)."""

    SAFE = "SAFE"
    MARGIN_CALL = "MARGIN_CALL"
    LIQUIDATE = "LIQUIDATE"


def risk_level(
    maintenance: Decimal, margin_balance: Decimal, call_ratio: Decimal = MARGIN_CALL_RATIO
) -> RiskLevel:
    """LIQUIDATE when margin balance ≤ maintenance (and there is maintenance to meet),
    MARGIN_CALL from a ratio of `call_ratio`, else SAFE."""
    if maintenance <= 0:
        return RiskLevel.SAFE
    ratio = margin_ratio(maintenance, margin_balance)
    if ratio >= _ONE:
        return RiskLevel.LIQUIDATE
    if ratio >= call_ratio:
        return RiskLevel.MARGIN_CALL
    return RiskLevel.SAFE
