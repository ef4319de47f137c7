"""The merge rules of `protocol/resync.py`, on `Book.merged`: a snapshot plus the events that
raced it (received after the snapshot request was sent)."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.client.mirror_events import account_event, open_order, order_event, snapshot
from userstream.client.book import Book
from userstream.protocol.events import AccountUpdate
from userstream.protocol.resync import Versions, contained, trim


def test_an_event_older_than_the_snapshot_is_ignored() -> None:
    snap = snapshot(wallet="900", wallet_time=200, positions=(("2", 200),))
    older = account_event(time=150, wallet="950", position="1")
    book, kept = Book.merged(snap, [older])
    assert kept == 0
    assert book.positions[("BTCUSDT", "BOTH")].position_amount == Decimal(2)
    assert book.balances["USDT"].wallet_balance == Decimal(900)


def test_a_newer_event_is_applied_row_by_row() -> None:
    # The balance row is newer than the event, the position row older: only the position moves.
    snap = snapshot(wallet="900", wallet_time=300, positions=(("2", 200),))
    book, kept = Book.merged(snap, [account_event(time=250, wallet="950", position="3")])
    assert kept == 1
    assert book.positions[("BTCUSDT", "BOTH")].position_amount == Decimal(3)
    assert book.balances["USDT"].wallet_balance == Decimal(900)


def test_a_fill_the_snapshot_contains_is_not_counted_twice() -> None:
    # Order 7 (2 lots) filled 1 at T=100; the snapshot (open order, executed 1) was computed
    # after that, but the fill's events reached the client only after the request left.
    snap = snapshot(
        wallet="990",
        wallet_time=100,
        positions=(("-1", 100),),
        orders=(open_order(7, time=100, filled="1", quantity="2"),),
    )
    fill = order_event(
        7,
        time=100,
        x="TRADE",
        status="PARTIALLY_FILLED",
        filled="1",
        last="1",
        trade_id=55,
        quantity="2",
    )
    account = account_event(time=100, wallet="990", position="-1")
    previous = Book()
    previous.apply(fill)  # the mirror applied it best-effort while the snapshot was in flight
    book, kept = Book.merged(snap, [fill, account], like=previous)
    assert kept == 1  # the ACCOUNT_UPDATE at the same ms rewrites the same values
    assert book.open_orders[7].filled_quantity == Decimal(1)
    assert [f.order.trade_id for f in book.fills] == [55]
    assert book.positions[("BTCUSDT", "BOTH")].position_amount == Decimal(-1)


def test_a_second_fill_in_the_same_millisecond_is_applied() -> None:
    snap = snapshot(orders=(open_order(7, time=100, filled="1", quantity="3"),))
    second = order_event(
        7,
        time=100,
        x="TRADE",
        status="PARTIALLY_FILLED",
        filled="2",
        last="1",
        trade_id=56,
        quantity="3",
    )
    book, _ = Book.merged(snap, [second])
    assert book.open_orders[7].filled_quantity == Decimal(2)


def test_an_order_seen_only_in_events_is_kept() -> None:
    book, kept = Book.merged(snapshot(), [order_event(9, time=500)])
    assert kept == 1
    assert book.open_orders[9].status == "NEW"


def test_an_order_closed_before_the_snapshot_is_not_resurrected() -> None:
    # Its NEW and FILLED both raced the snapshot that no longer lists it.
    raced = [
        order_event(9, time=90),
        order_event(9, time=95, x="TRADE", status="FILLED", filled="1", last="1", trade_id=3),
    ]
    book, _ = Book.merged(snapshot(), raced)
    assert 9 not in book.open_orders
    closed = book.order_by_client_id("c9")
    assert closed is not None
    assert closed.status == "FILLED"


def test_an_end_in_the_snapshots_millisecond_closes_the_order() -> None:
    snap = snapshot(orders=(open_order(7, time=100),))
    cancel = order_event(7, time=100, x="CANCELED", status="CANCELED")
    assert not contained(cancel, Book.from_snapshot(snap).versions)
    book, _ = Book.merged(snap, [cancel])
    assert 7 not in book.open_orders


def test_trim_keeps_the_rows_newer_than_the_snapshot() -> None:
    versions = Versions(balances={"USDT": 300}, positions={("BTCUSDT", "BOTH"): 100})
    event = account_event(time=200, wallet="1", position="1")
    trimmed = trim(event, versions)
    assert isinstance(trimmed, AccountUpdate)
    assert trimmed.update.balances == ()
    assert trimmed.update.positions == event.update.positions
    assert trim(account_event(time=50, wallet="1", position="1"), versions) is None


def test_a_fill_after_the_snapshot_is_listed_once() -> None:
    # Applied live while the snapshot was in flight, then again on the merged state.
    fill = order_event(8, time=300, x="TRADE", status="FILLED", filled="1", last="1", trade_id=77)
    live = Book()
    live.apply(order_event(8, time=290))
    live.apply(fill)
    book, kept = Book.merged(snapshot(orders=(open_order(8, time=290),)), [fill], like=live)
    assert kept == 1
    assert 8 not in book.open_orders
    assert [f.order.trade_id for f in book.fills] == [77]
