"""MarketState on hand-made update sequences: aggTrades, the four kline families, the rolling
24 h ticker and funding history, exact to the last digit."""

from __future__ import annotations

import calendar
import itertools
import random
from decimal import Decimal

import pytest

from userstream.market.state import (
    AggTrade,
    FundingRecord,
    KlineFamily,
    MarketState,
    bar_close,
    bar_open,
)
from userstream.market.types import FundingSettlement, MarkUpdate, Trade

D = Decimal
T0 = 1_789_459_200_000  # 2026-09-15 08:00:00 UTC, a Tuesday
MIN = 60_000
DAY = 86_400_000


def trade(
    trade_id: int, price: str, qty: str, time_ms: int, *, sell: bool = False, agg: int | None = None
) -> Trade:
    return Trade("BTCUSDT", trade_id, D(price), D(qty), sell, time_ms, agg)


def mark(time_ms: int, price: str, index: str, premium: str | None = None) -> MarkUpdate:
    return MarkUpdate(
        "BTCUSDT",
        D(price),
        D(index),
        D(index),
        D("0.0001"),
        D("0.0001"),
        T0 + 8 * 3_600_000,
        time_ms,
        None if premium is None else D(premium),
    )


def state() -> MarketState:
    return MarketState(["BTCUSDT", "ETHUSDT"])


def test_aggregates_merge_same_side_and_price_within_100_ms() -> None:
    market = state()
    final = market.apply(
        [
            trade(1, "100.0", "1", T0),
            trade(2, "100.0", "2", T0 + 50),  # merges
            trade(3, "100.0", "1", T0 + 100),  # 100 ms after the first: a new aggregate
            trade(4, "100.0", "1", T0 + 120, sell=True),  # other side
            trade(5, "100.1", "1", T0 + 130, sell=True),  # other price
            trade(6, "100.1", "3", T0 + 140, sell=True),  # merges with 5
        ],
        T0 + 140,
    )
    first = AggTrade(1, D("100.0"), D("3"), 1, 2, T0, False, "BTCUSDT")
    assert final == [
        first,
        AggTrade(2, D("100.0"), D("1"), 3, 3, T0 + 100, False, "BTCUSDT"),
        AggTrade(3, D("100.0"), D("1"), 4, 4, T0 + 120, True, "BTCUSDT"),
    ]
    open_one = AggTrade(4, D("100.1"), D("4"), 5, 6, T0 + 130, True, "BTCUSDT")
    assert market.agg_trades("BTCUSDT")[-1] == open_one
    # Final once its 100 ms are over, and only once.
    assert market.apply([], T0 + 229) == []
    assert market.apply([], T0 + 230) == [open_one]
    assert market.apply([], T0 + 500) == []
    assert market.agg_trades("BTCUSDT", from_id=2, limit=2) == final[1:]
    assert market.agg_trades("BTCUSDT", start_ms=T0 + 100, end_ms=T0 + 125) == final[1:]
    assert market.agg_trades("BTCUSDT", limit=1) == [open_one]


def test_a_gap_in_trade_ids_starts_a_new_aggregate() -> None:
    market = state()
    market.apply([trade(1, "100", "1", T0), trade(3, "100", "1", T0 + 1)], T0 + 1)
    assert [(a.first_trade_id, a.last_trade_id) for a in market.agg_trades("BTCUSDT")] == [
        (1, 1),
        (3, 3),
    ]


def test_source_aggregates_are_kept_as_given() -> None:
    market = state()
    market.apply(
        [
            trade(10, "100", "1", T0, agg=500),
            trade(11, "100", "1", T0 + 1, agg=501),  # would merge by the rule
            trade(12, "100", "2", T0 + 2, agg=501),
        ],
        T0 + 10,
    )
    assert market.agg_trades("BTCUSDT") == [
        AggTrade(500, D("100"), D("1"), 10, 10, T0, False, "BTCUSDT"),
        AggTrade(501, D("100"), D("3"), 11, 12, T0 + 1, False, "BTCUSDT"),
    ]


