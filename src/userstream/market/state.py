"""What the market REST and streams serve, folded from any source's `MarketUpdate`s.

`MarketState.apply(updates, now_ms)` is called after each advance with the updates it
returned; the query methods then answer `trades`, `aggTrades`, the four kline families,
`ticker/24hr`, `premiumIndex` and `fundingRate` (market-data spec §2.2, §3.1) from the same
state, as typed frozen values (the wire shapes are `protocol.market`'s). Memory is bounded:
rings of the last trades, aggregates, bars and funding records per symbol.

Aggregation (spec §2.1 aggTrade): consecutive trades merge while they have the same taker
side and price and fall within 100 ms of the aggregate's first trade, so `f..l` is
contiguous; a source that knows the aggregates (`Trade.aggregate_id`) is followed instead.
The rolling 24 h ticker is kept on one-minute bars: the window is the current minute and the
1439 before it; its open is the first of those bars' open (the last price before the window
when that minute had no trade), its high and low come from the minutes that had trades.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from userstream.market.types import FundingSettlement, MarketUpdate, MarkUpdate, Trade

__all__ = [
    "AGGREGATE_WINDOW_MS",
    "KLINE_INTERVALS",
    "AggTrade",
    "FundingRecord",
    "Kline",
    "KlineFamily",
    "MarketState",
    "Ticker24h",
    "bar_close",
    "bar_open",
]

AGGREGATE_WINDOW_MS: Final = 100
_MINUTE: Final = 60_000
_DAY: Final = 86_400_000
_WEEK_OFFSET: Final = 4 * _DAY  # 1970-01-01 was a Thursday; weekly bars open on Mondays
_WINDOW_BARS: Final = 1440  # one-minute bars in the rolling 24 h ticker
_ZERO: Final = Decimal(0)

# Binance's kline intervals (spec §2.1; no 1s on USDⓈ-M) and their widths; 1M is calendar.
KLINE_INTERVALS: Final[Mapping[str, int]] = {
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1h": 60 * _MINUTE,
    "2h": 120 * _MINUTE,
    "4h": 240 * _MINUTE,
    "6h": 360 * _MINUTE,
    "8h": 480 * _MINUTE,
    "12h": 720 * _MINUTE,
    "1d": _DAY,
    "3d": 3 * _DAY,
    "1w": 7 * _DAY,
    "1M": 31 * _DAY,  # the longest month; bar_open/bar_close use the calendar
}


def bar_open(interval: str, time_ms: int) -> int:
    """The open time of the `interval` bar holding `time_ms` (UTC; weeks open on Monday)."""
    if interval == "1M":
        day = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC)
        return calendar.timegm((day.year, day.month, 1, 0, 0, 0)) * 1000
    width = KLINE_INTERVALS[interval]
    if interval == "1w":
        return (time_ms - _WEEK_OFFSET) // width * width + _WEEK_OFFSET
    return time_ms // width * width


def bar_close(interval: str, open_ms: int) -> int:
    """The close time of the bar opening at `open_ms`: the next open minus 1 ms (spec §2.2)."""
    if interval == "1M":
        day = dt.datetime.fromtimestamp(open_ms / 1000, dt.UTC)
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000 - 1
    return open_ms + KLINE_INTERVALS[interval] - 1


class KlineFamily(enum.Enum):
    """Which price a kline follows: the tape, or the mark/index/premium-index samples."""

    TRADE = "trade"
    MARK = "mark"
    INDEX = "index"
    PREMIUM = "premium"


@dataclass(frozen=True, slots=True)
class AggTrade:
    """One aggregate trade (`@aggTrade`, `GET /fapi/v1/aggTrades`); `time_ms` is its first
    trade's time."""

    agg_id: int
    price: Decimal
    qty: Decimal
    first_trade_id: int
    last_trade_id: int
    time_ms: int
    buyer_is_maker: bool
    symbol: str  # which symbol `apply` finalised it for (`@aggTrade` publishes per symbol)


@dataclass(frozen=True, slots=True)
class Kline:
    """One bar. For the mark/index/premium families the volumes are 0 and `count` is the
    number of samples (spec §3.1); `closed` is whether `close_time_ms` has passed."""

    open_time_ms: int
    close_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    first_trade_id: int
    last_trade_id: int
    closed: bool


@dataclass(frozen=True, slots=True)
class Ticker24h:
    """The rolling 24 h statistics (`ticker/24hr`, `@ticker`, `@miniTicker`). With no trade in
    the window the prices are the last known price (0 before any trade) and ids are -1."""

    symbol: str
    open_time_ms: int
    close_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    last_qty: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int
    first_trade_id: int
    last_trade_id: int

    @property
    def price_change(self) -> Decimal:
        return self.last - self.open

    @property
    def price_change_percent(self) -> Decimal:
        return self.price_change / self.open * 100 if self.open else _ZERO

    @property
    def weighted_avg_price(self) -> Decimal:
        return self.quote_volume / self.volume if self.volume else self.last


