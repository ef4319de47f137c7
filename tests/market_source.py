"""A tiny deterministic `MarketSource` for the market tests (market/types.py seam only).

Per symbol and per advance: the mid moves by at most one tick, one to three levels on each side
change (sizes absolute, a few deletions), maybe one trade at the touch, and a mark update on
every whole second. Update ids jump by 1 to 5 per change, as Binance's are not contiguous
(spec §2.3), so a test of the `pu` chain cannot pass by counting.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal

from userstream.market.book import OrderBook
from userstream.market.types import (
    BookUpdate,
    FundingSettlement,
    Level,
    MarketUpdate,
    MarkUpdate,
    Trade,
)

TICK = Decimal("0.10")
STEP = Decimal("0.001")
FUNDING_MS = 8 * 3_600_000


class TinyMarket:
    def __init__(
        self,
        symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
        seed: int = 1,
        funding_ms: int = FUNDING_MS,
    ) -> None:
        self._symbols = list(symbols)
        self._funding_ms = funding_ms
        self._rng = random.Random(seed)
        self._books = {s: OrderBook(s, 1_000_000) for s in self._symbols}
        self._mid = {s: Decimal(60_000 + 1000 * i) for i, s in enumerate(self._symbols)}
        self._trade_id = dict.fromkeys(self._symbols, 5_000)
        self._marks: dict[str, MarkUpdate] = {}
        self._now = 0
        for symbol, book in self._books.items():
            mid = self._mid[symbol]
            book.replace(
                [Level(mid - TICK * k, self._qty()) for k in range(1, 40)],
                [Level(mid + TICK * k, self._qty()) for k in range(1, 40)],
                1_000_000,
            )
            self._marks[symbol] = self._mark(symbol, 0)

    @property
    def symbols(self) -> Sequence[str]:
        return self._symbols

    def book(self, symbol: str) -> OrderBook:
        return self._books[symbol]

    def mark(self, symbol: str) -> MarkUpdate:
        return self._marks[symbol]

    def _qty(self) -> Decimal:
        return STEP * self._rng.randint(1, 3000)

    def _mark(self, symbol: str, now_ms: int) -> MarkUpdate:
        mid = self._mid[symbol]
        return MarkUpdate(
            symbol=symbol,
            mark_price=mid + Decimal("0.01234567"),
            index_price=mid - Decimal("0.5"),
            estimated_settle_price=mid,
            funding_rate=Decimal("0.0001"),
            interest_rate=Decimal("0.0001"),
            next_funding_time_ms=now_ms - now_ms % self._funding_ms + self._funding_ms,
            time_ms=now_ms,
        )

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        previous, self._now = self._now, now_ms
        if previous == 0 or now_ms <= previous:
            return []
        out: list[MarketUpdate] = []
        for symbol in self._symbols:
            out.extend(self._step(symbol, now_ms))
            mark = self._marks[symbol]
            if previous // 1000 != now_ms // 1000:
                mark = self._marks[symbol] = self._mark(symbol, now_ms - now_ms % 1000)
                out.append(mark)
            interval = self._funding_ms
            if previous // interval != now_ms // interval:
                funding_time = now_ms - now_ms % interval
                out.append(
                    FundingSettlement(symbol, funding_time, Decimal("0.0001"), mark.mark_price)
                )
        return out

    def _step(self, symbol: str, now_ms: int) -> list[MarketUpdate]:
        rng = self._rng
        book = self._books[symbol]
        old = self._mid[symbol]
        mid = old + TICK * rng.choice((-1, 0, 0, 1))
        self._mid[symbol] = mid
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        if mid > old:
            asks[mid] = Decimal(0)
            bids[old] = self._qty()
        elif mid < old:
            bids[mid] = Decimal(0)
            asks[old] = self._qty()
        for _ in range(rng.randint(1, 3)):
            k = rng.randint(1, 30)
            bids[mid - TICK * k] = Decimal(0) if rng.random() < 0.15 else self._qty()
            asks[mid + TICK * k] = Decimal(0) if rng.random() < 0.15 else self._qty()
        first = book.last_update_id + rng.randint(1, 5)
        final = first + rng.randint(0, 4)
        update = BookUpdate(
            symbol,
            first,
            final,
            tuple(Level(p, q) for p, q in bids.items()),
            tuple(Level(p, q) for p, q in asks.items()),
            now_ms,
        )
        book.apply(update)
        out: list[MarketUpdate] = [update]
        if rng.random() < 0.6:
            sell = rng.random() < 0.5
            level = book.best_bid() if sell else book.best_ask()
            assert level is not None
            self._trade_id[symbol] += 1
            qty = min(level.qty, STEP * rng.randint(1, 50))
            out.append(Trade(symbol, self._trade_id[symbol], level.price, qty, sell, now_ms))
        return out
