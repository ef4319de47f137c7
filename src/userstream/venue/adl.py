"""Auto-deleveraging (ADL): who closes the part of a liquidation the market cannot absorb.

Binance, "What Is Auto-Deleveraging (ADL) and How Does It Work?" (support FAQ 360033525471):
ADL is the last step, taken when the liquidation engine cannot close the bankrupt position in
the market; the opposite positions of other traders are closed "at the bankruptcy price of the
initial liquidated order, no trading fee will be charged. Any open orders will be canceled."
Traders are queued by "LeveragePnL", "unrealized PnL/collateral multiplied by the margin
ratio"; the FAQ's exact formulation (as quoted on dev.binance.vision, "How to caculating
Leverage Pnl Quantile", t/17801):

    Pnl Percent   = max(0, Unrealized Profit) / max(1, Wallet Balance)
    Margin Ratio  = Maintenance Margin / (Wallet Balance + Unrealized Profit), 0 when that
                    balance is ≤ 0
    Leverage Pnl  = Pnl Percent × Margin Ratio
    Quantile      = rank(Leverage Pnl) / Total User Count

`GET /fapi/v1/adlQuantile` and positionRisk `adl` show the quantile as 0–4, "the queue
position and possibility of ADL from low to high". The venue scores each position with its
own uPnL over its margin scope (the cross wallet with the scope's maintenance and uPnL, or the
isolated wallet and the position's own), and buckets the rank among the open positions of the
same symbol and direction into five. A position with no profit scores 0 and shows quantile 0.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = [
    "QUANTILES",
    "Candidate",
    "allocate",
    "leverage_pnl",
    "quantile",
    "quantile_sides",
    "ranked",
]

QUANTILES: Final = 5  # adl 0..4
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)


def leverage_pnl(
    unrealized: Decimal, wallet: Decimal, maintenance: Decimal, scope_unrealized: Decimal
) -> Decimal:
    """The FAQ's LeveragePnL of a position with uPnL `unrealized` held in a scope of
    `wallet`, `maintenance` and `scope_unrealized` (all of the scope's positions)."""
    pnl_percent = max(_ZERO, unrealized) / max(_ONE, wallet)
    balance = wallet + scope_unrealized
    ratio = maintenance / balance if balance > 0 else _ZERO
    return pnl_percent * ratio


def quantile(score: Decimal, scores: Sequence[Decimal]) -> int:
    """0–4: the share of `scores` (the position's own included) at or below `score`, in five
    buckets; 0 for a score of 0 (no profit, last in the queue)."""
    if score <= 0 or not scores:
        return 0
    at_or_below = sum(1 for s in scores if s <= score)
    # ceil(5 × rank / n) − 1, in integers.
    return min(QUANTILES - 1, max(0, -(-QUANTILES * at_or_below // len(scores)) - 1))


def quantile_sides(
    hedge_crossed: bool, quantiles: Mapping[str, int], open_sides: Collection[str]
) -> dict[str, int]:
    """`GET /fapi/v1/adlQuantile`'s `adlQuantile` object for one symbol, from each open
    position side's quantile (Binance, "Position ADL Quantile Estimation"): one-way mode and
    isolated hedge mode show "LONG", "SHORT" and "BOTH", each side's own quantile; cross
    hedge mode shows "HEDGE" (a marker, value 0) instead of "BOTH", and "a same value
    calculated on unrealized pnls on long and short sides' positions" for LONG and SHORT when
    both are open. How that shared value combines the sides is not published: the venue
    shows the higher of the two sides' quantiles, the side nearer the head of its queue."""
    long, short = quantiles.get("LONG", 0), quantiles.get("SHORT", 0)
    if not hedge_crossed:
        return {"LONG": long, "SHORT": short, "BOTH": quantiles.get("BOTH", 0)}
    if "LONG" in open_sides and "SHORT" in open_sides:
        long = short = max(long, short)
    return {"LONG": long, "SHORT": short, "HEDGE": 0}


@dataclass(frozen=True, slots=True)
class Candidate:
    """An opposite position that ADL may close: its owner, side, size and queue score."""

    account_id: int
    position_side: str
    amount: Decimal  # signed as positionAmt
    score: Decimal
    unrealized: Decimal


def ranked(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Highest LeveragePnL first; equal scores by larger uPnL, then account and side so the
    order never depends on dict order."""
    return sorted(
        candidates, key=lambda c: (-c.score, -c.unrealized, c.account_id, c.position_side)
    )


def allocate(queue: Sequence[Candidate], qty: Decimal) -> list[tuple[Candidate, Decimal]]:
    """Walk `queue` (already ranked) closing whole positions until `qty` is covered; the
    last one is closed in part. Less than `qty` when the queue runs out."""
    taken: list[tuple[Candidate, Decimal]] = []
    left = qty
    for candidate in queue:
        if left <= 0:
            break
        take = min(abs(candidate.amount), left)
        taken.append((candidate, take))
        left -= take
    return taken
