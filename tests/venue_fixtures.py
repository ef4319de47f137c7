"""A hand-built market source for the engine's tests: books and marks set by the test."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from userstream.market.book import OrderBook
from userstream.market.types import Level, MarketUpdate, MarkUpdate, Trade
from userstream.protocol.exchange_info import Symbol
from userstream.symbols import load_symbol_table
from userstream.venue import Engine

D = Decimal


class HandMarket:
    """A `MarketSource` whose book and mark the test sets directly."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self._symbols = list(symbols)
        self._books = {s: OrderBook(s) for s in symbols}
        self._marks = {s: D(0) for s in symbols}
        self._update_id = 0
        self._trade_id = 0

    @property
    def symbols(self) -> Sequence[str]:
        return self._symbols

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        return []

    def book(self, symbol: str) -> OrderBook:
        return self._books[symbol]

    def mark(self, symbol: str) -> MarkUpdate:
        return MarkUpdate(symbol, self._marks[symbol], self._marks[symbol], D(0), D(0), D(0), 0, 0)

    def set_book(
        self,
        symbol: str,
        bids: Sequence[tuple[str, str]],
        asks: Sequence[tuple[str, str]],
        mark: str | None = None,
    ) -> None:
        """Replace the book; the mark defaults to the mid of the best levels."""
        self._update_id += 1
        self._books[symbol].replace(
            [Level(D(p), D(q)) for p, q in bids],
            [Level(D(p), D(q)) for p, q in asks],
            self._update_id,
        )
        if mark is not None:
            self._marks[symbol] = D(mark)
        elif bids and asks:
            self._marks[symbol] = (D(bids[0][0]) + D(asks[0][0])) / 2

    def set_mark(self, symbol: str, mark: str) -> None:
        self._marks[symbol] = D(mark)

    def trade(self, symbol: str, price: str, qty: str, *, buyer_is_maker: bool) -> Trade:
        """A public trade print (not applied to the book: fills have no market impact)."""
        self._trade_id += 1
        return Trade(symbol, self._trade_id, D(price), D(qty), buyer_is_maker, 0)


def venue_symbols(*names: str) -> list[Symbol]:
    table = load_symbol_table()
    return [s for s in table.symbols if s.symbol in names]


def make_engine(*names: str) -> tuple[Engine, HandMarket]:
    """An engine on `names` (default BTCUSDT) with a BTCUSDT book 100000.0 / 100000.1."""
    chosen = names or ("BTCUSDT",)
    market = HandMarket(chosen)
    for name in chosen:
        market.set_book(name, [("100000.0", "5")], [("100000.1", "5")], mark="100000")
    return Engine(venue_symbols(*chosen), market), market
