"""Where the venue's orders meet the market (trading spec §4.3; fill model in
`docs/venue-fill-model.md`).

* A taker order walks the market source's book (`OrderBook.walk`, no market impact) up to
  its limit, and meets the same account's own resting orders on the way, at their prices,
  where self-trade prevention decides (`TakerStep`).
* Resting orders of every account sit in a `RestingBook`, best price first, then queue
  priority. A public trade fills them when it prints strictly through their price with the
  other side as aggressor (`Trade.buyer_is_maker`), at their own limit price, the trade's
  quantity shared out in that order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

import msgspec

from userstream.market.book import OrderBook
from userstream.market.types import Side as MarketSide
from userstream.protocol.events import Side
from userstream.venue.state import Order

# The market's side of each order side, looked up (an enum call costs ~1 µs per order).
_MARKET_SIDES: Final = {side: MarketSide(side.value) for side in Side}
_ZERO: Final = Decimal(0)

__all__ = ["RestingBook", "TakerStep", "plan_taker"]


class _Queue:
    """One side of one symbol: keys `(sort price, priority)`, ascending, best first."""

    __slots__ = ("_keys", "_orders")

    def __init__(self) -> None:
        self._keys: list[tuple[Decimal, int]] = []
        self._orders: dict[int, tuple[int, Order]] = {}

    @staticmethod
    def key(order: Order) -> tuple[Decimal, int]:
        return (-order.price if order.side is Side.BUY else order.price, order.priority)

    def add(self, account_id: int, order: Order) -> None:
        bisect.insort(self._keys, self.key(order))
        self._orders[order.priority] = (account_id, order)

    def remove(self, order: Order) -> None:
        key = self.key(order)
        index = bisect.bisect_left(self._keys, key)
        if index < len(self._keys) and self._keys[index] == key:
            del self._keys[index]
            del self._orders[order.priority]

    def through(self, side: Side, price: Decimal) -> list[tuple[int, Order]]:
        """Orders whose limit a trade at `price` went strictly through, best first."""
        found: list[tuple[int, Order]] = []
        for sort_price, priority in self._keys:
            if (-sort_price <= price) if side is Side.BUY else (sort_price >= price):
                break
            found.append(self._orders[priority])
        return found


class RestingBook:
    """Every account's resting LIMIT orders, per symbol and side."""

    __slots__ = ("_queues",)

    def __init__(self) -> None:
        self._queues: dict[tuple[str, Side], _Queue] = {}

    def _queue(self, symbol: str, side: Side) -> _Queue:
        queue = self._queues.get((symbol, side))
        if queue is None:
            queue = self._queues[(symbol, side)] = _Queue()
        return queue

    def add(self, account_id: int, order: Order) -> None:
        self._queue(order.symbol, order.side).add(account_id, order)

    def remove(self, order: Order) -> None:
        self._queue(order.symbol, order.side).remove(order)

    def filled_by_trade(
        self, symbol: str, buyer_is_maker: bool, price: Decimal
    ) -> list[tuple[int, Order]]:
        """The resting orders a public trade at `price` fills, in fill order: bids above
        the price when the taker sold (`buyer_is_maker`), asks below it when it bought."""
        side = Side.BUY if buyer_is_maker else Side.SELL
        queue = self._queues.get((symbol, side))
        return queue.through(side, price) if queue is not None else []


class TakerStep(msgspec.Struct, frozen=True):
    """One place a taker order meets liquidity: a book level (`own` None) or one of the
    account's own resting orders (price is its limit, qty its remaining quantity)."""

    price: Decimal
    qty: Decimal
    own: Order | None = None


def plan_taker(
    book: OrderBook,
    side: Side,
    qty: Decimal,
    limit: Decimal | None,
    own_orders: Iterable[Order],
) -> list[TakerStep]:
    """The liquidity a taker order of `side` for `qty` up to `limit` meets, in the order it
    meets it: book levels and own crossing orders by price, an own order first at an equal
    price (it rests in the venue's book, ahead of the market's level). `own_orders` are
    the account's open orders on the symbol (those on the taker's side are skipped).

    When the book alone fills `qty`, own orders priced worse than its last level are left
    out: the taker is done before it would meet them (a self-trade or an expired maker does
    not leave more to fill than the book levels cover, so its remaining quantity is 0 once
    they are taken), and the plan still fills `qty` (the fill-or-kill check)."""
    steps = [TakerStep(fill.price, fill.qty) for fill in book.walk(_MARKET_SIDES[side], qty, limit)]
    bound = limit
    if steps and (steps[0].qty >= qty or sum((s.qty for s in steps), _ZERO) >= qty):
        bound = steps[-1].price
    buy = side is Side.BUY
    crossing = [
        TakerStep(order.price, order.remaining, order)
        for order in own_orders
        if order.side is not side
        and (bound is None or (order.price <= bound if buy else order.price >= bound))
    ]
    if not crossing:
        return steps
    sign = 1 if side is Side.BUY else -1
    merged = steps + crossing
    merged.sort(key=lambda s: (sign * s.price, s.own is None, s.own.priority if s.own else 0))
    return merged
