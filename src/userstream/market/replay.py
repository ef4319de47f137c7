"""Replay Binance's historical files (market-data spec §5) as a `MarketSource`, on the server's
clock at 1× or any speed.

Time: the first record of the replay (the earliest trade, quote or mark bar of any symbol) is
shown at `start_ms` on the server's clock, and file time then runs `speed` times as fast:
a record at file time `f` comes out of the advance that reaches server time
`start_ms + (f - first) / speed` (floored to the ms), stamped with that time. Every time a
consumer sees (trade times, funding instants, `next_funding_time_ms`) is on the server's clock.
The replay lasts as long as its data: nothing happens after the last record.

What each dataset becomes (spec §5.3):

- `trades` (preferred when present: spec §6.3 replays raw trades): one `Trade` per row, ids,
  prices, quantities and sides exactly as in the file.
- else `aggTrades`: each row becomes its fills `first_trade_id..last_trade_id`, all in the
  row's aggregate (`Trade.aggregate_id`), so the aggTrades served are the file's rows exactly
  (ids, `f..l`, price, quantity, time, side); the split of the row's quantity between its
  fills is invented (the archive has only the total): see `aggregate_fills`.
- `bookTicker`: the L1 of each row, its `update_id` as the book's update id (so bookTicker `u`
  is Binance's), with levels 2..N per side **synthetic** (spec §5.3 (a): the archive has no
  depth): one tick apart behind L1, sizes drawn from each price (0.001-0.05 lots of size near
  the top, growing further out, spec §7), so a level keeps its size while L1 moves past it.
- No `bookTicker` for a symbol (every file since 2024-03): L1 is **inferred from the tape**
  (spec §5.3 (a′)): a seller-initiated trade (`m` true) at P leaves the bid at P and the ask
  one tick above, a buyer-initiated one the ask at P and the bid one tick below (BTCUSDT is one
  tick wide ~90 % of the time, spec §7); L1 sizes are synthetic (0.5-6 lots × 1000 steps);
  update ids come from the source's own counter from 1.
- `markPriceKlines` / `indexPriceKlines` (1 m; index by pair): mark and index each second of
  file time, interpolated linearly between each bar's open (at its open time) and close (at its
  close time). Without mark bars the mark is the last trade price; without index bars the
  index is the mark. Both are then declared approximations.
- `fundingRate`: a `FundingSettlement` at each `calc_time` inside the replay, its mark joined
  from the mark bars at `calc_time` (the archive has no mark column, spec §5.1). The funding
  estimate `r` between settlements is **synthetic**: linear from the previous settled rate to
  the next one (spec §4 last line); the interest rate (0.01 %/8 h) when the file has none.
- `premiumIndexKlines` (1 m): the premium index `P` every 5 s of file time (Binance samples it
  every 5 s, spec §4), interpolated like the mark, on the mark update of that second.
- `klines` files are checked by name but not replayed: klines are recomputed from the trades
  so REST and streams agree with the tape (spec §5.3 (a)).

Files are read lazily, one per dataset and symbol at a time, so a month of trades is never
held in memory at once; the kline families and `fundingRate` (small) are read up front.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Final, TypeAlias

from userstream.exceptions import ConfigurationError
from userstream.market.book import OrderBook
from userstream.market.replay_files import (
    AggTradeRow,
    BookTickerRow,
    Dataset,
    FileInfo,
    FundingRateRow,
    KlineRow,
    TradeRow,
    discover,
    read_file,
    row_key,
)
from userstream.market.types import (
    BookUpdate,
    FundingSettlement,
    Level,
    MarketUpdate,
    MarkUpdate,
    Trade,
)
from userstream.protocol.exchange_info import LotSize, PriceFilter, Symbol

__all__ = ["ReplayMarket", "aggregate_fills", "open_replay"]

DEFAULT_DEPTH: Final = 50
# spec §4: 0.01 % per 8 h, Binance's default when the premium is flat.
_INTEREST_RATE: Final = Decimal("0.0001")
_DEFAULT_FUNDING_HOURS: Final = 8
_HOUR_MS: Final = 3_600_000
_PREMIUM_SAMPLE_MS: Final = 5_000
_SHAPES_KEPT: Final = 4096
_PRICE_PLACES: Final = Decimal("0.00000001")  # mark and index: 8 dp (spec §0)

# Order of events at the same millisecond: a funding instant, then the mark, then the tape's
# trades, then the quote they leave behind.
_FUNDING, _MARK, _TRADE, _QUOTE = range(4)


class _Tape:
    """One dataset's rows for one symbol across its files, read a file at a time, in id order,
    each id once, with times made non-decreasing (a row stamped before its predecessor is
    taken at the predecessor's time: ids are the archive's order)."""

    def __init__(self, files: Sequence[FileInfo]) -> None:
        self._files = sorted(files, key=lambda info: (info.period, str(info.path)))
        self._rows: Iterator[TradeRow | AggTradeRow | BookTickerRow] = iter(())
        self._last_id = -1
        self._last_time = 0
        self.head: tuple[int, TradeRow | AggTradeRow | BookTickerRow] | None = None
        self._advance()

    def _next_row(self) -> TradeRow | AggTradeRow | BookTickerRow | None:
        while True:
            for row in self._rows:
                if row_key(row) > self._last_id:
                    return row
            if not self._files:
                return None
            parsed = read_file(self._files.pop(0))
            self._rows = iter(
                row
                for row in parsed.rows
                if isinstance(row, TradeRow | AggTradeRow | BookTickerRow)
            )

    def _advance(self) -> None:
        row = self._next_row()
        if row is None:
            self.head = None
            return
        self._last_id = row_key(row)
        time = row.transaction_time_ms if isinstance(row, BookTickerRow) else row.time_ms
        self._last_time = max(self._last_time, time)
        self.head = (self._last_time, row)

    def pop(self) -> TradeRow | AggTradeRow | BookTickerRow:
        assert self.head is not None
        row = self.head[1]
        self._advance()
        return row


class _Curve:
    """A price path through each bar's open (at open time) and close (at close time), linear
    in between and flat beyond the ends."""

    def __init__(self, bars: Sequence[KlineRow]) -> None:
        self._times: list[int] = []
        self._values: list[Decimal] = []
        for bar in sorted(bars, key=lambda bar: bar.open_time_ms):
            self._times += [bar.open_time_ms, bar.close_time_ms]
            self._values += [bar.open, bar.close]
        self.start = self._times[0]
        self.end = self._times[-1]

    def at(self, t: int) -> Decimal:
        i = bisect.bisect_right(self._times, t)
        if i == 0:
            return self._values[0]
        if i == len(self._times):
            return self._values[-1]
        t0, t1 = self._times[i - 1], self._times[i]
        v0, v1 = self._values[i - 1], self._values[i]
        return (v0 + (v1 - v0) * (t - t0) / (t1 - t0)).quantize(_PRICE_PLACES)


@dataclass(frozen=True, slots=True)
class _Grid:
    tick: Decimal
    step: Decimal


def _lots(price: Decimal, grid: _Grid, low: int, high: int) -> Decimal:
    """A size for `price` between `low` and `high` steps, the same every time for that price."""
    n = int(price / grid.tick)
    spread = (n * 2654435761 + 12345) % 4294967296  # Knuth's multiplicative hash
    return grid.step * (low + spread % (high - low))


_Top: TypeAlias = tuple[Decimal, Decimal, Decimal, Decimal]  # bid, bid qty, ask, ask qty


@functools.lru_cache(maxsize=1 << 16)  # the same prices come back as L1 moves to and fro
def _synthetic_size(price: Decimal, distance: int, grid: _Grid) -> Decimal:
    # spec §7: L2-L5 0.001-0.05, the top 10 levels ~1-2 per side, more further out.
    if distance < 5:
        return _lots(price, grid, 1, 50)
    if distance < 10:
        return _lots(price, grid, 20, 400)
    return _lots(price, grid, 100, 3000)


class _SymbolReplay:
    def __init__(
        self,
        symbol: Symbol,
        files: dict[Dataset, list[FileInfo]],
        index_files: list[FileInfo],
        depth: int,
    ) -> None:
        self.symbol = symbol.symbol
        price_filter = symbol.filter(PriceFilter)
        lot_size = symbol.filter(LotSize)
        # both are required by the symbol file (protocol.exchange_info)
        assert price_filter is not None
        assert lot_size is not None
        self.grid = _Grid(Decimal(price_filter.tick_size), Decimal(lot_size.step_size))
        self.depth = depth
        tape_dataset = Dataset.TRADES if files.get(Dataset.TRADES) else Dataset.AGG_TRADES
        self.trades = _Tape(files.get(tape_dataset, []))
        quotes = files.get(Dataset.BOOK_TICKER, [])
        self.quotes = _Tape(quotes) if quotes else None
        self.mark_curve = _curve(files.get(Dataset.MARK_PRICE_KLINES, []))
        self.index_curve = _curve(index_files)
        self.premium_curve = _curve(files.get(Dataset.PREMIUM_INDEX_KLINES, []))
        self.fundings = sorted(
            (
                row
                for info in files.get(Dataset.FUNDING_RATE, [])
                for row in read_file(info).rows
                if isinstance(row, FundingRateRow)
            ),
            key=lambda row: row.calc_time_ms,
        )
        self.book = OrderBook(self.symbol)
        self._levels: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]] = ({}, {})
        self._top: _Top | None = None
        # levels 2..N for an L1 (bid, ask): the tape goes back and forth over few of them
        self._behind: dict[tuple[Decimal, Decimal], tuple[list[Level], list[Level]]] = {}
        self.last_price: Decimal | None = None
        self.next_tick: int | None = None
        self.next_funding = 0

    def first_time(self) -> int | None:
        times = [tape.head[0] for tape in (self.trades, self.quotes) if tape and tape.head]
        if self.mark_curve is not None:
            times.append(self.mark_curve.start)
        return min(times) if times else None

    def start(self, first_ms: int) -> None:
        """Prime the book and the schedule: the book starts at the first quote (or the first
        trade's inferred L1), ticks start at the first whole second after `first_ms`
        (the mark at `first_ms` itself is the source's initial mark)."""
        first_trade = self.trades.head[1] if self.trades.head is not None else None
        assert not isinstance(first_trade, BookTickerRow)
        if first_trade is not None:
            self.last_price = first_trade.price
        if self.quotes is not None and self.quotes.head is not None:
            row = self.quotes.pop()
            assert isinstance(row, BookTickerRow)
            self._prime((row.bid_price, row.bid_qty, row.ask_price, row.ask_qty), row.update_id)
        elif first_trade is not None:
            self._prime(self._inferred(first_trade), 1)
        self.next_tick = (first_ms // 1000 + 1) * 1000
        self.next_funding = bisect.bisect_left(
            [row.calc_time_ms for row in self.fundings], first_ms
        )

    # --- the schedule ---------------------------------------------------------------------

    def _data_reaches(self, t: int) -> bool:
        """Whether any data lies at or after `t` (ticks and settlements stop with the data)."""
        if self.mark_curve is not None and self.mark_curve.end >= t:
            return True
        return any(
            tape is not None and tape.head is not None for tape in (self.trades, self.quotes)
        )

    def head(self) -> tuple[int, int] | None:
        """(file time, kind) of the next event, or None when the replay is over."""
        candidates: list[tuple[int, int]] = []
        if self.trades.head is not None:
            candidates.append((self.trades.head[0], _TRADE))
        if self.quotes is not None and self.quotes.head is not None:
            candidates.append((self.quotes.head[0], _QUOTE))
        if self.next_funding < len(self.fundings):
            candidates.append((self.fundings[self.next_funding].calc_time_ms, _FUNDING))
        if self.next_tick is not None:
            candidates.append((self.next_tick, _MARK))
        while candidates:
            best = min(candidates)
            if best[1] in (_TRADE, _QUOTE) or self._data_reaches(best[0]):
                return best
            # a tick or settlement past the end of the data never happens
            candidates.remove(best)
            if best[1] == _MARK:
                self.next_tick = None
            else:
                self.next_funding = len(self.fundings)
        return None

    def pop(self, kind: int, file_ms: int, to_server: _Clock) -> list[MarketUpdate]:
        if kind == _TRADE:
            return self._trade(to_server)
        if kind == _QUOTE:
            assert self.quotes is not None
            row = self.quotes.pop()
            assert isinstance(row, BookTickerRow)
            return self._quote(row, to_server(file_ms))
        if kind == _MARK:
            assert self.next_tick is not None
            self.next_tick += 1000
            return [self.mark_at(file_ms, to_server)]
        row_f = self.fundings[self.next_funding]
        self.next_funding += 1
        return [
            FundingSettlement(
                self.symbol,
                to_server(row_f.calc_time_ms),
                row_f.funding_rate,
                self._mark_price(row_f.calc_time_ms),
            )
        ]

    # --- events ---------------------------------------------------------------------------

    def _trade(self, to_server: _Clock) -> list[MarketUpdate]:
        assert self.trades.head is not None
        file_ms = self.trades.head[0]
        row = self.trades.pop()
        assert isinstance(row, TradeRow | AggTradeRow)
        now = to_server(file_ms)
        updates: list[MarketUpdate]
        if isinstance(row, TradeRow):
            updates = [
                Trade(self.symbol, row.trade_id, row.price, row.qty, row.buyer_is_maker, now)
            ]
        else:
            updates = list(self._fills(row, now))
        self.last_price = row.price
        if self.quotes is None:
            update = self._set_top(self._inferred(row), self.book.last_update_id + 1, now)
            if update is not None:
                updates.append(update)
        return updates

    def _fills(self, row: AggTradeRow, now: int) -> list[Trade]:
        return aggregate_fills(
            self.symbol,
            row.agg_trade_id,
            row.first_trade_id,
            row.last_trade_id,
            row.price,
            row.qty,
            row.buyer_is_maker,
            now,
            self.grid.step,
        )

    def _quote(self, row: BookTickerRow, now: int) -> list[MarketUpdate]:
        top = (row.bid_price, row.bid_qty, row.ask_price, row.ask_qty)
        update = self._set_top(top, max(row.update_id, self.book.last_update_id + 1), now)
        return [update] if update is not None else []

    def _inferred(self, row: TradeRow | AggTradeRow) -> _Top:
        tick = self.grid.tick
        bid = row.price if row.buyer_is_maker else row.price - tick
        ask = bid + tick
        return bid, _lots(bid, self.grid, 500, 6000), ask, _lots(ask, self.grid, 500, 6000)

    def _prime(self, top: _Top, update_id: int) -> None:
        bids, asks = self._target(top)
        self.book.replace(bids, asks, update_id)
        self._remember(bids, asks)
        self._top = top

    def _set_top(self, top: _Top, final_id: int, now: int) -> BookUpdate | None:
        """Move L1 to `top` (the synthetic levels with it), applied; None if nothing changed.
        Only L1 sizes changed: only they are in the update (the common case, and cheap)."""
        previous = self._top
        if top == previous:
            return None
        self._top = top
        if previous is None or (top[0], top[2]) != (previous[0], previous[2]):
            return self._change(*self._target(top), final_id, now)
        bid, bid_qty, ask, ask_qty = top
        bids = (Level(bid, bid_qty),) if bid_qty != previous[1] else ()
        asks = (Level(ask, ask_qty),) if ask_qty != previous[3] else ()
        self._levels[0][bid] = bid_qty
        self._levels[1][ask] = ask_qty
        update = BookUpdate(self.symbol, self.book.last_update_id + 1, final_id, bids, asks, now)
        self.book.apply(update)
        return update

    def _target(self, top: _Top) -> tuple[list[Level], list[Level]]:
        bid, bid_qty, ask, ask_qty = top
        behind = self._behind.get((bid, ask))
        if behind is None:
            tick, grid = self.grid.tick, self.grid
            below = [bid - k * tick for k in range(1, self.depth)]
            above = [ask + k * tick for k in range(1, self.depth)]
            behind = (
                [Level(p, _synthetic_size(p, k, grid)) for k, p in enumerate(below, 1) if p > 0],
                [Level(p, _synthetic_size(p, k, grid)) for k, p in enumerate(above, 1)],
            )
            if len(self._behind) >= _SHAPES_KEPT:
                self._behind.clear()
            self._behind[bid, ask] = behind
        return [Level(bid, bid_qty), *behind[0]], [Level(ask, ask_qty), *behind[1]]

    def _remember(self, bids: list[Level], asks: list[Level]) -> None:
        self._levels = ({lv.price: lv.qty for lv in bids}, {lv.price: lv.qty for lv in asks})

    def _change(
        self, bids: list[Level], asks: list[Level], final_id: int, now: int
    ) -> BookUpdate | None:
        """The diff from the current book to the target levels, applied; None if no change."""
        changes: list[tuple[Level, ...]] = []
        for old, new in zip(self._levels, (bids, asks), strict=True):
            target = {lv.price: lv.qty for lv in new}
            gone = [Level(price, Decimal(0)) for price in old if price not in target]
            moved = [lv for lv in new if old.get(lv.price) != lv.qty]
            changes.append(tuple(gone + moved))
        if not changes[0] and not changes[1]:
            return None
        update = BookUpdate(
            self.symbol, self.book.last_update_id + 1, final_id, changes[0], changes[1], now
        )
        self.book.apply(update)
        self._remember(bids, asks)
        return update

    # --- mark, index, funding -------------------------------------------------------------

    def _mark_price(self, file_ms: int) -> Decimal:
        if self.mark_curve is not None:
            return self.mark_curve.at(file_ms)
        assert self.last_price is not None
        return self.last_price

    def funding_at(self, file_ms: int) -> tuple[Decimal, int]:
        """The synthetic funding estimate at `file_ms` (linear between the settled rates around
        it) and the next funding instant: the interval boundary of the next settlement in the
        file, else the next boundary of the last known interval (8 h when none is known)."""
        times = [row.calc_time_ms for row in self.fundings]
        i = bisect.bisect_right(times, file_ms)
        before = self.fundings[i - 1] if i > 0 else None
        after = self.fundings[i] if i < len(self.fundings) else None
        if after is not None:
            # calc_time is a few ms after the instant (spec §4 "Settlement")
            next_funding = after.calc_time_ms - after.calc_time_ms % (
                after.funding_interval_hours * _HOUR_MS
            )
        else:
            hours = before.funding_interval_hours if before else _DEFAULT_FUNDING_HOURS
            next_funding = (file_ms // (hours * _HOUR_MS) + 1) * hours * _HOUR_MS
        if before is not None and after is not None:
            share = Fraction(
                file_ms - before.calc_time_ms, after.calc_time_ms - before.calc_time_ms
            )
            span = after.funding_rate - before.funding_rate
            rate = before.funding_rate + span * share.numerator / share.denominator
            return rate.quantize(_PRICE_PLACES), next_funding
        known = after or before
        return (known.funding_rate if known else _INTEREST_RATE), next_funding

    def mark_at(self, file_ms: int, to_server: _Clock) -> MarkUpdate:
        mark = self._mark_price(file_ms)
        index = self.index_curve.at(file_ms) if self.index_curve is not None else mark
        rate, next_funding = self.funding_at(file_ms)
        premium = (
            self.premium_curve.at(file_ms)
            if self.premium_curve is not None and file_ms % _PREMIUM_SAMPLE_MS == 0
            else None
        )
        return MarkUpdate(
            self.symbol,
            mark,
            index,
            index,
            rate,
            _INTEREST_RATE,
            to_server(next_funding),
            to_server(file_ms),
            premium_index=premium,
        )


def aggregate_fills(
    symbol: str,
    agg_id: int,
    first_id: int,
    last_id: int,
    price: Decimal,
    qty: Decimal,
    buyer_is_maker: bool,
    time_ms: int,
    step: Decimal,
) -> list[Trade]:
    """The trades `first_id..last_id` of one aggregate trade, all in aggregate `agg_id`.

    An aggregate keeps only their total (aggTrades files, `@aggTrade`): each fill but the
    first is given one lot `step` and the first the rest, so the ids, the count and the sum
    are Binance's and the sizes of the single fills are invented. An aggregate whose quantity
    is less than a step per fill (inconsistent data) becomes one trade with its last id.
    """
    count = last_id - first_id + 1
    if count < 1 or qty < count * step:
        sizes = {last_id: qty}
    else:
        sizes = {first_id: qty - (count - 1) * step}
        sizes.update((trade_id, step) for trade_id in range(first_id + 1, last_id + 1))
    return [
        Trade(symbol, trade_id, price, size, buyer_is_maker, time_ms, aggregate_id=agg_id)
        for trade_id, size in sizes.items()
    ]


def _curve(files: Sequence[FileInfo]) -> _Curve | None:
    bars = [
        row
        for info in files
        if info.interval == "1m"
        for row in read_file(info).rows
        if isinstance(row, KlineRow)
    ]
    return _Curve(bars) if bars else None


class _Clock:
    """File time to server time: `start_ms + (file_ms - first_ms) / speed`, floored."""

    def __init__(self, first_ms: int, start_ms: int, speed: Fraction) -> None:
        self.first_ms = first_ms
        self.start_ms = start_ms
        self.speed = speed

    def __call__(self, file_ms: int) -> int:
        return self.start_ms + int((file_ms - self.first_ms) / self.speed // 1)

    def file_limit(self, now_ms: int) -> int:
        """The latest file time that has happened by server time `now_ms`."""
        return self.first_ms + int((now_ms - self.start_ms) * self.speed // 1)

    def due_ms(self, file_ms: int) -> int:
        """The first server time by which `file_ms` has happened (`file_limit`'s inverse)."""
        return self.start_ms - int((self.first_ms - file_ms) / self.speed // 1)


class ReplayMarket:
    """A `MarketSource` replaying the Binance files under a directory (see the module doc).

    Args:
        directory: Where the files are (layouts: `replay_files`).
        symbols: The exchangeInfo symbols; each file must be for one of them (index files for
            one of their pairs). Their tick and step sizes place the synthetic levels.
        speed: File seconds per server second (1 = real time; 10 = ten times as fast).
        start_ms: The server time at which the replay's first record is shown.
        depth: Levels per side of the book, L1 real (or inferred) and the rest synthetic.

    Raises:
        ConfigurationError: no trades, a file for an unknown symbol, a bad speed, or any
            `ReplayFileError` (naming the file and line) from the first files read.
    """

    def __init__(
        self,
        directory: Path,
        symbols: Sequence[Symbol],
        *,
        speed: Fraction | int | str = 1,
        start_ms: int,
        depth: int = DEFAULT_DEPTH,
    ) -> None:
        rate = Fraction(speed)
        if rate <= 0:
            raise ConfigurationError(f"replay speed must be positive, not {speed}")
        by_symbol = {s.symbol: s for s in symbols}
        by_pair: dict[str, list[str]] = {}
        for s in symbols:
            by_pair.setdefault(s.pair, []).append(s.symbol)
        files: dict[str, dict[Dataset, list[FileInfo]]] = {}
        index_files: dict[str, list[FileInfo]] = {}
        for info in discover(directory):
            if info.dataset is Dataset.INDEX_PRICE_KLINES:
                if info.symbol not in by_pair:
                    raise ConfigurationError(f"{info.path}: no symbol has the pair {info.symbol}")
                index_files.setdefault(info.symbol, []).append(info)
                continue
            if info.symbol not in by_symbol:
                raise ConfigurationError(f"{info.path}: {info.symbol} is not in exchangeInfo")
            files.setdefault(info.symbol, {}).setdefault(info.dataset, []).append(info)
        for name, datasets in files.items():
            if not datasets.get(Dataset.TRADES) and not datasets.get(Dataset.AGG_TRADES):
                found = ", ".join(sorted(datasets))
                raise ConfigurationError(
                    f"{directory}: {name} has {found} but no trades or aggTrades files"
                )
        if not files:
            raise ConfigurationError(f"{directory}: no trades or aggTrades files")
        self._replays = [
            _SymbolReplay(
                by_symbol[name], files[name], index_files.get(by_symbol[name].pair, []), depth
            )
            for name in by_symbol
            if name in files
        ]
        firsts = [t for replay in self._replays if (t := replay.first_time()) is not None]
        self._clock = _Clock(min(firsts), start_ms, rate)
        for replay in self._replays:
            replay.start(self._clock.first_ms)
        self._by_name = {replay.symbol: replay for replay in self._replays}
        self._marks = {
            replay.symbol: replay.mark_at(self._clock.first_ms, self._clock)
            for replay in self._replays
        }

    @property
    def symbols(self) -> Sequence[str]:
        return [replay.symbol for replay in self._replays]

    @property
    def first_file_ms(self) -> int:
        """The file time of the replay's first record, shown at `start_ms`."""
        return self._clock.first_ms

    def next_update_ms(self) -> int | None:
        """When the next record is due (`server.market.TimedSource`); None once all played."""
        heads = [head[0] for replay in self._replays if (head := replay.head()) is not None]
        if not heads:
            return None
        return max(self._clock.start_ms, self._clock.due_ms(min(heads)))

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        if now_ms < self._clock.start_ms:
            return []
        limit = self._clock.file_limit(now_ms)
        updates: list[MarketUpdate] = []
        while True:
            best: tuple[int, int, int] | None = None
            for position, replay in enumerate(self._replays):
                head = replay.head()
                if head is not None and head[0] <= limit and (best is None or head < best[:2]):
                    best = (head[0], head[1], position)
            if best is None:
                return updates
            file_ms, kind, position = best
            for update in self._replays[position].pop(kind, file_ms, self._clock):
                if isinstance(update, MarkUpdate):
                    self._marks[update.symbol] = update
                updates.append(update)

    def book(self, symbol: str) -> OrderBook:
        return self._by_name[symbol].book

    def mark(self, symbol: str) -> MarkUpdate:
        return self._marks[symbol]


def open_replay(argument: str, symbols: Sequence[Symbol], start_ms: int) -> ReplayMarket:
    """The replay `serve --market replay:DIR[?speed=N]` names: DIR's files shown from
    `start_ms` on, N (default 1; a fraction like `0.5` or `1/2` slows it) times as fast.

    Raises:
        ConfigurationError: an unknown option or a speed that is not a positive number, or
            anything `ReplayMarket` refuses.
    """
    directory, _, query = argument.partition("?")
    if not directory:
        raise ConfigurationError("replay:DIR needs a directory")
    speed = "1"
    for option in filter(None, query.split("&")):
        name, _, value = option.partition("=")
        if name != "speed":
            raise ConfigurationError(f"replay:{argument}: unknown option {name!r} (speed=N)")
        speed = value
    try:
        rate = Fraction(speed)
    except (ValueError, ZeroDivisionError):
        raise ConfigurationError(f"replay:{argument}: speed {speed!r} is not a number") from None
    return ReplayMarket(Path(directory), symbols, speed=rate, start_ms=start_ms)
