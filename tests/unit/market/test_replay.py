"""`ReplayMarket`: Binance's files replayed on the server's clock (market-data spec §5.3)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from userstream.clock import ManualClock
from userstream.exceptions import ConfigurationError
from userstream.market.book import OrderBook
from userstream.market.replay import ReplayMarket
from userstream.market.replay_files import Dataset
from userstream.market.replay_sample import START_MS, write_sample
from userstream.market.state import MarketState
from userstream.market.types import (
    BookUpdate,
    FundingSettlement,
    Level,
    MarketUpdate,
    MarkUpdate,
    Trade,
)
from userstream.protocol.exchange_info import Symbol
from userstream.symbols import load_symbol_table

SERVER_START = 1_900_000_000_000
TICK = Decimal("0.10")


@pytest.fixture(scope="module")
def symbols() -> tuple[Symbol, ...]:
    return load_symbol_table().symbols


def _of(updates: list[MarketUpdate], kind: type[object]) -> list[MarketUpdate]:
    return [u for u in updates if isinstance(u, kind)]


def _replay(
    directory: Path, symbols: tuple[Symbol, ...], speed: int = 1, start: int = SERVER_START
) -> ReplayMarket:
    return ReplayMarket(directory, symbols, speed=speed, start_ms=start)


@pytest.mark.parametrize("speed", [1, 10])
async def test_records_come_out_when_the_server_clock_reaches_their_mapped_time(
    tmp_path: Path, symbols: tuple[Symbol, ...], speed: int
) -> None:
    sample = write_sample(tmp_path, datasets=(Dataset.TRADES,))
    clock = ManualClock(SERVER_START)
    market = _replay(tmp_path, symbols, speed, clock.now_ms())
    first = market.first_file_ms
    assert first == sample.trades[0].time_ms
    seen: list[Trade] = []
    for _ in range(40):
        await clock.advance(250)
        now = clock.now_ms()
        trades = [u for u in market.advance(now) if isinstance(u, Trade)]
        reached = first + (now - SERVER_START) * speed
        expected = [t for t in sample.trades if t.time_ms <= reached][len(seen) :]
        assert [t.trade_id for t in trades] == [t.trade_id for t in expected]
        for trade, row in zip(trades, expected, strict=True):
            assert trade.time_ms == SERVER_START + (row.time_ms - first) // speed
            assert trade.time_ms <= now
        seen += trades
    assert seen, "ten seconds of server time replayed nothing"


async def test_ten_times_faster_replays_ten_times_the_file_time(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    write_sample(tmp_path, datasets=(Dataset.TRADES,))
    slow, fast = _replay(tmp_path, symbols, 1), _replay(tmp_path, symbols, 10)
    fast_trades = _of(fast.advance(SERVER_START + 3_000), Trade)
    slow_trades = _of(slow.advance(SERVER_START + 30_000), Trade)
    assert fast_trades
    assert [(t.trade_id, t.price, t.qty) for t in fast_trades if isinstance(t, Trade)] == [
        (t.trade_id, t.price, t.qty) for t in slow_trades if isinstance(t, Trade)
    ]


def test_aggtrades_rows_become_their_fills_in_one_aggregate(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    sample = write_sample(tmp_path, datasets=(Dataset.AGG_TRADES,))
    market = _replay(tmp_path, symbols, start=START_MS)
    trades = [u for u in market.advance(START_MS + 3_600_000) if isinstance(u, Trade)]
    first = sample.agg_trades[0].time_ms
    assert [t.trade_id for t in trades] == list(
        range(sample.agg_trades[0].first_trade_id, sample.agg_trades[-1].last_trade_id + 1)
    )
    by_aggregate: dict[int | None, list[Trade]] = {}
    for trade in trades:
        by_aggregate.setdefault(trade.aggregate_id, []).append(trade)
    assert list(by_aggregate) == [r.agg_trade_id for r in sample.agg_trades]
    for row in sample.agg_trades:
        fills = by_aggregate[row.agg_trade_id]
        assert [t.trade_id for t in fills] == list(range(row.first_trade_id, row.last_trade_id + 1))
        assert sum(t.qty for t in fills) == row.qty
        assert all(t.qty > 0 for t in fills)
        assert {(t.price, t.buyer_is_maker, t.time_ms) for t in fills} == {
            (row.price, row.buyer_is_maker, START_MS + row.time_ms - first)
        }


def test_raw_trades_are_preferred_to_aggtrades(tmp_path: Path, symbols: tuple[Symbol, ...]) -> None:
    sample = write_sample(tmp_path, datasets=(Dataset.AGG_TRADES, Dataset.TRADES))
    market = _replay(tmp_path, symbols)
    trades = _of(market.advance(SERVER_START + 3_600_000), Trade)
    assert [t.trade_id for t in trades if isinstance(t, Trade)] == [
        r.trade_id for r in sample.trades
    ]


def _book_matches(book: OrderBook, bid: Level, ask: Level, depth: int) -> None:
    assert book.best_bid() == bid
    assert book.best_ask() == ask
    snapshot = book.snapshot(1000)
    assert len(snapshot.bids) == len(snapshot.asks) == depth
    assert [lv.price for lv in snapshot.bids] == [bid.price - k * TICK for k in range(depth)]
    assert [lv.price for lv in snapshot.asks] == [ask.price + k * TICK for k in range(depth)]


def test_book_ticker_rows_are_the_l1_with_their_update_ids_and_synthetic_depth(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    sample = write_sample(tmp_path, datasets=(Dataset.TRADES, Dataset.BOOK_TICKER))
    market = ReplayMarket(tmp_path, symbols, start_ms=SERVER_START, depth=20)
    book = market.book("BTCUSDT")
    rows = sample.book_tickers
    assert book.last_update_id == rows[0].update_id
    _book_matches(
        book,
        Level(rows[0].bid_price, rows[0].bid_qty),
        Level(rows[0].ask_price, rows[0].ask_qty),
        20,
    )
    mirror = OrderBook("BTCUSDT")
    first = book.snapshot(1000)
    mirror.replace(first.bids, first.asks, first.last_update_id)
    by_id = {row.update_id: row for row in rows}
    previous = book.last_update_id
    for step in range(1, 3100):
        now = SERVER_START + step * 100
        for update in market.advance(now):
            if not isinstance(update, BookUpdate):
                continue
            assert update.first_update_id == previous + 1
            assert update.time_ms <= now
            previous = update.final_update_id
            mirror.apply(update)
            row = by_id[update.final_update_id]
            assert mirror.best_bid() == Level(row.bid_price, row.bid_qty)
            assert mirror.best_ask() == Level(row.ask_price, row.ask_qty)
    assert previous == rows[-1].update_id
    assert mirror.snapshot(1000) == book.snapshot(1000)
    last = rows[-1]
    _book_matches(
        book, Level(last.bid_price, last.bid_qty), Level(last.ask_price, last.ask_qty), 20
    )


def test_without_book_ticker_l1_is_inferred_from_the_aggressor(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    write_sample(tmp_path, datasets=(Dataset.AGG_TRADES,))
    market = _replay(tmp_path, symbols)
    book = market.book("BTCUSDT")
    ids = [book.last_update_id]
    checked = 0
    for step in range(1, 700):
        trades = []
        for update in market.advance(SERVER_START + step * 500):
            if isinstance(update, BookUpdate):
                ids.append(update.final_update_id)
            elif isinstance(update, Trade):
                trades.append(update)
        if not trades:
            continue
        last = trades[-1]
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is not None
        assert ask is not None
        if last.buyer_is_maker:  # the taker sold: the bid was hit at the trade's price
            assert (bid.price, ask.price) == (last.price, last.price + TICK)
        else:
            assert (bid.price, ask.price) == (last.price - TICK, last.price)
        checked += 1
    assert checked > 100
    assert ids == list(range(1, len(ids) + 1))


def test_mark_and_index_follow_the_bars_and_funding_settles_with_the_joined_mark(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    sample = write_sample(
        tmp_path,
        datasets=(
            Dataset.AGG_TRADES,
            Dataset.MARK_PRICE_KLINES,
            Dataset.INDEX_PRICE_KLINES,
            Dataset.FUNDING_RATE,
        ),
    )
    market = _replay(tmp_path, symbols)
    mark_bars = sample.klines[Dataset.MARK_PRICE_KLINES]
    index_bars = sample.klines[Dataset.INDEX_PRICE_KLINES]
    assert market.first_file_ms == mark_bars[0].open_time_ms
    initial = market.mark("BTCUSDT")
    assert (initial.mark_price, initial.index_price, initial.time_ms) == (
        mark_bars[0].open,
        index_bars[0].open,
        SERVER_START,
    )
    updates = market.advance(SERVER_START + 3_600_000)
    marks = [u for u in updates if isinstance(u, MarkUpdate)]
    assert [m.time_ms for m in marks] == [SERVER_START + 1000 * k for k in range(1, 300)]
    half = marks[29]  # 30 s into the first bar: halfway between its open and close
    bar = mark_bars[0]
    expected = bar.open + (bar.close - bar.open) * 30_000 / 59_999
    assert abs(half.mark_price - expected) < Decimal("0.00000001")
    second_bar = marks[59]
    assert second_bar.mark_price == mark_bars[1].open
    assert second_bar.index_price == index_bars[1].open
    assert market.mark("BTCUSDT") == marks[-1]

    [settlement] = [u for u in updates if isinstance(u, FundingSettlement)]
    row = next(r for r in sample.funding_rates if r.calc_time_ms >= START_MS)
    assert settlement.funding_rate == row.funding_rate
    assert settlement.funding_time_ms == SERVER_START + row.calc_time_ms - START_MS
    minute = (row.calc_time_ms - START_MS) // 60_000
    joined = mark_bars[minute]
    assert joined.open_time_ms <= row.calc_time_ms <= joined.close_time_ms
    assert abs(settlement.mark_price - joined.open) < abs(joined.close - joined.open) + Decimal(
        "0.00000001"
    )
    before_settlement = [m for m in marks if m.time_ms < settlement.funding_time_ms]
    after_settlement = [m for m in marks if m.time_ms > settlement.funding_time_ms]
    assert {m.next_funding_time_ms for m in before_settlement} == {
        SERVER_START + (START_MS // 28_800_000 + 1) * 28_800_000 - START_MS
    }
    assert {m.next_funding_time_ms for m in after_settlement} == {
        SERVER_START + (START_MS // 28_800_000 + 2) * 28_800_000 - START_MS
    }


def test_funding_estimate_is_linear_between_settled_rates(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    sample = write_sample(tmp_path, datasets=(Dataset.AGG_TRADES, Dataset.FUNDING_RATE))
    market = _replay(tmp_path, symbols)
    rows = sample.funding_rates
    after = next(i for i, r in enumerate(rows) if r.calc_time_ms >= market.first_file_ms)
    before, next_row = rows[after - 1], rows[after]
    estimate = market.mark("BTCUSDT").funding_rate
    share = Decimal(market.first_file_ms - before.calc_time_ms) / Decimal(
        next_row.calc_time_ms - before.calc_time_ms
    )
    linear = before.funding_rate + (next_row.funding_rate - before.funding_rate) * share
    assert abs(estimate - linear) <= Decimal("0.00000001")
    # no mark bars: the mark is the last trade price and the index the mark
    initial = market.mark("BTCUSDT")
    assert initial.mark_price == initial.index_price == sample.agg_trades[0].price


def test_without_funding_rows_the_estimate_is_the_interest_rate(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    write_sample(tmp_path, datasets=(Dataset.TRADES,))
    assert _replay(tmp_path, symbols).mark("BTCUSDT").funding_rate == Decimal("0.0001")


def test_nothing_happens_after_the_data_ends(tmp_path: Path, symbols: tuple[Symbol, ...]) -> None:
    write_sample(tmp_path, datasets=(Dataset.TRADES, Dataset.FUNDING_RATE))
    market = _replay(tmp_path, symbols)
    updates = market.advance(SERVER_START + 40 * 86_400_000)
    assert len(_of(updates, FundingSettlement)) == 1  # 16:00 only; 00:00 is past the tape
    assert market.advance(SERVER_START + 80 * 86_400_000) == []


def test_replay_is_deterministic_and_merges_symbols_in_time_order(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    write_sample(tmp_path, seed=1, symbol="BTCUSDT")
    write_sample(tmp_path, seed=2, symbol="ETHUSDT")
    runs = []
    for _ in range(2):
        market = _replay(tmp_path, symbols, speed=3)
        assert list(market.symbols) == ["BTCUSDT", "ETHUSDT"]
        runs.append(
            [u for step in range(1, 400) for u in market.advance(SERVER_START + step * 337)]
        )
    assert runs[0] == runs[1]
    times = [u.time_ms for u in runs[0] if not isinstance(u, FundingSettlement)]
    assert times == sorted(times)
    assert {u.symbol for u in runs[0]} == {"BTCUSDT", "ETHUSDT"}


def test_directory_errors(tmp_path: Path, symbols: tuple[Symbol, ...]) -> None:
    with pytest.raises(ConfigurationError, match="no trades or aggTrades files"):
        _replay(tmp_path, symbols)
    write_sample(tmp_path / "a", datasets=(Dataset.BOOK_TICKER,))
    with pytest.raises(ConfigurationError, match="BTCUSDT has bookTicker but no trades"):
        _replay(tmp_path / "a", symbols)
    write_sample(tmp_path / "b", symbol="NOPEUSDT", datasets=(Dataset.TRADES,))
    with pytest.raises(ConfigurationError, match="NOPEUSDT is not in exchangeInfo"):
        _replay(tmp_path / "b", symbols)
    write_sample(tmp_path / "c", datasets=(Dataset.TRADES,))
    with pytest.raises(ConfigurationError, match="speed must be positive"):
        ReplayMarket(tmp_path / "c", symbols, speed=0, start_ms=0)


def test_a_replayed_aggtrades_file_comes_out_of_market_state_as_it_went_in(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    sample = write_sample(tmp_path, datasets=(Dataset.AGG_TRADES,))
    market = _replay(tmp_path, symbols, start=START_MS)
    state = MarketState(market.symbols, trade_history=10_000)
    for step in range(1, 400):
        now = START_MS + step * 777
        state.apply(market.advance(now), now)
    served = state.agg_trades("BTCUSDT", from_id=0, limit=10_000)
    first = sample.agg_trades[0].time_ms
    assert [
        (a.agg_id, a.price, a.qty, a.first_trade_id, a.last_trade_id, a.time_ms, a.buyer_is_maker)
        for a in served
    ] == [
        (
            r.agg_trade_id,
            r.price,
            r.qty,
            r.first_trade_id,
            r.last_trade_id,
            START_MS + r.time_ms - first,
            r.buyer_is_maker,
        )
        for r in sample.agg_trades
    ]


def test_premium_samples_every_five_seconds_from_the_premium_bars(
    tmp_path: Path, symbols: tuple[Symbol, ...]
) -> None:
    sample = write_sample(
        tmp_path,
        datasets=(Dataset.TRADES, Dataset.MARK_PRICE_KLINES, Dataset.PREMIUM_INDEX_KLINES),
    )
    market = _replay(tmp_path, symbols, start=START_MS)
    marks = [u for u in market.advance(START_MS + 3_600_000) if isinstance(u, MarkUpdate)]
    sampled = [m for m in marks if m.premium_index is not None]
    assert [m.time_ms for m in sampled] == [START_MS + 5_000 * k for k in range(1, 60)]
    bars = sample.klines[Dataset.PREMIUM_INDEX_KLINES]
    by_time = {m.time_ms: m.premium_index for m in sampled}
    assert [by_time[bar.open_time_ms] for bar in bars[1:]] == [bar.open for bar in bars[1:]]
