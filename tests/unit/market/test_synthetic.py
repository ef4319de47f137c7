"""The seeded synthetic market (market-data spec §7): determinism, the time grid, its
statistics, the book's update ids and consistency with the tape, mark and funding (§4)."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence
from decimal import Decimal

import pytest

from userstream.market.book import OrderBook
from userstream.market.synthetic import STEP_MS, SyntheticMarket, funding_rate
from userstream.market.types import (
    BookUpdate,
    FundingSettlement,
    MarketUpdate,
    MarkUpdate,
    Side,
    Trade,
)
from userstream.protocol.exchange_info import LotSize, PriceFilter, Symbol
from userstream.symbols import load_symbol_table

EIGHT_HOURS = 8 * 3_600_000
START = 1_789_459_200_000 - 90_000  # 90 s before a funding instant (00/08/16 UTC)


def rows(*names: str) -> list[Symbol]:
    symbols = load_symbol_table().symbols
    return [s for s in symbols if not names or s.symbol in names]


def btc(seed: int = 7, start_ms: int = START) -> SyntheticMarket:
    return SyntheticMarket(rows("BTCUSDT"), seed=seed, start_ms=start_ms)


def of_symbol(updates: Sequence[MarketUpdate], symbol: str) -> list[MarketUpdate]:
    return [u for u in updates if u.symbol == symbol]


def test_every_packaged_symbol_is_priced_on_its_grid() -> None:
    table = load_symbol_table().symbols
    market = SyntheticMarket(table, seed=1, start_ms=START)
    assert list(market.symbols) == [s.symbol for s in table if s.status == "TRADING"]
    updates = market.advance(START + 5_000)
    for row in table:
        price_filter = row.filter(PriceFilter)
        assert price_filter is not None
        tick = Decimal(price_filter.tick_size)
        trades = [u for u in of_symbol(updates, row.symbol) if isinstance(u, Trade)]
        assert trades, row.symbol
        assert all(t.price % tick == 0 for t in trades)
        bid, ask = market.book(row.symbol).best_bid(), market.book(row.symbol).best_ask()
        assert bid is not None
        assert ask is not None
        assert bid.price < ask.price


def test_same_seed_same_market_and_another_seed_another() -> None:
    first = SyntheticMarket(rows(), seed=42, start_ms=START).advance(START + 20_000)
    second = SyntheticMarket(rows(), seed=42, start_ms=START).advance(START + 20_000)
    other = SyntheticMarket(rows(), seed=43, start_ms=START).advance(START + 20_000)
    assert first == second
    assert first != other


def test_advancing_in_one_call_or_many_gives_the_same_updates_and_book() -> None:
    whole, pieces = btc(), btc()
    end = START + 30_000
    at_once = whole.advance(end)
    rng = random.Random(5)
    piecewise: list[MarketUpdate] = []
    now = START
    while now < end:
        now = min(end, now + rng.choice([1, 7, 37, 99, 100, 101, 250, 1_000]))
        piecewise += pieces.advance(now)
        # Nothing is handed out before its time.
        assert all(_time(u) <= now for u in piecewise)
    assert piecewise == at_once
    assert whole.book("BTCUSDT").snapshot(1000) == pieces.book("BTCUSDT").snapshot(1000)
    assert whole.mark("BTCUSDT") == pieces.mark("BTCUSDT")


def test_updates_come_oldest_first_and_time_cannot_go_back() -> None:
    market = SyntheticMarket(rows(), seed=3, start_ms=START)
    updates = market.advance(START + 3_000)
    times = [_time(u) for u in updates]
    assert times == sorted(times)
    with pytest.raises(ValueError, match="backwards"):
        market.advance(START + 2_999)


def test_volatility_spread_depth_and_trade_rate_are_btc_like() -> None:
    market = btc(seed=11)
    minutes = 10
    mids, spreads, l1 = [], [], []
    trades = 0
    for k in range(1, minutes * 600 + 1):
        updates = market.advance(START + k * STEP_MS)
        trades += sum(isinstance(u, Trade) for u in updates)
        bid, ask = market.book("BTCUSDT").best_bid(), market.book("BTCUSDT").best_ask()
        assert bid is not None
        assert ask is not None
        spreads.append(ask.price - bid.price)
        l1.append(float(bid.qty))
        if k % 10 == 0:
            mids.append(float(bid.price + ask.price) / 2)
    returns = [math.log(b / a) for a, b in itertools.pairwise(mids)]
    sigma = statistics.pstdev(returns)  # per second; spec §7: ≈ 0.01 %
    assert 0.6e-4 < sigma < 1.6e-4
    one_tick = sum(s == Decimal("0.10") for s in spreads) / len(spreads)
    assert 0.8 < one_tick < 0.97  # spec §7: one tick ~90 % of the time
    assert all(s > 0 for s in spreads)
    assert 0.5 <= statistics.median(l1) <= 6  # spec §7: L1 0.5–6 BTC
    rate = trades / (minutes * 60)
    assert 25 < rate < 60  # spec §7: 20–60 trades/s


def test_depth_profile_matches_the_spec_bands() -> None:
    market = btc(seed=2)
    market.advance(START + 10_000)
    book = market.book("BTCUSDT").snapshot(1000)
    mid = (book.bids[0].price + book.asks[0].price) / 2
    within_02 = sum(lv.qty for lv in book.bids if lv.price >= mid * Decimal("0.998"))
    within_5 = sum(lv.qty for lv in book.bids if lv.price >= mid * Decimal("0.95"))
    thin = [lv.qty for lv in book.bids[1:5]]
    assert 300 < within_02 < 1000  # spec §7: 400–800 BTC within 0.2 %
    assert 5_000 < within_5 < 12_000  # ≈ 7–10 k within 5 %
    assert statistics.median(thin) < Decimal("0.2")  # L2–L5 thin


def test_book_ids_are_one_counter_and_the_tape_trades_at_the_touch() -> None:
    market = btc(seed=5)
    mirror = OrderBook("BTCUSDT")
    start = market.book("BTCUSDT").snapshot(10_000)
    mirror.replace(start.bids, start.asks, start.last_update_id)
    last_id, last_trade = start.last_update_id, 0
    book_updates = 0
    for update in market.advance(START + 60_000):
        if isinstance(update, BookUpdate):
            assert update.first_update_id == last_id + 1
            assert update.final_update_id == last_id + len(update.bids) + len(update.asks)
            last_id = update.final_update_id
            mirror.apply(update)
            bid, ask = mirror.best_bid(), mirror.best_ask()
            assert bid is not None
            assert ask is not None
            assert bid.price < ask.price
            book_updates += 1
        elif isinstance(update, Trade):
            assert update.trade_id == last_trade + 1
            last_trade = update.trade_id
            # A taker buy takes resting asks (m false), a taker sell resting bids.
            taker_buy = not update.buyer_is_maker
            resting = mirror.qty_at(Side.SELL if taker_buy else Side.BUY, update.price)
            assert resting >= update.qty
    assert book_updates > 600
    assert mirror.snapshot(10_000) == market.book("BTCUSDT").snapshot(10_000)


def test_the_aggressor_leans_toward_the_next_move() -> None:
    # A step's trades come out with the next step's re-centre: the move that follows them.
    market = btc(seed=9)
    buys_before_up = sells_before_up = 0
    last_mid: float | None = None
    for k in range(1, 3001):
        updates = market.advance(START + k * STEP_MS)
        bid, ask = market.book("BTCUSDT").best_bid(), market.book("BTCUSDT").best_ask()
        assert bid is not None
        assert ask is not None
        mid = float(bid.price + ask.price) / 2
        if last_mid is not None and mid > last_mid:
            trades = [u for u in updates if isinstance(u, Trade)]
            buys_before_up += sum(not t.buyer_is_maker for t in trades)
            sells_before_up += sum(t.buyer_is_maker for t in trades)
        last_mid = mid
    assert buys_before_up > 1.3 * sells_before_up


def test_mark_every_second_on_whole_seconds_from_the_median_rule() -> None:
    market = btc(seed=4)
    marks = [u for u in market.advance(START + 30_000) if isinstance(u, MarkUpdate)]
    assert [m.time_ms for m in marks] == list(range(START, START + 30_001, 1000))
    for mark in marks:
        # The index follows the fair price with a small basis; the mark sits near it.
        assert abs(mark.index_price / mark.mark_price - 1) < Decimal("0.001")
        assert mark.interest_rate == Decimal("0.0001")
        assert mark.next_funding_time_ms == START + 90_000
    premiums = [m for m in marks if m.premium_index is not None]
    assert [m.time_ms % 5000 for m in premiums] == [0] * len(premiums)
    assert len(premiums) == 7  # START and every 5 s to START + 30 s


def test_funding_settles_at_the_funding_instant_by_the_formula() -> None:
    market = btc(seed=8)
    updates = market.advance(START + 100_000)
    settlements = [u for u in updates if isinstance(u, FundingSettlement)]
    funding_time = START + 90_000
    assert [s.funding_time_ms for s in settlements] == [funding_time]
    samples = [
        float(u.premium_index)
        for u in updates
        if isinstance(u, MarkUpdate) and u.premium_index is not None and u.time_ms <= funding_time
    ]
    weights = range(1, len(samples) + 1)
    average = sum(w * p for w, p in zip(weights, samples, strict=True)) / sum(weights)
    expected = funding_rate(average, 0.0001, -0.01875, 0.01875)
    assert float(settlements[0].funding_rate) == pytest.approx(expected, abs=2e-8)
    mark_at = next(u for u in updates if isinstance(u, MarkUpdate) and u.time_ms == funding_time)
    assert updates.index(settlements[0]) < updates.index(mark_at)
    assert mark_at.next_funding_time_ms == funding_time + EIGHT_HOURS
    assert abs(settlements[0].mark_price / mark_at.mark_price - 1) < Decimal("0.0001")


@pytest.mark.parametrize(
    ("average", "expected"),
    [
        (0.0, 0.0001),  # inside the ±0.05 % band: the interest rate
        (0.0004, 0.0001),
        (0.001, 0.0005),  # P̄ + clamp(i − P̄) = 0.001 − 0.0005
        (-0.002, -0.0015),  # −0.002 + 0.0005
        (0.05, 0.02),  # the cap
        (-0.05, -0.02),  # the floor
    ],
)
def test_funding_rate_formula(average: float, expected: float) -> None:
    assert funding_rate(average, 0.0001, -0.02, 0.02) == pytest.approx(expected)


def test_symbols_are_independent_of_each_other() -> None:
    alone = btc(seed=6).advance(START + 10_000)
    together = SyntheticMarket(rows(), seed=6, start_ms=START).advance(START + 10_000)
    assert of_symbol(together, "BTCUSDT") == alone


def test_open_interest_is_a_positive_step_multiple() -> None:
    market = SyntheticMarket(rows(), seed=1, start_ms=START)
    for row in rows():
        oi = market.open_interest(row.symbol)
        lot = row.filter(LotSize)
        assert lot is not None
        step = Decimal(lot.step_size)
        assert oi > 0
        assert oi % step == 0


def _time(update: MarketUpdate) -> int:
    if isinstance(update, FundingSettlement):
        return update.funding_time_ms
    return update.time_ms


def test_a_four_hour_symbol_settles_every_four_hours_with_interest_scaled() -> None:
    four_am = 1_789_459_200_000 - 4 * 3_600_000  # 04:00 UTC
    market = SyntheticMarket(
        rows("BTCUSDT"), seed=3, start_ms=four_am - 30_000, funding_hours={"BTCUSDT": 4}
    )
    updates = market.advance(four_am + 1_000)
    (settlement,) = [u for u in updates if isinstance(u, FundingSettlement)]
    assert settlement.funding_time_ms == four_am
    samples = [
        float(u.premium_index)
        for u in updates
        if isinstance(u, MarkUpdate) and u.premium_index is not None and u.time_ms <= four_am
    ]
    weights = range(1, len(samples) + 1)
    average = sum(w * p for w, p in zip(weights, samples, strict=True)) / sum(weights)
    expected = funding_rate(average, 0.00005, -0.01875, 0.01875)  # i = 0.01 % × 4/8
    assert float(settlement.funding_rate) == pytest.approx(expected, abs=2e-8)
    assert market.mark("BTCUSDT").next_funding_time_ms == four_am + 4 * 3_600_000
    assert market.mark("BTCUSDT").interest_rate == Decimal("0.0001")  # the per-8 h figure


def test_a_long_jump_with_catch_up_plays_only_its_end_and_settles_funding() -> None:
    market = SyntheticMarket(rows("BTCUSDT"), seed=3, start_ms=START, max_catch_up_ms=5_000)
    first = market.advance(START + 1_000)
    end = START + 26 * 3_600_000
    updates = market.advance(end)
    settlements = [u.funding_time_ms for u in updates if isinstance(u, FundingSettlement)]
    assert settlements == [START + 90_000 + k * EIGHT_HOURS for k in range(4)]
    # The rest of the step running at START + 1 s, then only the last 5 s are traded.
    trade_times = [u.time_ms for u in updates if isinstance(u, Trade)]
    assert any(t >= end - 5_100 for t in trade_times)
    assert all(t < START + 1_100 or t >= end - 5_100 for t in trade_times)
    times = [_time(u) for u in updates]
    assert times == sorted(times)
    assert min(times) > START + 1_000
    ids = [u for u in first + updates if isinstance(u, BookUpdate)]
    assert all(b.first_update_id == a.final_update_id + 1 for a, b in itertools.pairwise(ids))
    bid, ask = market.book("BTCUSDT").best_bid(), market.book("BTCUSDT").best_ask()
    assert bid is not None
    assert ask is not None
    assert bid.price < ask.price
    # Without the option the same jump would play all 26 hours; with it, twice is the same.
    again = SyntheticMarket(rows("BTCUSDT"), seed=3, start_ms=START, max_catch_up_ms=5_000)
    assert again.advance(START + 1_000) + again.advance(end) == first + updates
