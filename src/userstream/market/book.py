"""An L2 order book: price levels per side, the symbol's update-id counter, and the walk a
taker order makes through it.

Sizes are absolute and a size of 0 removes the level (market-data spec §2.2, depthUpdate).
Levels are kept in a dict per side plus a sorted price list (`bisect`), so a change is
O(log n) to find and a walk or a top-N snapshot reads the best levels in order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from userstream.market.types import BookUpdate, Fill, Level, Side

__all__ = ["DepthSnapshot", "OrderBook"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """The top of both sides at one update id (`GET /fapi/v1/depth`'s `lastUpdateId`)."""

    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


class _Side:
    """One side's levels; `descending` for bids so index 0 is always the best price."""

    __slots__ = ("_descending", "_prices", "_qty")

    def __init__(self, *, descending: bool) -> None:
        self._descending = descending
        self._qty: dict[Decimal, Decimal] = {}
        self._prices: list[Decimal] = []  # ascending; the best bid is the last

    def set(self, price: Decimal, qty: Decimal) -> None:
        if qty < _ZERO:
            raise ValueError(f"negative quantity {qty} at {price}")
        if qty == _ZERO:
            if self._qty.pop(price, None) is not None:
                del self._prices[bisect.bisect_left(self._prices, price)]
            return
        if price not in self._qty:
            bisect.insort(self._prices, price)
        self._qty[price] = qty

    def clear(self) -> None:
        self._qty.clear()
        self._prices.clear()

    def best(self) -> Level | None:
        if not self._prices:
            return None
        price = self._prices[-1] if self._descending else self._prices[0]
        return Level(price, self._qty[price])

    def top(self, limit: int) -> tuple[Level, ...]:
        prices = self._prices
        best = prices[: -limit - 1 : -1] if self._descending else prices[:limit]
        qty = self._qty
        return tuple(Level(price, qty[price]) for price in best)

    def qty_at(self, price: Decimal) -> Decimal:
        return self._qty.get(price, _ZERO)

    def walk(self, qty: Decimal, limit_price: Decimal | None) -> list[Fill]:
        """Fills for `qty` from the best level on, none past `limit_price` (worse for a
        taker: above it on the asks, below it on the bids). A plain loop over the sorted
        prices: a walk usually takes one level, so a generator's setup would dominate."""
        fills: list[Fill] = []
        prices = self._prices
        qtys = self._qty
        remaining = qty
        descending = self._descending
        count = len(prices)
        index = count - 1 if descending else 0
        step = -1 if descending else 1
        for _ in range(count):
            if remaining <= _ZERO:
                break
            price = prices[index]
            if limit_price is not None and (
                price < limit_price if descending else price > limit_price
            ):
                break
            resting = qtys[price]
            take = resting if resting < remaining else remaining
            fills.append(Fill(price, take))
            remaining -= take
            index += step
        return fills


class OrderBook:
    """One symbol's book. The market source owns it and is the only writer; consumers read it
    (`best_bid`, `walk`, `snapshot`) between advances."""

    __slots__ = ("_asks", "_bids", "last_update_id", "symbol")

    def __init__(self, symbol: str, last_update_id: int = 0) -> None:
        self.symbol = symbol
        self.last_update_id = last_update_id
        self._bids = _Side(descending=True)
        self._asks = _Side(descending=False)

    def apply(self, update: BookUpdate) -> None:
        """Apply a change. Ids must move forward: a stale update is a bug in the source."""
        if update.final_update_id <= self.last_update_id:
            raise ValueError(
                f"{self.symbol}: update {update.final_update_id} is not after {self.last_update_id}"
            )
        self._set_levels(self._bids, update.bids)
        self._set_levels(self._asks, update.asks)
        self.last_update_id = update.final_update_id

    def replace(self, bids: Iterable[Level], asks: Iterable[Level], last_update_id: int) -> None:
        """Replace the whole book (a source's first state, or an upstream's snapshot)."""
        self._bids.clear()
        self._asks.clear()
        self._set_levels(self._bids, bids)
        self._set_levels(self._asks, asks)
        self.last_update_id = last_update_id

    @staticmethod
    def _set_levels(side: _Side, levels: Iterable[Level]) -> None:
        for level in levels:
            side.set(level.price, level.qty)

    def best_bid(self) -> Level | None:
        return self._bids.best()

    def best_ask(self) -> Level | None:
        return self._asks.best()

    def qty_at(self, side: Side, price: Decimal) -> Decimal:
        """Resting quantity at `price` on the side a `side` order would rest on."""
        return (self._bids if side is Side.BUY else self._asks).qty_at(price)

    def snapshot(self, limit: int) -> DepthSnapshot:
        """The best `limit` levels per side, best first, at `last_update_id`."""
        return DepthSnapshot(self.last_update_id, self._bids.top(limit), self._asks.top(limit))

    def walk(self, side: Side, qty: Decimal, limit_price: Decimal | None = None) -> list[Fill]:
        """The fills a taker order of `side` for `qty` would get, best level first, without
        changing the book (fills have no market impact: market-data spec §6.1).

        A BUY walks the asks up to `limit_price`, a SELL the bids down to it; what the book
        cannot fill within the limit is left out, so `sum(fill.qty) <= qty`.
        """
        return (self._asks if side is Side.BUY else self._bids).walk(qty, limit_price)
