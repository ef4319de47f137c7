"""The trigger index against a direct model that checks every order on every tick."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from userstream.venue.triggers import (
    Direction,
    Fired,
    FiredKind,
    TriggerIndex,
    direction_of,
    would_trigger,
)


def test_direction_table() -> None:
    assert direction_of("STOP_MARKET", "BUY") is Direction.RISE
    assert direction_of("STOP", "SELL") is Direction.FALL
    assert direction_of("TAKE_PROFIT_MARKET", "BUY") is Direction.FALL
    assert direction_of("TAKE_PROFIT", "SELL") is Direction.RISE
    assert would_trigger(Direction.RISE, Decimal(100), Decimal(100))
    assert not would_trigger(Direction.FALL, Decimal(100), Decimal("100.1"))


def test_stops_fire_once_per_book_and_working_type() -> None:
    index = TriggerIndex()
    index.add_stop(1, "BTCUSDT", "MARK_PRICE", Direction.RISE, Decimal(110))
    index.add_stop(2, "BTCUSDT", "CONTRACT_PRICE", Direction.RISE, Decimal(110))
    index.add_stop(3, "BTCUSDT", "MARK_PRICE", Direction.FALL, Decimal(90))
    index.add_stop(4, "ETHUSDT", "MARK_PRICE", Direction.RISE, Decimal(110))
    assert index.on_price("BTCUSDT", "MARK_PRICE", Decimal(109)) == []
    assert index.on_price("BTCUSDT", "MARK_PRICE", Decimal(111)) == [
        Fired(1, FiredKind.TRIGGERED, Decimal(111))
    ]
    assert index.on_price("BTCUSDT", "MARK_PRICE", Decimal(120)) == []
    assert len(index) == 3
    assert 2 in index
    assert 1 not in index
    assert index.remove(3)
    assert not index.remove(3)
    assert index.on_price("BTCUSDT", "MARK_PRICE", Decimal(1)) == []


def test_trailing_sell_activates_then_follows_the_high() -> None:
    # Binance's example shape: activation 100, callback 5 %: the high after activation is
    # 120, so the order fires at or below 114.
    index = TriggerIndex()
    assert not index.add_trailing(
        7, "BTCUSDT", "CONTRACT_PRICE", "SELL", Decimal(5), Decimal(100), Decimal(95)
    )

    def tick(price: str | int) -> list[Fired]:
        return index.on_price("BTCUSDT", "CONTRACT_PRICE", Decimal(price))

    assert tick(99) == []
    assert tick(101) == [Fired(7, FiredKind.ACTIVATED, Decimal(101))]
    assert tick(120) == []
    assert tick("114.1") == []
    assert tick("114.0") == [Fired(7, FiredKind.TRIGGERED, Decimal("114.0"))]
    assert len(index) == 0


def test_trailing_buy_without_activation_follows_the_low() -> None:
    index = TriggerIndex()
    assert index.add_trailing(8, "X", "MARK_PRICE", "BUY", Decimal(1), None, Decimal(100))
    assert index.on_price("X", "MARK_PRICE", Decimal(101)) == [
        Fired(8, FiredKind.TRIGGERED, Decimal(101))
    ]


@dataclass
class _Model:
    key: int
    book: tuple[str, str]
    kind: str  # "stop" | "trail"
    direction: Direction | None = None
    trigger: Decimal = Decimal(0)
    side: str = "SELL"
    rate: Decimal = Decimal(0)
    activation: Decimal | None = None
    active: bool = False
    extreme: Decimal = Decimal(0)

    def tick(self, price: Decimal) -> FiredKind | None:
        if self.kind == "stop":
            assert self.direction is not None
            return (
                FiredKind.TRIGGERED if would_trigger(self.direction, self.trigger, price) else None
            )
        sell = self.side == "SELL"
        if not self.active:
            assert self.activation is not None
            if (price >= self.activation) if sell else (price <= self.activation):
                self.active, self.extreme = True, price
                return FiredKind.ACTIVATED
            return None
        if sell and price <= self.extreme * (1 - self.rate / 100):
            return FiredKind.TRIGGERED
        if not sell and price >= self.extreme * (1 + self.rate / 100):
            return FiredKind.TRIGGERED
        self.extreme = max(self.extreme, price) if sell else min(self.extreme, price)
        return None


prices = st.integers(min_value=50, max_value=150).map(Decimal)
books = st.sampled_from([("A", "MARK_PRICE"), ("A", "CONTRACT_PRICE"), ("B", "MARK_PRICE")])
actions = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), books, prices),
        st.tuples(st.just("stop"), books, st.sampled_from(list(Direction)), prices),
        st.tuples(
            st.just("trail"),
            books,
            st.sampled_from(["BUY", "SELL"]),
            st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(3)]),
            st.one_of(st.none(), prices),
        ),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=60)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(actions)
def test_index_matches_the_direct_model(script: list[tuple[object, ...]]) -> None:
    index = TriggerIndex()
    model: dict[int, _Model] = {}
    last: dict[tuple[str, str], Decimal] = {}
    next_key = 0
    for action in script:
        verb = action[0]
        if verb == "cancel":
            key = action[1]
            assert isinstance(key, int)
            assert index.remove(key) == (key in model)
            model.pop(key, None)
            continue
        book = action[1]
        assert isinstance(book, tuple)
        if verb == "tick":
            price = action[2]
            assert isinstance(price, Decimal)
            last[book] = price
            expected = {}
            for order in list(model.values()):
                if order.book == book and (kind := order.tick(price)) is not None:
                    expected[order.key] = kind
                    if kind is FiredKind.TRIGGERED:
                        del model[order.key]
            got = index.on_price(book[0], book[1], price)
            assert {f.key: f.kind for f in got} == expected
            assert len(got) == len(expected)
            continue
        price = last.get(book, Decimal(100))
        key, next_key = next_key, next_key + 1
        if verb == "stop":
            direction, trigger = action[2], action[3]
            assert isinstance(direction, Direction)
            assert isinstance(trigger, Decimal)
            if would_trigger(direction, trigger, price):
                continue
            index.add_stop(key, book[0], book[1], direction, trigger)
            model[key] = _Model(key, book, "stop", direction=direction, trigger=trigger)
        else:
            side, rate, activation = action[2], action[3], action[4]
            assert isinstance(side, str)
            assert isinstance(rate, Decimal)
            assert activation is None or isinstance(activation, Decimal)
            if activation is not None and (
                activation <= price if side == "SELL" else activation >= price
            ):
                continue  # -2021
            active = index.add_trailing(key, book[0], book[1], side, rate, activation, price)
            assert active == (activation is None)
            model[key] = _Model(
                key,
                book,
                "trail",
                side=side,
                rate=rate,
                activation=activation,
                active=active,
                extreme=price,
            )
        assert len(index) == len(model)
