"""Algo (conditional) orders: checks, the status machine and the ALGO_UPDATE it produces."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from userstream.exceptions import BinanceAPIError
from userstream.protocol.codec import encode_event
from userstream.venue.algo import (
    AlgoBook,
    AlgoState,
    CancelAlgoOrder,
    NewAlgoOrder,
    trigger_reject,
)

STOP = NewAlgoOrder(
    symbol="BTCUSDT",
    side="SELL",
    order_type="STOP_MARKET",
    quantity=Decimal("0.010"),
    trigger_price=Decimal("58000"),
    working_type="MARK_PRICE",
    client_algo_id="sl-1",
)


def place(book: AlgoBook, cmd: NewAlgoOrder, price: str = "60000", hedge: bool = False) -> int:
    record, _ = book.place(
        1, cmd, now_ms=1000, working_price=Decimal(price), hedge_mode=hedge, client_id="gen"
    )
    return record.algo_id


def code_of(book: AlgoBook, cmd: NewAlgoOrder, price: str = "60000", hedge: bool = False) -> int:
    with pytest.raises(BinanceAPIError) as caught:
        place(book, cmd, price, hedge)
    return caught.value.code


def test_lifecycle_new_triggering_triggered_finished() -> None:
    book = AlgoBook()
    record, new = book.place(
        1, STOP, now_ms=1000, working_price=Decimal(60000), hedge_mode=False, client_id="gen"
    )
    body = msgspec.json.decode(encode_event(new))
    assert body["e"] == "ALGO_UPDATE"
    assert body["o"]["X"] == "NEW"
    assert body["o"]["ai"] == ""
    assert body["o"]["tt"] == 0
    assert body["o"]["caid"] == "sl-1"
    assert "ap" not in body["o"]
    assert "ia" not in body["o"]
    # A CONTRACT_PRICE tick does not move a MARK_PRICE order.
    assert book.on_price("BTCUSDT", "CONTRACT_PRICE", Decimal(50000), 2000) == ([], [])
    fired, events = book.on_price("BTCUSDT", "MARK_PRICE", Decimal("57999.9"), 3000)
    assert fired == [record]
    assert [e.order.status for e in events] == ["TRIGGERING"]
    assert events[0].order.trigger_time == 3000
    assert record.child_type == "MARKET"
    triggered = book.triggered(record, 42, 3000)
    assert (triggered.order.status, triggered.order.order_id) == ("TRIGGERED", "42")
    assert triggered.order.actual_order_type == "MARKET"
    done = book.finished(record, Decimal("57990.1"), Decimal("0.010"), 3001)
    assert done.order.status == "FINISHED"
    assert (done.order.average_price, done.order.executed_quantity) == (
        Decimal("57990.1"),
        Decimal("0.010"),
    )
    assert book.open_orders(1) == []
    # The client id is free again once the order triggered.
    place(book, STOP)


def test_cancel_and_cancel_all() -> None:
    book = AlgoBook()
    first = place(book, STOP)
    with pytest.raises(BinanceAPIError) as caught:
        place(book, STOP)
    assert caught.value.code == -20132
    event = book.cancel(1, CancelAlgoOrder(client_algo_id="sl-1"), 2000)
    assert event.order.status == "CANCELED"
    assert event.order.algo_id == first
    with pytest.raises(BinanceAPIError) as caught:
        book.cancel(1, CancelAlgoOrder(algo_id=first), 2000)
    assert caught.value.code == -20124
    with pytest.raises(BinanceAPIError):
        book.cancel(2, CancelAlgoOrder(algo_id=first), 2000)  # another account's order
    place(book, STOP)
    place(book, variant(client_algo_id="sl-2"))
    assert len(book.cancel_all(1, "BTCUSDT", 3000)) == 2
    assert len(book) == 0
    assert book.on_price("BTCUSDT", "MARK_PRICE", Decimal(1), 4000) == ([], [])


def variant(base: NewAlgoOrder = STOP, **changes: Any) -> NewAlgoOrder:
    return dataclasses.replace(base, **changes)


def test_immediate_trigger_is_2021() -> None:
    book = AlgoBook()
    assert code_of(book, STOP, price="58000") == -2021
    tp = variant(order_type="TAKE_PROFIT_MARKET")
    assert code_of(book, tp, price="60000") == -2021  # SELL TP fires at ≥ 58000
    trailing = NewAlgoOrder(
        symbol="BTCUSDT",
        side="SELL",
        order_type="TRAILING_STOP_MARKET",
        quantity=Decimal(1),
        callback_rate=Decimal(1),
        activate_price=Decimal(59000),
    )
    assert code_of(book, trailing, price="60000") == -2021


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"algo_type": "VP"}, -1130),
        ({"order_type": "LIMIT"}, -1116),
        ({"trigger_price": None}, -1102),
        ({"quantity": None}, -1102),
        ({"close_position": True}, -4137),
        ({"close_position": True, "quantity": None, "reduce_only": True}, -1106),
        ({"order_type": "STOP"}, -1102),  # STOP needs a price
        ({"price": Decimal(1)}, -1106),  # STOP_MARKET takes none
        ({"callback_rate": Decimal(1)}, -1106),
        ({"position_side": "LONG"}, -4061),
        ({"client_algo_id": "x" * 37}, -4015),
    ],
)
def test_parameter_rules(changes: dict[str, Any], code: int) -> None:
    assert code_of(AlgoBook(), variant(**changes)) == code


def test_close_position_only_on_market_stops_and_hedge_needs_a_side() -> None:
    limit_stop = variant(order_type="STOP", price=Decimal(1), quantity=None)
    assert code_of(AlgoBook(), variant(limit_stop, close_position=True)) == (-4136)
    assert code_of(AlgoBook(), STOP, hedge=True) == -4061
    hedged = variant(position_side="LONG")
    place(AlgoBook(), hedged, hedge=True)
    with_reduce = variant(hedged, reduce_only=False)
    assert code_of(AlgoBook(), with_reduce, hedge=True) == -1106


def test_trailing_activation_sends_a_second_new_and_fires_on_the_callback() -> None:
    book = AlgoBook()
    trailing = NewAlgoOrder(
        symbol="BTCUSDT",
        side="SELL",
        order_type="TRAILING_STOP_MARKET",
        quantity=Decimal(1),
        callback_rate=Decimal(5),
        activate_price=Decimal(100),
        client_algo_id="trail",
    )
    record, new = book.place(
        1, trailing, now_ms=1, working_price=Decimal(95), hedge_mode=False, client_id="g"
    )
    assert new.order.is_activated is False
    _, events = book.on_price("BTCUSDT", "CONTRACT_PRICE", Decimal(101), 2)
    assert [(e.order.status, e.order.is_activated) for e in events] == [("NEW", True)]
    book.on_price("BTCUSDT", "CONTRACT_PRICE", Decimal(120), 3)
    fired, events = book.on_price("BTCUSDT", "CONTRACT_PRICE", Decimal(114), 4)
    assert fired == [record]
    assert events[0].order.status == "TRIGGERING"


def test_price_protection_keeps_the_order_waiting() -> None:
    book = AlgoBook()
    protected = variant(price_protect=True)
    place(book, protected)
    fired, events = book.on_price(
        "BTCUSDT", "MARK_PRICE", Decimal(57000), 2, protection_tripped=True
    )
    assert (fired, events) == ([], [])
    assert len(book) == 1
    fired, _ = book.on_price("BTCUSDT", "MARK_PRICE", Decimal(57000), 3)
    assert len(fired) == 1


def test_rejected_and_expired_and_the_deprecated_reject_event() -> None:
    book = AlgoBook()
    place(book, STOP)
    place(book, variant(client_algo_id="sl-2"))
    fired, _ = book.on_price("BTCUSDT", "MARK_PRICE", Decimal(1), 2)
    rejected = book.rejected(fired[0], "Reduce Only reject", 2)
    assert (rejected.order.status, rejected.order.reject_reason) == (
        "REJECTED",
        "Reduce Only reject",
    )
    legacy = trigger_reject(fired[0], 2)
    assert legacy.reject.reason == "Reduce Only reject"
    assert legacy.reject.order_id == fired[0].algo_id
    assert book.expired(fired[1], 2).order.status == "EXPIRED"


def test_state_round_trip_rebuilds_the_index() -> None:
    book = AlgoBook()
    place(book, STOP)
    raw = msgspec.json.encode(book.state)
    restored = AlgoBook(msgspec.json.decode(raw, type=AlgoState))
    assert len(restored) == 1
    assert code_of(restored, STOP) == -20132
    fired, _ = restored.on_price("BTCUSDT", "MARK_PRICE", Decimal(1), 2)
    assert [r.client_algo_id for r in fired] == ["sl-1"]
    assert restored.get(1, None, "sl-1").algo_id == fired[0].algo_id