@dataclass(frozen=True, slots=True)
class FundingRecord:
    """One settled funding (`GET /fapi/v1/fundingRate`)."""

    symbol: str
    funding_time_ms: int
    funding_rate: Decimal
    mark_price: Decimal


class _Bar:
    __slots__ = (
        "close",
        "close_ms",
        "count",
        "first_id",
        "high",
        "last_id",
        "low",
        "open",
        "open_ms",
        "quote",
        "taker_base",
        "taker_quote",
        "volume",
    )

    def __init__(self, open_ms: int, close_ms: int, price: Decimal) -> None:
        self.open_ms = open_ms
        self.close_ms = close_ms
        self.open = self.high = self.low = self.close = price
        self.volume = self.quote = self.taker_base = self.taker_quote = _ZERO
        self.count = 0
        self.first_id = self.last_id = -1

    def merge(self, minute: _Bar) -> None:
        """Fold a closed one-minute bar into this longer bar."""
        if minute.count == 0:  # nothing happened: o = h = l = c = the close already here
            return
        if self.count == 0:
            self.open, self.high, self.low = minute.open, minute.high, minute.low
            self.first_id = minute.first_id
        else:
            if minute.high > self.high:
                self.high = minute.high
            if minute.low < self.low:
                self.low = minute.low
        self.close = minute.close
        self.volume += minute.volume
        self.quote += minute.quote
        self.taker_base += minute.taker_base
        self.taker_quote += minute.taker_quote
        self.count += minute.count
        self.last_id = minute.last_id

    def copy(self) -> _Bar:
        bar = _Bar(self.open_ms, self.close_ms, self.open)
        bar.merge(self)
        if self.count == 0:
            bar.close = bar.high = bar.low = self.close
        return bar

    def frozen(self, now_ms: int) -> Kline:
        return Kline(
            self.open_ms,
            self.close_ms,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.quote,
            self.count,
            self.taker_base,
            self.taker_quote,
            self.first_id,
            self.last_id,
            self.close_ms < now_ms,
        )


class _Series:
    """One symbol's bars of one interval and family, oldest first, at most `limit`. Bars
    with nothing in them are filled in (o = h = l = c = the previous close, spec §2.2)."""

    __slots__ = ("bars", "interval", "limit")

    def __init__(self, interval: str, limit: int) -> None:
        self.interval = interval
        self.limit = limit
        self.bars: deque[_Bar] = deque(maxlen=limit)

    def roll(self, time_ms: int) -> list[_Bar]:
        """Open the bars up to the one holding `time_ms`; returns the bars this closed."""
        bars = self.bars
        if not bars or time_ms <= bars[-1].close_ms:
            return []
        closed = [bars[-1]]
        price = bars[-1].close
        interval = self.interval
        target = bar_open(interval, time_ms)
        open_ms = bars[-1].close_ms + 1
        if interval != "1M":
            width = KLINE_INTERVALS[interval]
            missing = (target - open_ms) // width + 1
            if missing > self.limit:
                open_ms = target - (self.limit - 1) * width
        while open_ms <= target:
            bar = _Bar(open_ms, bar_close(interval, open_ms), price)
            if open_ms < target:
                closed.append(bar)
            bars.append(bar)
            open_ms = bar.close_ms + 1
        return closed

    def bar_for(self, time_ms: int, price: Decimal) -> tuple[_Bar, list[_Bar]]:
        """The bar holding `time_ms` (opened if needed) and the bars this closed. Updates
        come oldest first; one older than the open bar is counted in the open bar."""
        bars = self.bars
        if not bars:
            open_ms = bar_open(self.interval, time_ms)
            bar = _Bar(open_ms, bar_close(self.interval, open_ms), price)
            bars.append(bar)
            return bar, []
        closed = self.roll(time_ms)
        return bars[-1], closed

    def fold(self, minute: _Bar) -> None:
        """Fold a closed one-minute bar into this (longer) series."""
        bar, _ = self.bar_for(minute.open_ms, minute.open)
        bar.merge(minute)

    def add_trade(self, trade: Trade, quote: Decimal) -> list[_Bar]:
        bar, closed = self.bar_for(trade.time_ms, trade.price)
        price, qty = trade.price, trade.qty
        if bar.count == 0:
            bar.open = bar.high = bar.low = price
            bar.first_id = trade.trade_id
        elif price > bar.high:
            bar.high = price
        elif price < bar.low:
            bar.low = price
        bar.close = price
        bar.volume += qty
        bar.quote += quote
        bar.count += 1
        bar.last_id = trade.trade_id
        if not trade.buyer_is_maker:
            bar.taker_base += qty
            bar.taker_quote += quote
        return closed

    def add_sample(self, time_ms: int, price: Decimal) -> list[_Bar]:
        bar, closed = self.bar_for(time_ms, price)
        if bar.count == 0:
            bar.open = bar.high = bar.low = price
        elif price > bar.high:
            bar.high = price
        elif price < bar.low:
            bar.low = price
        bar.close = price
        bar.count += 1
        return closed

    def query(
        self,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        now_ms: int,
        bars: Iterable[_Bar] | None = None,
    ) -> list[Kline]:
        bars = self.bars if bars is None else bars
        if start_ms is not None:
            bars = [b for b in bars if b.open_ms >= start_ms]
        if end_ms is not None:
            bars = [b for b in bars if b.open_ms <= end_ms]
        chosen = list(bars)
        chosen = chosen[:limit] if start_ms is not None else chosen[-limit:]
        return [bar.frozen(now_ms) for bar in chosen]


