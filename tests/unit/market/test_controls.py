"""Operator moves on the synthetic market go exactly where they are asked (issue 11 item 4)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from userstream.market.controls import (
    Crash,
    DriftTo,
    MarketControl,
    Pause,
    Resume,
    SetFundingRate,
    SetPrice,
    ThinBook,
    WidenSpread,
)
from userstream.market.synthetic import STEP_MS, SyntheticMarket
from userstream.market.types import BookUpdate, FundingSettlement, MarkUpdate, Trade
from userstream.symbols import load_symbol_table

START = 1_789_459_200_000 - 60_000  # a minute before a funding instant
TICK = Decimal("0.10")


def market(*names: str) -> SyntheticMarket:
    rows = [s for s in load_symbol_table().symbols if not names or s.symbol in names]
    return SyntheticMarket(rows, seed=21, start_ms=START)


def mid(source: SyntheticMarket, symbol: str = "BTCUSDT") -> Decimal:
    bid, ask = source.book(symbol).best_bid(), source.book(symbol).best_ask()
    assert bid is not None
    assert ask is not None
    return (bid.price + ask.price) / 2


def test_set_price_jumps_at_the_next_step() -> None:
    source = market("BTCUSDT")
    source.advance(START + 1_000)
    source.control(SetPrice("BTCUSDT", Decimal("70000")), START + 1_000)
    source.advance(START + 1_000 + STEP_MS)
    assert abs(mid(source) - 70000) <= 3 * TICK
    trades = [u for u in source.advance(START + 2_000) if isinstance(u, Trade)]
    assert trades
    assert all(abs(t.price - 70000) < 50 for t in trades)  # a second of the walk from it


def test_drift_follows_a_log_linear_path_and_ends_on_the_price() -> None:
    source = market("BTCUSDT")
    source.advance(START)
    origin = mid(source)
    source.control(DriftTo("BTCUSDT", Decimal("60000"), 10), START)
    source.advance(START + 5_000)
    halfway = (origin * Decimal(60000)).sqrt()  # the log-linear middle
    assert abs(mid(source) - halfway) <= 3 * TICK
    source.advance(START + 10_000)
    assert abs(mid(source) - 60000) <= 3 * TICK


def test_crash_drops_by_the_percentage_over_the_time_then_the_walk_resumes() -> None:
    source = market("BTCUSDT")
    source.advance(START + 500)
    before = mid(source)
    source.control(Crash("BTCUSDT", Decimal("10"), 30), START + 500)
    source.advance(START + 500 + 30_000)
    assert abs(mid(source) / before - Decimal("0.9")) < Decimal("0.0001")
    source.advance(START + 500 + 90_000)
    after = mid(source)
    assert after != before * Decimal("0.9")  # moving again
    assert abs(after / before - Decimal("0.9")) < Decimal("0.01")


def test_pause_freezes_book_and_tape_but_not_the_marks_nor_funding() -> None:
    source = market()
    source.advance(START + 1_000)
    source.control(Pause(), START + 1_000)
    source.advance(START + 1_000 + STEP_MS)  # the last trades of the running step come out
    book = source.book("ETHUSDT").snapshot(1000)
    paused = source.advance(START + 70_000)
    assert not [u for u in paused if isinstance(u, (Trade, BookUpdate))]
    assert sum(isinstance(u, MarkUpdate) for u in paused) == 6 * 69
    assert sum(isinstance(u, FundingSettlement) for u in paused) == 6
    assert source.book("ETHUSDT").snapshot(1000) == book
    source.control(Resume("ETHUSDT"), START + 70_000)
    resumed = source.advance(START + 72_000)
    assert {u.symbol for u in resumed if isinstance(u, Trade)} == {"ETHUSDT"}


def test_widen_spread_keeps_the_touch_apart_until_restored() -> None:
    source = market("BTCUSDT")
    source.control(WidenSpread("BTCUSDT", 8), START)
    for k in range(1, 101):
        source.advance(START + k * STEP_MS)
        bid, ask = source.book("BTCUSDT").best_bid(), source.book("BTCUSDT").best_ask()
        assert bid is not None
        assert ask is not None
        assert ask.price - bid.price >= 8 * TICK
    source.control(WidenSpread("BTCUSDT", 1), START + 10_000)
    source.advance(START + 20_000)
    spreads = []
    for k in range(1, 51):
        source.advance(START + 20_000 + k * STEP_MS)
        bid, ask = source.book("BTCUSDT").best_bid(), source.book("BTCUSDT").best_ask()
        assert bid is not None
        assert ask is not None
        spreads.append(ask.price - bid.price)
    assert spreads.count(TICK) > 30


def test_thin_book_scales_the_depth() -> None:
    normal, thin = market("BTCUSDT"), market("BTCUSDT")
    thin.control(ThinBook("BTCUSDT", 0.1), START)
    normal.advance(START + 5_000)
    thin.advance(START + 5_000)
    depth = sum(lv.qty for lv in normal.book("BTCUSDT").snapshot(1000).bids)
    thinned = sum(lv.qty for lv in thin.book("BTCUSDT").snapshot(1000).bids)
    assert Decimal("0.05") < thinned / depth < Decimal("0.2")


def test_funding_rate_override_shows_in_marks_and_settles() -> None:
    source = market("BTCUSDT")
    source.control(SetFundingRate("BTCUSDT", Decimal("0.0025")), START)
    updates = source.advance(START + 61_000)
    marks = [u for u in updates if isinstance(u, MarkUpdate) and u.time_ms > START]
    assert {m.funding_rate for m in marks} == {Decimal("0.0025")}
    settlement = next(u for u in updates if isinstance(u, FundingSettlement))
    assert settlement.funding_rate == Decimal("0.0025")
    source.control(SetFundingRate("BTCUSDT", None), START + 61_000)
    later = source.advance(START + 63_000)
    assert {u.funding_rate for u in later if isinstance(u, MarkUpdate)} != {Decimal("0.0025")}


def test_controls_are_deterministic_however_the_source_is_advanced() -> None:
    first, second = market("BTCUSDT"), market("BTCUSDT")
    first.control(Crash("BTCUSDT", Decimal("5"), 2), START + 250)
    out_first = first.advance(START + 5_000)
    out_second = second.advance(START + 120)
    out_second += second.advance(START + 250)
    second.control(Crash("BTCUSDT", Decimal("5"), 2), START + 250)
    out_second += second.advance(START + 5_000)
    assert out_first == out_second


def test_an_unknown_symbol_is_refused() -> None:
    with pytest.raises(KeyError):
        market("BTCUSDT").control(Pause("NOPEUSDT"), START)


def test_the_book_keeps_its_shape_through_a_crash_and_a_rally() -> None:
    source = market()
    source.advance(START + 1_000)
    initial = {s: len(source.book(s).snapshot(10_000).bids) for s in source.symbols}
    source.control(Crash(None, Decimal("20"), 60), START + 1_000)
    source.advance(START + 70_000)
    source.control(Crash(None, Decimal("-60"), 30), START + 70_000)
    for k in range(1, 41):
        source.advance(START + 70_000 + k * 1_000)
        for symbol in source.symbols:
            book = source.book(symbol).snapshot(10_000)
            for levels in (book.bids, book.asks):
                assert len(levels) < 1.3 * initial[symbol]
                spread = abs(levels[-1].price / levels[0].price - 1)
                # The tiers are laid out in ticks for 5 % of the reference price: 6.25 % of
                # the price after the 20 % crash, less after the rally.
                assert spread < Decimal("0.066")


def test_the_price_stops_inside_the_price_filter() -> None:
    source = market("BNBUSDT")  # PRICE_FILTER minPrice 6.600
    source.control(SetPrice("BNBUSDT", Decimal("1")), START)
    source.advance(START + 1_000)
    bid, ask = source.book("BNBUSDT").best_bid(), source.book("BNBUSDT").best_ask()
    assert bid is not None
    assert ask is not None
    assert Decimal("6.600") <= bid.price < ask.price < Decimal("6.700")


@pytest.mark.parametrize(
    "command",
    [
        SetPrice("BTCUSDT", Decimal(0)),
        DriftTo("BTCUSDT", Decimal(-1), 10),
        DriftTo("BTCUSDT", Decimal(60000), -1),
        Crash("BTCUSDT", Decimal(100), 10),
        WidenSpread("BTCUSDT", 0),
        ThinBook("BTCUSDT", 0.0),
    ],
)
def test_impossible_moves_are_refused(command: MarketControl) -> None:
    with pytest.raises(ValueError, match=r"must|least"):
        market("BTCUSDT").control(command, START)
