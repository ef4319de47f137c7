from decimal import Decimal

import pytest

from userstream.market.book import OrderBook
from userstream.market.types import BookUpdate, Fill, Level, Side


def _book() -> OrderBook:
    book = OrderBook("BTCUSDT")
    book.apply(
        BookUpdate(
            "BTCUSDT",
            1,
            4,
            bids=(Level(Decimal("100.0"), Decimal("1")), Level(Decimal("99.9"), Decimal("2"))),
            asks=(Level(Decimal("100.1"), Decimal("1")), Level(Decimal("100.2"), Decimal("3"))),
            time_ms=0,
        )
    )
    return book


def test_best_levels_and_snapshot_are_best_first() -> None:
    book = _book()
    assert book.best_bid() == Level(Decimal("100.0"), Decimal("1"))
    assert book.best_ask() == Level(Decimal("100.1"), Decimal("1"))
    snapshot = book.snapshot(5)
    assert snapshot.last_update_id == 4
    assert [level.price for level in snapshot.bids] == [Decimal("100.0"), Decimal("99.9")]
    assert [level.price for level in snapshot.asks] == [Decimal("100.1"), Decimal("100.2")]


def test_walk_takes_levels_in_order_up_to_the_limit_without_changing_the_book() -> None:
    book = _book()
    assert book.walk(Side.BUY, Decimal("2.5")) == [
        Fill(Decimal("100.1"), Decimal("1")),
        Fill(Decimal("100.2"), Decimal("1.5")),
    ]
    assert book.walk(Side.SELL, Decimal("5"), limit_price=Decimal("99.95")) == [
        Fill(Decimal("100.0"), Decimal("1"))
    ]
    assert book.best_ask() == Level(Decimal("100.1"), Decimal("1"))


def test_walk_stops_at_the_quantity_the_limit_or_the_end_of_the_side() -> None:
    book = _book()
    # More than the side holds: every level, best first, and no more.
    assert book.walk(Side.SELL, Decimal("10")) == [
        Fill(Decimal("100.0"), Decimal("1")),
        Fill(Decimal("99.9"), Decimal("2")),
    ]
    # A limit at a level's price takes it; one tick better than the best takes nothing.
    assert book.walk(Side.BUY, Decimal("10"), limit_price=Decimal("100.2")) == [
        Fill(Decimal("100.1"), Decimal("1")),
        Fill(Decimal("100.2"), Decimal("3")),
    ]
    assert book.walk(Side.BUY, Decimal("1"), limit_price=Decimal("100.0")) == []
    # Exactly one level's size stops there; nothing asked, nothing taken.
    assert book.walk(Side.SELL, Decimal("1")) == [Fill(Decimal("100.0"), Decimal("1"))]
    assert book.walk(Side.BUY, Decimal("0")) == []
    assert OrderBook("ETHUSDT").walk(Side.BUY, Decimal("1")) == []


def test_zero_size_deletes_and_stale_ids_are_refused() -> None:
    book = _book()
    book.apply(
        BookUpdate("BTCUSDT", 5, 5, bids=(Level(Decimal("100.0"), Decimal(0)),), asks=(), time_ms=1)
    )
    assert book.best_bid() == Level(Decimal("99.9"), Decimal("2"))
    with pytest.raises(ValueError, match="not after"):
        book.apply(BookUpdate("BTCUSDT", 5, 5, bids=(), asks=(), time_ms=1))