class _Family:
    """One symbol's bars of one family for every interval. Updates go into the one-minute
    bars only; a closed minute is folded into the longer intervals, and a query of a longer
    interval adds the open minute to its open bar. So an update costs one bar, not fifteen."""

    __slots__ = ("longer", "minute")

    def __init__(self, minute_limit: int, limit: int) -> None:
        self.minute = _Series("1m", minute_limit)
        self.longer = {i: _Series(i, limit) for i in KLINE_INTERVALS if i != "1m"}

    def fold(self, closed: list[_Bar]) -> list[_Bar]:
        if not closed:  # most updates close no minute: skip the fourteen longer series
            return closed
        for series in self.longer.values():
            for minute in closed:
                series.fold(minute)
        return closed

    def add_trade(self, trade: Trade, quote: Decimal) -> list[_Bar]:
        return self.fold(self.minute.add_trade(trade, quote))

    def add_sample(self, time_ms: int, price: Decimal) -> None:
        self.fold(self.minute.add_sample(time_ms, price))

    def roll(self, time_ms: int) -> list[_Bar]:
        return self.fold(self.minute.roll(time_ms))

    def query(
        self, interval: str, start_ms: int | None, end_ms: int | None, limit: int, now_ms: int
    ) -> list[Kline]:
        if interval == "1m":
            return self.minute.query(start_ms, end_ms, limit, now_ms)
        series = self.longer[interval]
        bars = list(series.bars)
        if self.minute.bars:
            minute = self.minute.bars[-1]
            if bars and minute.open_ms <= bars[-1].close_ms:
                current = bars[-1].copy()
            else:
                open_ms = bar_open(interval, minute.open_ms)
                current = _Bar(open_ms, bar_close(interval, open_ms), minute.close)
                bars.append(current)
            current.merge(minute)
            bars[-1] = current
        return series.query(start_ms, end_ms, limit, now_ms, bars[-series.limit :])


class _Window:
    """The closed one-minute bars of the rolling 24 h window, with running sums and the
    high/low kept by monotonic queues, so a ticker costs O(1)."""

    __slots__ = ("bars", "count", "highs", "lows", "quote", "volume")

    def __init__(self) -> None:
        self.bars: deque[_Bar] = deque()
        self.highs: deque[_Bar] = deque()
        self.lows: deque[_Bar] = deque()
        self.volume = self.quote = _ZERO
        self.count = 0

    def push(self, bar: _Bar) -> None:
        self.bars.append(bar)
        self.volume += bar.volume
        self.quote += bar.quote
        self.count += bar.count
        if bar.count == 0:  # an empty bar's price is older than the window
            return
        while self.highs and self.highs[-1].high <= bar.high:
            self.highs.pop()
        self.highs.append(bar)
        while self.lows and self.lows[-1].low >= bar.low:
            self.lows.pop()
        self.lows.append(bar)

    def evict_before(self, open_ms: int) -> None:
        while self.bars and self.bars[0].open_ms < open_ms:
            bar = self.bars.popleft()
            self.volume -= bar.volume
            self.quote -= bar.quote
            self.count -= bar.count
            if self.highs and self.highs[0] is bar:
                self.highs.popleft()
            if self.lows and self.lows[0] is bar:
                self.lows.popleft()


