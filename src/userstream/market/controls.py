"""Operator moves on the synthetic market (issue 11 item 4): what a test or the admin API asks
for so the market goes exactly where it needs it.

Each command is applied with `SyntheticMarket.control(command, now_ms)` and takes effect from
the source's first step that starts after `now_ms` (at most one 100 ms step later), so the same
commands at the same `now` give the same market however the source is advanced. `symbol=None`
applies a command to every symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

__all__ = [
    "Crash",
    "DriftTo",
    "MarketControl",
    "Pause",
    "Resume",
    "SetFundingRate",
    "SetPrice",
    "ThinBook",
    "WidenSpread",
]


@dataclass(frozen=True, slots=True)
class Pause:
    """Freeze the price, the book and the tape. Mark updates and funding settlements go on
    (they are the exchange's clock, not trading)."""

    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """Undo `Pause`: the random walk restarts from where it stopped."""

    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class SetPrice:
    """Jump the fair price to `price` at the next step; the book re-centres on it."""

    symbol: str | None
    price: Decimal


@dataclass(frozen=True, slots=True)
class DriftTo:
    """Move the fair price to `price` along a log-linear path over `seconds`, without noise,
    then let the random walk continue from there."""

    symbol: str | None
    price: Decimal
    seconds: float


@dataclass(frozen=True, slots=True)
class Crash:
    """Drop the fair price by `percent` % over `seconds` (a `DriftTo` to `price × (1 − N %)`;
    a negative `percent` is a squeeze up)."""

    symbol: str | None
    percent: Decimal
    seconds: float


@dataclass(frozen=True, slots=True)
class WidenSpread:
    """Keep best bid and best ask at least `ticks` ticks apart (1 restores the normal book)."""

    symbol: str | None
    ticks: int


@dataclass(frozen=True, slots=True)
class ThinBook:
    """Scale every resting size by `factor` (0 < factor; 1 restores the normal depth). The
    whole book is rebuilt at the next step."""

    symbol: str | None
    factor: float


@dataclass(frozen=True, slots=True)
class SetFundingRate:
    """Pin the funding-rate estimate to `rate` (settlements use it too); None returns to the
    premium-index formula (market-data spec §4)."""

    symbol: str | None
    rate: Decimal | None


MarketControl: TypeAlias = (
    Pause | Resume | SetPrice | DriftTo | Crash | WidenSpread | ThinBook | SetFundingRate
)
