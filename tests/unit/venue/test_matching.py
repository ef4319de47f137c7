from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from userstream.market.book import OrderBook
from userstream.market.types import BookUpdate, Level
from userstream.market.types import Side as MarketSide
from userstream.protocol.events import (
    OrderType,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
)
from userstream.venue.matching import TakerStep, plan_taker
from userstream.venue.state import Order

D = Decimal


def _order(n: int, side: Side, ticks: int, lots: int) -> Order:
    return Order(
        order_id=n,
        client_order_id=str(n),
        symbol="BTCUSDT",
        side=side,
        position_side=PositionSide.BOTH,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        quantity=D(lots),
        price=D(100 + ticks),
        reduce_only=False,
        price_match=PriceMatch.NONE,
        self_trade_prevention_mode=SelfTradePreventionMode.EXPIRE_MAKER,
        good_till_date=0,
        time=0,
        update_time=0,
        priority=n,
    )


def _unpruned(
    book: OrderBook, side: Side, qty: Decimal, limit: Decimal | None, own: list[Order]
) -> list[TakerStep]:
    """Every book level the walk takes and every own crossing order within `limit`."""
    steps = [TakerStep(f.price, f.qty) for f in book.walk(MarketSide(side.value), qty, limit)]
    steps += [
        TakerStep(o.price, o.remaining, o)
        for o in own
        if o.side is not side
        and (limit is None or (o.price <= limit if side is Side.BUY else o.price >= limit))
    ]
    sign = 1 if side is Side.BUY else -1
    steps.sort(key=lambda s: (sign * s.price, s.own is None, s.own.priority if s.own else 0))
    return steps


levels = st.lists(st.tuples(st.integers(-20, 20), st.integers(1, 5)), max_size=8)


@given(
    levels,
    levels,
    st.lists(st.tuples(st.booleans(), st.integers(-25, 25), st.integers(1, 5)), max_size=10),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(0, 30),
    st.none() | st.integers(-25, 25),
)
def test_plan_leaves_out_only_own_orders_the_book_fills_before(
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    own_specs: list[tuple[bool, int, int]],
    side: Side,
    qty: int,
    limit_ticks: int | None,
) -> None:
    book = OrderBook("BTCUSDT")
    book.apply(
        BookUpdate(
            "BTCUSDT",
            1,
            1,
            bids=tuple(Level(D(100 - 1 - abs(t)), D(q)) for t, q in bids),
            asks=tuple(Level(D(100 + 1 + abs(t)), D(q)) for t, q in asks),
            time_ms=0,
        )
    )
    own = [
        _order(n, Side.BUY if buy else Side.SELL, ticks, lots)
        for n, (buy, ticks, lots) in enumerate(own_specs)
    ]
    limit = D(100 + limit_ticks) if limit_ticks is not None else None
    plan = plan_taker(book, side, D(qty), limit, own)
    full = _unpruned(book, side, D(qty), limit, own)
    # The plan is the full plan, or a prefix of it that ends with the last book level and
    # whose book levels fill the whole quantity.
    assert plan == full[: len(plan)]
    if len(plan) < len(full):
        assert plan[-1].own is None
        assert sum((s.qty for s in plan if s.own is None), D(0)) >= qty
        assert all(s.own is not None for s in full[len(plan) :])


def test_plan_meets_own_orders_up_to_the_last_book_level_it_needs() -> None:
    book = OrderBook("BTCUSDT")
    book.apply(
        BookUpdate(
            "BTCUSDT", 1, 1, bids=(), asks=(Level(D(101), D(5)), Level(D(102), D(5))), time_ms=0
        )
    )
    at_best, beyond = _order(1, Side.SELL, 1, 1), _order(2, Side.SELL, 3, 1)
    # 2 lots: the best level fills them; the own order at its price comes first.
    assert plan_taker(book, Side.BUY, D(2), None, [at_best, beyond]) == [
        TakerStep(D(101), D(1), at_best),
        TakerStep(D(101), D(2)),
    ]
    # 20 lots: more than the book holds, so every own crossing order is met.
    assert [s.own for s in plan_taker(book, Side.BUY, D(20), None, [at_best, beyond])] == [
        at_best,
        None,
        None,
        beyond,
    ]