def test_recent_trades_are_a_bounded_ring() -> None:
    market = MarketState(["BTCUSDT"], trade_history=3)
    trades = [trade(i, str(100 + i), "1", T0 + i) for i in range(1, 6)]
    market.apply(trades, T0 + 5)
    assert market.trades("BTCUSDT") == trades[2:]
    assert market.trades("BTCUSDT", limit=2) == trades[3:]
    assert market.trades("BTCUSDT", from_id=4, limit=1) == [trades[3]]
    assert market.last_trade("BTCUSDT") == trades[4]
    assert len(market.agg_trades("BTCUSDT", limit=1000)) == 3


def test_one_minute_klines_exact_with_an_empty_minute_filled() -> None:
    market = state()
    market.apply(
        [
            trade(1, "100.0", "1.5", T0 + 1_000),
            trade(2, "101.0", "0.5", T0 + 2_000, sell=True),
            trade(3, "99.5", "1", T0 + 30_000),
            trade(4, "100.5", "2", T0 + 59_999),
            trade(5, "102.0", "1", T0 + 2 * MIN + 10),  # minute 1 had nothing
        ],
        T0 + 2 * MIN + 20,
    )
    bars = market.klines("BTCUSDT", "1m")
    assert [(b.open_time_ms, b.close_time_ms) for b in bars] == [
        (T0, T0 + MIN - 1),
        (T0 + MIN, T0 + 2 * MIN - 1),
        (T0 + 2 * MIN, T0 + 3 * MIN - 1),
    ]
    first, empty, last = bars
    assert (first.open, first.high, first.low, first.close) == (
        D("100.0"),
        D("101.0"),
        D("99.5"),
        D("100.5"),
    )
    assert first.volume == D("5.0")
    assert first.quote_volume == D("150.0") + D("50.50") + D("99.5") + D("201.0")
    assert first.count == 4
    assert first.taker_buy_volume == D("4.5")  # trades 1, 3, 4: the taker bought
    assert first.taker_buy_quote_volume == D("150.0") + D("99.5") + D("201.0")
    assert (first.first_trade_id, first.last_trade_id) == (1, 4)
    assert first.closed
    assert (empty.open, empty.high, empty.low, empty.close) == (D("100.5"),) * 4
    assert (empty.volume, empty.count, empty.first_trade_id) == (D(0), 0, -1)
    assert (last.open, last.close, last.count, last.closed) == (D("102.0"), D("102.0"), 1, False)
    # The bars reach `now` even without trades.
    market.apply([], T0 + 4 * MIN)
    assert [b.open_time_ms for b in market.klines("BTCUSDT", "1m")][-1] == T0 + 4 * MIN
    assert market.klines("BTCUSDT", "1m")[-1].close == D("102.0")


def test_kline_query_limits_and_times_follow_binance() -> None:
    market = state()
    market.apply([trade(i, str(100 + i), "1", T0 + i * MIN) for i in range(10)], T0 + 9 * MIN)
    opens = [b.open_time_ms for b in market.klines("BTCUSDT", "1m", limit=3)]
    assert opens == [T0 + 7 * MIN, T0 + 8 * MIN, T0 + 9 * MIN]
    opens = [b.open_time_ms for b in market.klines("BTCUSDT", "1m", start_ms=T0 + 1, limit=2)]
    assert opens == [T0 + MIN, T0 + 2 * MIN]
    opens = [b.open_time_ms for b in market.klines("BTCUSDT", "1m", end_ms=T0 + 4 * MIN, limit=2)]
    assert opens == [T0 + 3 * MIN, T0 + 4 * MIN]
    three = market.klines("BTCUSDT", "3m")
    assert [b.open_time_ms for b in three] == [T0, T0 + 3 * MIN, T0 + 6 * MIN, T0 + 9 * MIN]
    assert (three[1].open, three[1].high, three[1].close, three[1].count) == (
        D(103),
        D(105),
        D(105),
        3,
    )
    hour = market.klines("BTCUSDT", "1h")
    assert len(hour) == 1
    assert hour[0].volume == D(10)


def test_bar_boundaries_of_weeks_and_months() -> None:
    monday = calendar.timegm((2026, 9, 14, 0, 0, 0)) * 1000
    assert bar_open("1w", T0) == monday
    assert bar_close("1w", monday) == monday + 7 * DAY - 1
    september = calendar.timegm((2026, 9, 1, 0, 0, 0)) * 1000
    october = calendar.timegm((2026, 10, 1, 0, 0, 0)) * 1000
    assert bar_open("1M", T0) == september
    assert bar_close("1M", september) == october - 1
    december = calendar.timegm((2026, 12, 1, 0, 0, 0)) * 1000
    assert bar_close("1M", december) == calendar.timegm((2027, 1, 1, 0, 0, 0)) * 1000 - 1
    assert bar_open("3d", T0) % (3 * DAY) == 0
    assert bar_open("8h", T0) == T0


