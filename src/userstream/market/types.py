"""The seam between a market source and what consumes it (the venue's engine, the market
streams and the market REST).

A source is advanced with the server's `now` and returns what happened since the previous
advance, oldest first. Prices and quantities are `Decimal` already on the symbol's tick and
step grid, so a consumer never rounds. Times are milliseconds on the server's clock (virtual
or real); ids are per symbol and strictly increasing, as Binance's are
(`shared/spec/binance-usdm-market-data.md` §2.2, §2.3).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, TypeAlias

import msgspec

if TYPE_CHECKING:
    from userstream.market.book import OrderBook

__all__ = [
    "BookUpdate",
    "Fill",
    "FundingSettlement",
    "Level",
    "MarkUpdate",
    "MarketSource",
    "MarketUpdate",
    "Side",
    "Trade",
]


class Side(enum.StrEnum):
    """An order's side. A BUY taker consumes asks; a SELL taker consumes bids."""

    BUY = "BUY"
    SELL = "SELL"


# Level and Fill are structs, not frozen dataclasses: the book builds them for every order
# (its best price, its walk) and every book change, and a frozen dataclass costs about five
# times as much to build.


class Level(msgspec.Struct, frozen=True, gc=False):
    """One price level: the quantity resting at `price`. Quantity 0 deletes the level."""

    price: Decimal
    qty: Decimal


class Fill(msgspec.Struct, frozen=True, gc=False):
    """One piece of a taker order's execution against one book level."""

    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade on the market's public tape (`@trade`, `@aggTrade`, `GET /fapi/v1/trades`).

    `buyer_is_maker` is Binance's `m`: True means the taker sold, so the trade can fill
    resting BUY orders at or above `price` (market-data spec §6.1: only the other side's
    aggressor fills a resting order).
    """

    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    buyer_is_maker: bool
    time_ms: int
    # The aggTrade this trade belongs to when the source knows it (a replayed aggTrades file,
    # an upstream @aggTrade); None lets `MarketState` aggregate by Binance's rule (spec §2.1).
    aggregate_id: int | None = None


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """A change of the book: absolute sizes per level, 0 removes the level (spec §2.2
    depthUpdate). `first_update_id..final_update_id` are the ids this change consumed from
    the symbol's one update-id counter (spec §2.3), shared with the depth snapshot's
    `lastUpdateId` and bookTicker's `u`."""

    symbol: str
    first_update_id: int
    final_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    time_ms: int


@dataclass(frozen=True, slots=True)
class MarkUpdate:
    """Mark, index and the current funding-rate estimate (spec §4; `@markPrice`,
    `premiumIndex`). `next_funding_time_ms` is the next settlement instant."""

    symbol: str
    mark_price: Decimal
    index_price: Decimal
    estimated_settle_price: Decimal
    funding_rate: Decimal
    interest_rate: Decimal
    next_funding_time_ms: int
    time_ms: int
    # The premium index (spec §4 `P`) when this update carries a new 5 s sample, else None;
    # `premiumIndexKlines` are built from these samples.
    premium_index: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FundingSettlement:
    """A funding instant crossed by an advance (spec §4 "Settlement"): positions open at
    `funding_time_ms` pay or receive notional at `mark_price` × `funding_rate`."""

    symbol: str
    funding_time_ms: int
    funding_rate: Decimal
    mark_price: Decimal


MarketUpdate: TypeAlias = Trade | BookUpdate | MarkUpdate | FundingSettlement


class MarketSource(Protocol):
    """Where a market's prices come from (synthetic, replay, upstream).

    The caller owns time: it calls `advance(now_ms)` with non-decreasing `now_ms` and
    applies the returned updates in order. `book(symbol)` is the book as of the last
    advance, the same state the depth snapshot and the streams are built from.
    """

    @property
    def symbols(self) -> Sequence[str]:
        """The symbols this source prices, in exchangeInfo order."""
        ...

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        """Everything that happened after the previous advance up to `now_ms`, oldest first."""
        ...

    def book(self, symbol: str) -> OrderBook:
        """The symbol's book as of the last advance. Raises `KeyError` for an unknown symbol."""
        ...

    def mark(self, symbol: str) -> MarkUpdate:
        """The symbol's latest mark, index and funding estimate."""
        ...
