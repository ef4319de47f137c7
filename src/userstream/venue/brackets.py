"""Leverage brackets (notional tiers) per symbol: maximum leverage, maintenance margin ratio
and maintenance amount per tier (trading spec §4.5; `GET /fapi/v1/leverageBracket`).

A minimal table: every symbol gets the same tiers, shaped like BTCUSDT's. The engine only
calls `brackets(symbol)`, `bracket_for(symbol, notional)` and `max_notional(symbol,
leverage)`, so a per-symbol table can replace this one without touching the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

__all__ = ["Bracket", "bracket_for", "brackets", "max_notional"]


@dataclass(frozen=True, slots=True)
class Bracket:
    """`notional_floor <= notional < notional_cap` -> at most `initial_leverage`, maintenance
    margin `notional x maint_margin_ratio - cum`."""

    bracket: int
    initial_leverage: int
    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


# (cap, max leverage, maintenance margin ratio); floors follow from the previous cap.
_TIERS = (
    ("50000", 125, "0.004"),
    ("600000", 100, "0.005"),
    ("3000000", 75, "0.0065"),
    ("12000000", 50, "0.01"),
    ("70000000", 25, "0.02"),
    ("100000000", 20, "0.025"),
    ("230000000", 10, "0.05"),
    ("480000000", 5, "0.1"),
    ("600000000", 4, "0.125"),
    ("800000000", 3, "0.15"),
    ("1200000000", 2, "0.25"),
    ("1800000000", 1, "0.5"),
)


@cache
def _default() -> tuple[Bracket, ...]:
    rows: list[Bracket] = []
    floor = cum = Decimal(0)
    previous_ratio = Decimal(0)
    for number, (cap, leverage, ratio) in enumerate(_TIERS, start=1):
        mmr = Decimal(ratio)
        # spec §4.5: cum(n) = floor(n) x (MMR(n) - MMR(n-1)) + cum(n-1), so the maintenance
        # margin is continuous across tiers.
        cum += floor * (mmr - previous_ratio)
        rows.append(Bracket(number, leverage, floor, Decimal(cap), mmr, cum))
        floor, previous_ratio = Decimal(cap), mmr
    return tuple(rows)


def brackets(symbol: str) -> tuple[Bracket, ...]:
    """The symbol's tiers, lowest notional first."""
    return _default()


def bracket_for(symbol: str, notional: Decimal) -> Bracket:
    """The tier a position of `notional` (absolute, at the mark price) falls into."""
    tiers = brackets(symbol)
    for tier in tiers:
        if notional < tier.notional_cap:
            return tier
    return tiers[-1]


def max_notional(symbol: str, leverage: int) -> Decimal:
    """The largest position notional allowed at `leverage` (`maxNotionalValue`): the cap of
    the highest tier whose maximum leverage is at least `leverage`. 0 if none allows it."""
    allowed = [tier.notional_cap for tier in brackets(symbol) if tier.initial_leverage >= leverage]
    return max(allowed, default=Decimal(0))