def test_a_long_gap_keeps_only_the_bars_the_ring_holds() -> None:
    market = MarketState(["BTCUSDT"], kline_history=5)
    market.apply([trade(1, "100", "1", T0)], T0)
    market.apply([trade(2, "90", "1", T0 + 10 * DAY)], T0 + 10 * DAY)
    hours = market.klines("BTCUSDT", "1h", limit=1000)
    assert len(hours) == 5
    assert hours[-1].open_time_ms == T0 + 10 * DAY
    assert [b.close for b in hours] == [D(100)] * 4 + [D(90)]


def test_mark_index_and_premium_klines_count_samples() -> None:
    market = state()
    market.apply(
        [
            mark(T0, "100.5", "100.0", premium="0.0001"),
            mark(T0 + 1_000, "101.5", "100.2"),
            mark(T0 + 2_000, "99.5", "100.1"),
            mark(T0 + 5_000, "100.0", "100.3", premium="-0.0002"),
        ],
        T0 + 5_000,
    )
    (bar,) = market.klines("BTCUSDT", "1m", family=KlineFamily.MARK)
    assert (bar.open, bar.high, bar.low, bar.close, bar.count) == (
        D("100.5"),
        D("101.5"),
        D("99.5"),
        D("100.0"),
        4,
    )
    assert (bar.volume, bar.quote_volume) == (D(0), D(0))
    (hour,) = market.klines("BTCUSDT", "1h", family=KlineFamily.MARK)  # the open minute, merged
    assert (hour.open, hour.high, hour.low, hour.close, hour.count) == (
        D("100.5"),
        D("101.5"),
        D("99.5"),
        D("100.0"),
        4,
    )
    (index,) = market.klines("BTCUSDT", "1m", family=KlineFamily.INDEX)
    assert (index.open, index.high, index.low, index.close) == (
        D("100.0"),
        D("100.3"),
        D("100.0"),
        D("100.3"),
    )
    (premium,) = market.klines("BTCUSDT", "1m", family=KlineFamily.PREMIUM)
    assert (premium.open, premium.high, premium.low, premium.close, premium.count) == (
        D("0.0001"),
        D("0.0001"),
        D("-0.0002"),
        D("-0.0002"),
        2,
    )
    latest = market.mark("BTCUSDT")
    assert latest is not None
    assert latest.time_ms == T0 + 5_000
    assert market.mark("ETHUSDT") is None
    market.apply([mark(T0 + MIN + 1_000, "102.0", "100.0")], T0 + MIN + 1_000)
    (hour,) = market.klines("BTCUSDT", "1h", family=KlineFamily.MARK)  # a closed minute folded in
    assert (hour.open, hour.high, hour.low, hour.close, hour.count) == (
        D("100.5"),
        D("102.0"),
        D("99.5"),
        D("102.0"),
        5,
    )


def test_ticker_rolls_a_24_hour_window_of_minutes() -> None:
    market = state()
    market.apply([trade(1, "100", "1", T0 + 10)], T0 + 10)  # leaves the window
    market.apply([trade(2, "120", "2", T0 + 3 * MIN)], T0 + 3 * MIN)
    market.apply([trade(3, "110", "1", T0 + 60 * MIN, sell=True)], T0 + 60 * MIN)
    now = T0 + DAY + 2 * MIN + 5
    market.apply([trade(4, "105", "0.5", now)], now)
    ticker = market.ticker("BTCUSDT")
    # The window is the current minute and the 1439 before it: from T0 + 3 min on.
    assert ticker.open == D("120")  # the first minute of the window traded at 120
    assert (ticker.high, ticker.low, ticker.last, ticker.last_qty) == (
        D("120"),
        D("105"),
        D("105"),
        D("0.5"),
    )
    assert ticker.volume == D("3.5")
    assert ticker.quote_volume == D("240") + D("110") + D("52.5")
    assert ticker.count == 3
    assert (ticker.first_trade_id, ticker.last_trade_id) == (2, 4)
    assert (ticker.open_time_ms, ticker.close_time_ms) == (now - DAY, now)
    assert ticker.price_change == D("-15")
    assert ticker.price_change_percent == D("-12.5")
    assert ticker.weighted_avg_price == (D("240") + D("110") + D("52.5")) / D("3.5")


