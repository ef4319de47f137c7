"""Instruments from exchangeInfo and a simulated mark price per symbol.

Prices are rounded to the symbol's `tickSize` and kept inside `PRICE_FILTER`; quantities are
multiples of `LOT_SIZE.stepSize`, at least `minQty`, with a notional of at least
`MIN_NOTIONAL` (spec §6.6), so every order the simulator reports could have been placed.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Final

from userstream.market.reference import reference_price
from userstream.protocol.exchange_info import LotSize, MinNotional, PriceFilter, Symbol

__all__ = ["Instrument", "MarkPrices", "instruments_from_symbols"]


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol and the filters its orders must pass."""

    symbol: str
    margin_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    min_notional: Decimal
    maint_margin_rate: Decimal
    reference_price: Decimal

    def round_to_tick(self, value: Decimal | float) -> Decimal:
        """`value` rounded to a multiple of the tick size."""
        return (Decimal(value) / self.tick_size).to_integral_value(ROUND_HALF_UP) * self.tick_size

    def price(self, value: Decimal | float) -> Decimal:
        """`value` rounded to the tick size and clamped to the PRICE_FILTER range."""
        price = self.round_to_tick(value)
        if price < self.min_price:
            price = (self.min_price / self.tick_size).to_integral_value(ROUND_CEILING)
            price *= self.tick_size
        if price > self.max_price:
            price = (self.max_price / self.tick_size).to_integral_value(ROUND_FLOOR)
            price *= self.tick_size
        return price

    def quantity(self, notional: Decimal, price: Decimal) -> Decimal:
        """The quantity worth about `notional` at `price`: a multiple of the step size, at
        least `minQty`, and worth at least `MIN_NOTIONAL`."""
        steps = (notional / price / self.step_size).to_integral_value(ROUND_FLOOR)
        floor_steps = (self.min_notional / price / self.step_size).to_integral_value(ROUND_CEILING)
        min_steps = (self.min_qty / self.step_size).to_integral_value(ROUND_CEILING)
        return max(steps, floor_steps, min_steps) * self.step_size

    def split(self, quantity: Decimal, parts: int, rng: random.Random) -> list[Decimal]:
        """Cut `quantity` into at most `parts` fills, each a positive multiple of the step."""
        steps = int(quantity / self.step_size)
        parts = max(1, min(parts, steps))
        cuts = sorted(rng.sample(range(1, steps), parts - 1)) if parts > 1 else []
        bounds = [0, *cuts, steps]
        return [(b - a) * self.step_size for a, b in itertools.pairwise(bounds)]


def instruments_from_symbols(symbols: Iterable[Symbol]) -> tuple[Instrument, ...]:
    """Instruments for the `TRADING` symbols of an exchangeInfo symbol list, in list order
    (`userstream.symbols.load_symbol_table().symbols` gives the server's defaults)."""
    instruments = []
    for symbol in symbols:
        price_filter, lot = symbol.filter(PriceFilter), symbol.filter(LotSize)
        if symbol.status != "TRADING" or price_filter is None or lot is None:
            continue
        min_price = Decimal(price_filter.min_price)
        max_price = Decimal(price_filter.max_price)
        reference = reference_price(symbol.symbol, min_price, max_price)
        min_notional = symbol.filter(MinNotional)
        instrument = Instrument(
            symbol=symbol.symbol,
            margin_asset=symbol.margin_asset,
            tick_size=Decimal(price_filter.tick_size),
            step_size=Decimal(lot.step_size),
            min_qty=Decimal(lot.min_qty),
            min_price=min_price,
            max_price=max_price,
            min_notional=Decimal(min_notional.notional if min_notional else "5"),
            maint_margin_rate=Decimal(symbol.maint_margin_percent) / 100,
            reference_price=reference,
        )
        instruments.append(replace(instrument, reference_price=instrument.price(reference)))
    return tuple(instruments)


class MarkPrices:
    """A mean-reverting random walk of each symbol's mark price, one tick of the walk per
    `walk()` call, so the prices depend only on the seed and the number of calls."""

    VOLATILITY: Final = 0.0015  # standard deviation of one step's log return
    REVERSION: Final = 0.002  # pull towards the reference price per step

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._instruments = {i.symbol: i for i in instruments}
        self._marks = {s: i.reference_price for s, i in self._instruments.items()}

    def __getitem__(self, symbol: str) -> Decimal:
        return self._marks[symbol]

    def walk(self, symbol: str, rng: random.Random) -> Decimal:
        instrument = self._instruments[symbol]
        mark = float(self._marks[symbol])
        pull = self.REVERSION * math.log(float(instrument.reference_price) / mark)
        moved = mark * math.exp(rng.gauss(0.0, self.VOLATILITY) + pull)
        self._marks[symbol] = instrument.price(moved)
        return self._marks[symbol]