class _SymbolState:
    __slots__ = (
        "aggregates",
        "families",
        "fundings",
        "last_agg_id",
        "last_trade",
        "mark",
        "minute",
        "open_aggregate",
        "tape",
        "trades",
        "window",
    )

    def __init__(self, trades: int, bars: int, fundings: int) -> None:
        self.trades: deque[Trade] = deque(maxlen=trades)
        self.aggregates: deque[AggTrade] = deque(maxlen=trades)
        self.open_aggregate = False  # the last aggregate may still grow
        self.last_agg_id = 0
        self.families = {
            family: _Family(max(bars, _WINDOW_BARS) if family is KlineFamily.TRADE else bars, bars)
            for family in KlineFamily
        }
        self.tape = self.families[KlineFamily.TRADE]
        self.minute = self.tape.minute
        self.window = _Window()
        self.fundings: deque[FundingRecord] = deque(maxlen=fundings)
        self.mark: MarkUpdate | None = None
        self.last_trade: Trade | None = None


class MarketState:
    """Folds one source's updates into the market's queryable state.

    Args:
        symbols: The symbols the source prices; queries for others raise `KeyError`.
        trade_history: Trades and aggregate trades kept per symbol (REST `limit` max 1000).
        kline_history: Bars kept per symbol, interval and family (REST `limit` max 1500).
        funding_history: Settled funding records kept per symbol.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        trade_history: int = 1000,
        kline_history: int = 1500,
        funding_history: int = 1000,
    ) -> None:
        self._symbols = {
            symbol: _SymbolState(trade_history, kline_history, funding_history)
            for symbol in symbols
        }
        self._now_ms = 0

    @property
    def now_ms(self) -> int:
        """The `now_ms` of the last `apply`."""
        return self._now_ms

    def apply(self, updates: Sequence[MarketUpdate], now_ms: int) -> list[AggTrade]:
        """Fold `updates` (oldest first) and move every bar up to `now_ms`.

        Returns:
            The aggregate trades that became final: a later trade did not merge into them,
            or `now_ms` is 100 ms past their first trade. Each is returned once, in order;
            this is what `@aggTrade` publishes.
        """
        final: list[AggTrade] = []
        for update in updates:
            if isinstance(update, Trade):
                self._trade(update, final)
            elif isinstance(update, MarkUpdate):
                self._mark(update)
            elif isinstance(update, FundingSettlement):
                state = self._symbols[update.symbol]
                state.fundings.append(
                    FundingRecord(
                        update.symbol,
                        update.funding_time_ms,
                        update.funding_rate,
                        update.mark_price,
                    )
                )
        self._now_ms = max(self._now_ms, now_ms)
        for state in self._symbols.values():
            for family in state.families.values():
                closed = family.roll(now_ms)
                if family is state.tape:
                    self._window_push(state, closed)
            if state.open_aggregate and state.aggregates:
                last = state.aggregates[-1]
                if now_ms - last.time_ms >= AGGREGATE_WINDOW_MS:
                    state.open_aggregate = False
                    final.append(last)
        return final

    def _trade(self, trade: Trade, final: list[AggTrade]) -> None:
        state = self._symbols[trade.symbol]
        state.trades.append(trade)
        state.last_trade = trade
        self._window_push(state, state.tape.add_trade(trade, trade.price * trade.qty))
        aggregates = state.aggregates
        last = aggregates[-1] if state.open_aggregate else None
        if last is not None and _merges(last, trade):
            aggregates[-1] = AggTrade(
                last.agg_id,
                last.price,
                last.qty + trade.qty,
                last.first_trade_id,
                trade.trade_id,
                last.time_ms,
                last.buyer_is_maker,
                trade.symbol,
            )
            return
        if last is not None:
            final.append(last)
        agg_id = trade.aggregate_id if trade.aggregate_id is not None else state.last_agg_id + 1
        state.last_agg_id = agg_id
        aggregates.append(
            AggTrade(
                agg_id,
                trade.price,
                trade.qty,
                trade.trade_id,
                trade.trade_id,
                trade.time_ms,
                trade.buyer_is_maker,
                trade.symbol,
            )
        )
        state.open_aggregate = True

    @staticmethod
    def _window_push(state: _SymbolState, closed: list[_Bar]) -> None:
        if not closed:
            return
        for bar in closed:
            state.window.push(bar)
        current = state.minute.bars[-1].open_ms
        state.window.evict_before(current - (_WINDOW_BARS - 1) * _MINUTE)

    def _mark(self, update: MarkUpdate) -> None:
        state = self._symbols[update.symbol]
        state.mark = update
        families = state.families
        families[KlineFamily.MARK].add_sample(update.time_ms, update.mark_price)
        families[KlineFamily.INDEX].add_sample(update.time_ms, update.index_price)
        if update.premium_index is not None:
            families[KlineFamily.PREMIUM].add_sample(update.time_ms, update.premium_index)

    # -- queries ------------------------------------------------------------------------------

    @property
    def symbols(self) -> Sequence[str]:
        return tuple(self._symbols)

    def trades(self, symbol: str, limit: int = 500, from_id: int | None = None) -> list[Trade]:
        """Recent trades oldest first: the latest `limit`, or `limit` from `from_id` on."""
        trades = self._symbols[symbol].trades
        if from_id is None:
            return list(trades)[-limit:] if limit else []
        return [t for t in trades if t.trade_id >= from_id][:limit]

    def last_trade(self, symbol: str) -> Trade | None:
        return self._symbols[symbol].last_trade

    def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[AggTrade]:
        """Aggregate trades oldest first (`GET /fapi/v1/aggTrades` semantics): from `from_id`,
        or inside `[start_ms, end_ms]`, else the most recent `limit`. The last one may still
        grow for up to 100 ms."""
        aggregates: Iterable[AggTrade] = self._symbols[symbol].aggregates
        if from_id is not None:
            aggregates = [a for a in aggregates if a.agg_id >= from_id]
        if start_ms is not None:
            aggregates = [a for a in aggregates if a.time_ms >= start_ms]
        if end_ms is not None:
            aggregates = [a for a in aggregates if a.time_ms <= end_ms]
        chosen = list(aggregates)
        if from_id is None and start_ms is None:
            return chosen[-limit:] if limit else []
        return chosen[:limit]

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        family: KlineFamily = KlineFamily.TRADE,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        """Bars oldest first, the open one included (`GET /fapi/v1/klines` semantics): with
        `start_ms` the first `limit` from it, else the last `limit` up to `end_ms`.

        Raises:
            KeyError: An unknown symbol or interval.
        """
        bars = self._symbols[symbol].families[family]
        return bars.query(interval, start_ms, end_ms, limit, self._now_ms)

    def ticker(self, symbol: str) -> Ticker24h:
        """The rolling 24 h statistics as of the last `apply`."""
        state = self._symbols[symbol]
        now = self._now_ms
        last = state.last_trade
        open_ms = now - _DAY
        if last is None or not state.minute.bars:
            return Ticker24h(
                symbol, open_ms, now, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, 0, -1, -1
            )
        window, current = state.window, state.minute.bars[-1]
        first = window.bars[0] if window.bars else current
        highs = [window.highs[0].high] if window.highs else []
        lows = [window.lows[0].low] if window.lows else []
        if current.count or not highs:
            highs.append(current.high)
            lows.append(current.low)
        high, low = max(highs), min(lows)
        count = window.count + current.count
        first_id = next((b.first_id for b in window.bars if b.count), current.first_id)
        return Ticker24h(
            symbol=symbol,
            open_time_ms=open_ms,
            close_time_ms=now,
            open=first.open,
            high=high,
            low=low,
            last=last.price,
            last_qty=last.qty,
            volume=window.volume + current.volume,
            quote_volume=window.quote + current.quote,
            count=count,
            first_trade_id=first_id if count else -1,
            last_trade_id=last.trade_id if count else -1,
        )

    def mark(self, symbol: str) -> MarkUpdate | None:
        """The latest mark, index and funding estimate (`premiumIndex`, `@markPrice`)."""
        return self._symbols[symbol].mark

    def funding_history(
        self,
        symbol: str | None = None,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 100,
    ) -> list[FundingRecord]:
        """Settled funding, ascending by time (`GET /fapi/v1/fundingRate` semantics): with
        `start_ms` the first `limit` from it, else the last `limit` up to `end_ms`; every
        symbol when `symbol` is None."""
        if symbol is None:
            records = sorted(
                (r for s in self._symbols.values() for r in s.fundings),
                key=lambda r: r.funding_time_ms,
            )
        else:
            records = list(self._symbols[symbol].fundings)
        if start_ms is not None:
            records = [r for r in records if r.funding_time_ms >= start_ms]
        if end_ms is not None:
            records = [r for r in records if r.funding_time_ms <= end_ms]
        return records[:limit] if start_ms is not None else records[-limit:]


def _merges(last: AggTrade, trade: Trade) -> bool:
    if trade.aggregate_id is not None:
        return trade.aggregate_id == last.agg_id
    return (
        trade.price == last.price
        and trade.buyer_is_maker == last.buyer_is_maker
        and trade.trade_id == last.last_trade_id + 1
        and trade.time_ms - last.time_ms < AGGREGATE_WINDOW_MS
    )