def test_ticker_with_no_trade_in_the_window_shows_the_last_price() -> None:
    market = state()
    empty = market.ticker("BTCUSDT")
    assert (empty.count, empty.first_trade_id, empty.last, empty.volume) == (0, -1, D(0), D(0))
    market.apply([trade(1, "100", "1", T0)], T0)
    market.apply([], T0 + 2 * DAY)
    ticker = market.ticker("BTCUSDT")
    assert (ticker.count, ticker.first_trade_id, ticker.last_trade_id) == (0, -1, -1)
    assert (ticker.open, ticker.high, ticker.low, ticker.last) == (D(100),) * 4
    assert ticker.volume == D(0)


def test_funding_history_in_time_order_with_binance_limits() -> None:
    market = state()
    settlements = [
        FundingSettlement(symbol, T0 + k * 8 * 3_600_000, D("0.0001") * k, D(100 + k))
        for k in range(4)
        for symbol in ("BTCUSDT", "ETHUSDT")
    ]
    market.apply(settlements, T0 + 24 * 3_600_000)
    btc = market.funding_history("BTCUSDT")
    assert btc == [
        FundingRecord("BTCUSDT", T0 + k * 8 * 3_600_000, D("0.0001") * k, D(100 + k))
        for k in range(4)
    ]
    assert market.funding_history("BTCUSDT", limit=2) == btc[2:]
    assert market.funding_history("BTCUSDT", start_ms=T0 + 1, limit=2) == btc[1:3]
    assert market.funding_history("BTCUSDT", end_ms=T0 + 8 * 3_600_000) == btc[:2]
    everything = market.funding_history(limit=1000)
    assert len(everything) == 8
    times = [r.funding_time_ms for r in everything]
    assert times == sorted(times)


def test_unknown_symbols_and_intervals_raise() -> None:
    market = state()
    with pytest.raises(KeyError):
        market.ticker("NOPEUSDT")
    with pytest.raises(KeyError):
        market.klines("BTCUSDT", "1s")


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "4h", "1d"])
def test_every_interval_equals_a_direct_count_of_the_trades(interval: str) -> None:
    rng = random.Random(interval)
    market = state()
    trades, now = [], T0 + 17
    for trade_id in range(1, 3001):
        now += rng.choice([5, 200, 3_000, 40_000, 400_000])
        price = D(rng.randint(9_900, 10_100)) / 100
        trades.append(
            trade(trade_id, str(price), str(rng.randint(1, 50)), now, sell=rng.random() < 0.5)
        )
    for k in range(0, len(trades), 7):  # in uneven batches, rolling to each batch's end
        batch = trades[k : k + 7]
        market.apply(batch, batch[-1].time_ms + 1)
    bars = {b.open_time_ms: b for b in market.klines("BTCUSDT", interval, limit=1500)}
    expected: dict[int, list[Trade]] = {}
    for t in trades:
        expected.setdefault(bar_open(interval, t.time_ms), []).append(t)
    first_kept = min(bars)
    for open_ms, group in expected.items():
        if open_ms < first_kept:
            continue
        bar = bars[open_ms]
        assert (bar.open, bar.close) == (group[0].price, group[-1].price)
        assert bar.high == max(t.price for t in group)
        assert bar.low == min(t.price for t in group)
        assert bar.volume == sum(t.qty for t in group)
        assert bar.quote_volume == sum(t.price * t.qty for t in group)
        assert bar.taker_buy_volume == sum(t.qty for t in group if not t.buyer_is_maker)
        assert (bar.count, bar.first_trade_id, bar.last_trade_id) == (
            len(group),
            group[0].trade_id,
            group[-1].trade_id,
        )
    empty = [b for open_ms, b in bars.items() if open_ms not in expected]
    assert all(b.count == 0 and b.volume == 0 and b.open == b.close for b in empty)
    opens = sorted(bars)
    assert all(bar_close(interval, a) + 1 == b for a, b in itertools.pairwise(opens))
