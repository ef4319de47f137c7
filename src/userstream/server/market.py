"""`MarketService`: the market source advanced on the server's clock, its streams and listeners.

One task (a recurring timer on the server's `Scheduler`) advances the source every `TICK_MS`
of server time, virtual or real, folds the updates into per-symbol feeds, calls the listeners
(the venue's engine) and publishes the frames that fall due at that instant (spec
`binance-usdm-market-data.md` §2.1 speeds). On a real clock, a source that can tell when its
next update is due (`TimedSource`) is also advanced at that instant, between ticks, and an
upstream as each of its messages arrives, so the real-time streams go out when the update
happens, as Binance pushes them, instead of up to `TICK_MS` later; the streams with a stated
speed still go out on their grid. (On a virtual clock time jumps: the grid keeps a jump's
cost independent of the update instants it crosses.)

- `@trade` per trade; `@bookTicker` / `!bookTicker` when the top of the book changed
  (real-time);
- `@depth[@100ms|@250ms|@500ms]` diffs (and `@rpiDepth@500ms`, the same frames: no source
  quotes RPI orders) and `@depth<N>` partial books at their speed, from one
  batch per (symbol, speed) so each speed's `pu` chain is gap-free and the REST snapshot's
  `lastUpdateId` always falls inside a coming frame's `[U, u]` or equals its `pu` (§2.3);
- `@aggTrade` as each aggregate becomes final in `MarketState` (a trade that does not merge
  into it, or 100 ms after its first trade: one price and taker side inside 100 ms merge);
- `@kline_<i>` / `@continuousKline_<i>` every 250 ms (a bar that closed gets one `x: true`
  frame first), `@ticker` / `@miniTicker` every 2 s, `!ticker@arr` / `!miniTicker@arr` each
  second with the symbols that traded; `<asset>@assetIndex` / `!assetIndex@arr` each second
  for the assets the venue takes as Multi-Assets collateral;
- `@markPrice@1s` / `!markPrice@arr@1s` each second, `@markPrice` / `!markPrice@arr` every
  3 s, `E` on whole seconds; `@forceOrder` / `!forceOrder@arr` each second: the latest
  liquidation per symbol in that second.

Every payload is encoded once and the tick's bytes fanned out by `MarketHub.flush`, one call
per connection. The source's first advance (the first timer after `start`) takes the same
path, so every depth chain starts at the book's id before it. The REST handlers and
the venue read the same state at the same `now`: `sync()` first runs every tick due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Final, Protocol, runtime_checkable

import msgspec

from userstream.clock import Clock
from userstream.exceptions import ConfigurationError
from userstream.market.book import OrderBook
from userstream.market.replay import open_replay
from userstream.market.state import AggTrade, Kline, KlineFamily, MarketState, Ticker24h
from userstream.market.synthetic import SyntheticMarket
from userstream.market.types import (
    BookUpdate,
    FundingSettlement,
    MarketSource,
    MarketUpdate,
    MarkUpdate,
    Side,
    Trade,
)
from userstream.protocol.exchange_info import SymbolTable
from userstream.protocol.market import (
    DEPTH_PARTIAL_LEVELS,
    DEPTH_SPEEDS_MS,
    PRICE_PLACES_MARK,
    RPI_DEPTH_SPEED_MS,
    AggTradeEvent,
    AssetIndexEvent,
    BookTickerEvent,
    ContinuousKlineEvent,
    DepthUpdateEvent,
    ForceOrder,
    ForceOrderEvent,
    KlineEvent,
    MarketStream,
    MarkPriceEvent,
    MiniTickerEvent,
    PriceLevel,
    StreamKind,
    TickerEvent,
    TradeEvent,
    fmt,
)
from userstream.protocol.market import Kline as WireKline
from userstream.server.market_feed import FollowedUpstream, open_upstream
from userstream.server.market_hub import MarketHub
from userstream.server.scheduler import Scheduler
from userstream.venue.collateral import COLLATERAL_RATES, index_price

__all__ = [
    "TICK_MS",
    "MarketListener",
    "MarketService",
    "SymbolFeed",
    "TimedSource",
    "open_market_source",
]

log = logging.getLogger(__name__)

TICK_MS: Final = 50
"""The service's step: the greatest common divisor of every stream period (100, 250, 500 ms,
1 s, 3 s), so each frame goes out at its exact instant."""


MarketListener = Callable[[Sequence[MarketUpdate], int], None]
"""Called after each advance with the updates (oldest first) and the advance's `now_ms`."""

_encode = msgspec.json.Encoder().encode
_ZERO = Decimal(0)


def open_market_source(spec: str, symbols: SymbolTable, now_ms: int) -> MarketSource:
    """The market source a `serve --market SPEC` names, starting at `now_ms`.

    `synthetic[:SEED]` (seed 0 by default): the seeded synthetic market for every trading
    symbol of `symbols` (market-data spec §7).
    `replay:DIR[?speed=N]`: Binance's historical files under DIR (`market.replay`, spec §5).
    `upstream:URL`: another venue's market streams (`server.market_feed`); the source is an
    async context manager the server enters to run its connections.

    Raises:
        ConfigurationError: an unknown kind of source or a malformed seed.
    """
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        if arg and not arg.isdigit():
            raise ConfigurationError(f"--market {spec}: the seed must be a whole number")
        return SyntheticMarket(symbols.symbols, seed=int(arg or 0), start_ms=now_ms)
    if kind == "replay":
        return open_replay(arg, symbols.symbols, now_ms)
    if kind == "upstream":
        return open_upstream(arg, symbols.symbols)
    raise ConfigurationError(
        f"--market {spec}: expected synthetic[:SEED], replay:DIR or upstream:URL"
    )


@runtime_checkable
class TimedSource(Protocol):
    """A `MarketSource` that knows when its next update is due."""

    def next_update_ms(self) -> int | None:
        """The server time of the next update the source will return, or None if unknown."""
        ...


@runtime_checkable
class _OpenInterestSource(Protocol):
    def open_interest(self, symbol: str) -> Decimal: ...


class _DepthBatch:
    """The book changes since the last frame at one speed: absolute size per price."""

    __slots__ = ("asks", "bids", "first_id", "last_id", "prev_u", "time_ms")

    def __init__(self, prev_u: int) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.first_id = 0
        self.last_id = 0
        self.prev_u = prev_u
        self.time_ms = 0

    def add(self, update: BookUpdate) -> None:
        if not self.first_id:
            self.first_id = update.first_update_id
        self.last_id = update.final_update_id
        self.time_ms = update.time_ms
        for level in update.bids:
            self.bids[level.price] = level.qty
        for level in update.asks:
            self.asks[level.price] = level.qty

    def close(self) -> None:
        self.prev_u = self.last_id
        self.first_id = 0
        self.bids.clear()
        self.asks.clear()


class SymbolFeed:
    """One symbol's streams-side state: its precision, depth batches and what was last sent."""

    __slots__ = (
        "batches",
        "book_time_ms",
        "force_order",
        "kline_sent",
        "last_top",
        "price_places",
        "qty_places",
        "symbol",
        "ticker_sent",
        "topics",
    )

    def __init__(self, symbol: str, price_places: int, qty_places: int, book: OrderBook) -> None:
        self.symbol = symbol
        self.price_places = price_places
        self.qty_places = qty_places
        self.batches = {speed: _DepthBatch(book.last_update_id) for speed in DEPTH_SPEEDS_MS}
        self.book_time_ms = 0
        self.last_top: tuple[object, object] = (None, None)
        self.force_order: ForceOrderEvent | None = None
        self.kline_sent: dict[MarketStream, int] = {}  # topic -> open time of its last bar
        self.ticker_sent = -2  # the last trade id an `@arr` ticker frame carried
        self.topics = _Topics(symbol)

    def price(self, value: Decimal) -> str:
        return fmt(value, self.price_places)

    def qty(self, value: Decimal) -> str:
        return fmt(value, self.qty_places)

    def quote(self, value: Decimal) -> str:
        """A quote amount (price × qty) at the places the product has (`"1591436.27140"`)."""
        return fmt(value, self.price_places + self.qty_places)

    def levels(self, side: dict[Decimal, Decimal], descending: bool) -> list[PriceLevel]:
        return [
            (self.price(price), self.qty(side[price])) for price in sorted(side, reverse=descending)
        ]

    def wire_kline(self, bar: Kline, interval: str, family: KlineFamily) -> WireKline:
        """The `k` object / REST row of a bar; mark, index and premium bars carry 8 places
        and zero volumes (spec §3.1)."""
        if family is KlineFamily.TRADE:
            price, qty, quote = self.price, self.qty, self.quote
        else:

            def price(value: Decimal) -> str:
                return fmt(value, PRICE_PLACES_MARK)

            qty = quote = price
        return WireKline(
            t=bar.open_time_ms,
            T=bar.close_time_ms,
            s=self.symbol,
            i=interval,
            f=bar.first_trade_id,
            L=bar.last_trade_id,
            o=price(bar.open),
            c=price(bar.close),
            h=price(bar.high),
            l=price(bar.low),
            v=qty(bar.volume) if family is KlineFamily.TRADE else "0",
            n=bar.count,
            x=bar.closed,
            q=quote(bar.quote_volume) if family is KlineFamily.TRADE else "0",
            V=qty(bar.taker_buy_volume) if family is KlineFamily.TRADE else "0",
            Q=quote(bar.taker_buy_quote_volume) if family is KlineFamily.TRADE else "0",
            B="0",
        )

    def ticker_event(self, ticker: Ticker24h, now_ms: int) -> TickerEvent:
        return TickerEvent(
            e="24hrTicker",
            E=now_ms,
            s=self.symbol,
            p=self.price(ticker.price_change),
            P=fmt(ticker.price_change_percent, 3),
            w=self.price(ticker.weighted_avg_price),
            c=self.price(ticker.last),
            Q=self.qty(ticker.last_qty),
            o=self.price(ticker.open),
            h=self.price(ticker.high),
            l=self.price(ticker.low),
            v=self.qty(ticker.volume),
            q=self.quote(ticker.quote_volume),
            O=ticker.open_time_ms,
            C=ticker.close_time_ms,
            F=ticker.first_trade_id,
            L=ticker.last_trade_id,
            n=ticker.count,
        )

    def mini_ticker_event(self, ticker: Ticker24h, now_ms: int) -> MiniTickerEvent:
        return MiniTickerEvent(
            e="24hrMiniTicker",
            E=now_ms,
            s=self.symbol,
            c=self.price(ticker.last),
            o=self.price(ticker.open),
            h=self.price(ticker.high),
            l=self.price(ticker.low),
            v=self.qty(ticker.volume),
            q=self.quote(ticker.quote_volume),
        )


class _Topics:
    """A symbol's topics, built once (the hot path only looks them up)."""

    __slots__ = (
        "agg_trade",
        "book_ticker",
        "depth",
        "force_order",
        "mark",
        "partial",
        "rpi_depth",
        "trade",
    )

    def __init__(self, symbol: str) -> None:
        self.rpi_depth = MarketStream(StreamKind.RPI_DEPTH, symbol, RPI_DEPTH_SPEED_MS)
        self.trade = MarketStream(StreamKind.TRADE, symbol)
        self.agg_trade = MarketStream(StreamKind.AGG_TRADE, symbol, 100)
        self.book_ticker = MarketStream(StreamKind.BOOK_TICKER, symbol)
        self.force_order = MarketStream(StreamKind.FORCE_ORDER, symbol, 1000)
        self.mark = {
            speed: MarketStream(StreamKind.MARK_PRICE, symbol, speed) for speed in (1000, 3000)
        }
        self.depth = {
            speed: MarketStream(StreamKind.DEPTH, symbol, speed) for speed in DEPTH_SPEEDS_MS
        }
        self.partial = {
            speed: [
                MarketStream(StreamKind.DEPTH_PARTIAL, symbol, speed, levels=n)
                for n in DEPTH_PARTIAL_LEVELS
            ]
            for speed in DEPTH_SPEEDS_MS
        }


_ALL_BOOK_TICKER: Final = MarketStream(StreamKind.BOOK_TICKER_ALL)
_ALL_FORCE_ORDER: Final = MarketStream(StreamKind.FORCE_ORDER_ALL, speed_ms=1000)
_ALL_MARK: Final = {
    speed: MarketStream(StreamKind.MARK_PRICE_ALL, speed_ms=speed) for speed in (1000, 3000)
}


_ALL_ASSET_INDEX: Final = MarketStream(StreamKind.ASSET_INDEX_ALL, speed_ms=1000)
_ALL_TICKER: Final = MarketStream(StreamKind.TICKER_ALL, speed_ms=1000)
_ALL_MINI_TICKER: Final = MarketStream(StreamKind.MINI_TICKER_ALL, speed_ms=1000)
_KLINE_MS: Final = 250
_TICKER_MS: Final = 2000


class MarketService:
    """Owns the market source and serves it: streams through `hub`, `state` for REST, and
    the listeners.

    Call `start()` once the server's scheduler runs; `sync()` before reading state so it is
    the state at `clock.now_ms()` (to the last `TICK_MS`, or to now for a `TimedSource` on a
    real clock).
    """

    def __init__(
        self,
        source: MarketSource,
        symbols: SymbolTable,
        clock: Clock,
        scheduler: Scheduler,
    ) -> None:
        self.source = source
        self.state = MarketState(source.symbols)
        self.hub = MarketHub()
        self._clock = clock
        self._scheduler = scheduler
        self._listeners: list[MarketListener] = []
        listed = {s.symbol: s for s in symbols.symbols}
        self.feeds: dict[str, SymbolFeed] = {}
        self.pairs: dict[tuple[str, str], str] = {}  # (pair, contract type) -> symbol
        for name in source.symbols:
            info = listed.get(name)
            if info is None:
                raise ConfigurationError(f"market source prices {name}, not in exchangeInfo")
            self.feeds[name] = SymbolFeed(
                name, info.price_precision, info.quantity_precision, source.book(name)
            )
            self.pairs[info.pair, info.contract_type] = name
        self._running = False
        self._next_tick = 0
        self._stepped_ms = 0  # the time of the last advance
        self._timed = source if isinstance(source, TimedSource) and not clock.is_virtual else None
        self._held_aggs: list[AggTrade] = []  # final between ticks: `@aggTrade` has a speed
        self._arrival_due = False
        if isinstance(source, FollowedUpstream) and not clock.is_virtual:
            source.on_message = self._arrived
        self._open_interest: dict[str, Decimal] = {}
        self.updates = 0  # market updates folded (/metrics, bench)

    # lifecycle and time

    def start(self) -> None:
        """Advance the source now, then at every `TICK_MS` boundary of the server's clock.

        The first advance (what the source did up to now: a replay's first record) is a
        timer like every tick, not run here: listeners added after `start()` (the server
        starts the venue after the market) and connections subscribed before it runs get
        it, and it goes through the same path as every tick, so the depth batches start
        from the book's id before it (their first `pu`)."""
        self._running = True
        self._next_tick = self._clock.now_ms()
        self._scheduler.call_at(self._next_tick, self._on_timer)

    def stop(self) -> None:
        self._running = False

    def _on_timer(self, due_ms: int) -> None:
        if not self._running:
            return
        self._run_until(due_ms)
        due = self._next_tick
        if self._timed is not None:
            upcoming = self._timed.next_update_ms()
            if upcoming is not None and self._stepped_ms < upcoming < due:
                due = upcoming
        self._scheduler.call_at(due, self._on_timer)

    def _arrived(self) -> None:
        """An upstream message was received: fold it now (once per scheduler run)."""
        if not self._arrival_due:
            self._arrival_due = True
            self._scheduler.call_at(self._clock.now_ms(), self._on_arrival)

    def _on_arrival(self, due_ms: int) -> None:
        self._arrival_due = False
        if not self._running:
            return
        now = max(due_ms, self._stepped_ms)
        if self._next_tick <= now:
            self._run_until(now)  # the tick folds it
        else:
            self._tick(now, on_grid=False)

    def sync(self) -> int:
        """Run every tick due by now; returns now (the time the state is read at)."""
        now = self._clock.now_ms()
        if self._running:
            self._run_until(now)
        return now

    def _run_until(self, now_ms: int) -> None:
        while self._next_tick <= now_ms:
            tick = self._next_tick
            self._next_tick = tick - tick % TICK_MS + TICK_MS
            self._tick(tick, on_grid=True)
        if self._timed is not None and self._stepped_ms < now_ms:
            upcoming = self._timed.next_update_ms()
            if upcoming is not None and upcoming <= now_ms:
                self._tick(now_ms, on_grid=False)

    def open_interest(self, symbol: str) -> Decimal:
        """Open interest in contracts: the venue's when it reported one, else the source's."""
        reported = self._open_interest.get(symbol)
        if reported is not None:
            return reported
        if isinstance(self.source, _OpenInterestSource):
            return self.source.open_interest(symbol)
        return _ZERO

    def set_open_interest(self, symbol: str, contracts: Decimal) -> None:
        """The venue's open interest for `symbol` (`GET /fapi/v1/openInterest`)."""
        self._open_interest[symbol] = contracts

    def add_listener(self, listener: MarketListener) -> None:
        """Call `listener(updates, now_ms)` after each advance (the venue fills on it)."""
        self._listeners.append(listener)

    def publish_force_order(
        self,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        avg_price: Decimal,
        time_ms: int,
    ) -> None:
        """A liquidation order the venue filled: published on `<s>@forceOrder` and
        `!forceOrder@arr` at the next whole second, the latest per symbol in each second
        (spec §2.1). `side` is the liquidation order's side (SELL closes a long)."""
        feed = self.feeds[symbol]
        filled = feed.qty(qty)
        order = ForceOrder(
            s=symbol,
            S=side.value,
            o="LIMIT",
            f="IOC",
            q=filled,
            p=feed.price(price),
            ap=feed.price(avg_price),
            X="FILLED",
            l=filled,
            z=filled,
            T=time_ms,
        )
        feed.force_order = ForceOrderEvent(e="forceOrder", E=time_ms, o=order)

    def mark(self, symbol: str) -> MarkUpdate:
        """The latest mark, index and funding estimate of `symbol`."""
        mark = self.state.mark(symbol)
        return mark if mark is not None else self.source.mark(symbol)

    def settle_funding(self, symbol: str | None) -> list[FundingSettlement]:
        """Settle funding now for `symbol` (None: every symbol) at its current mark and
        funding-rate estimate: the `FundingSettlement` a scheduled instant makes, into the
        funding history and to the listeners (the venue pays and charges on it). The
        scheduled settlements keep their own times."""
        now = self.sync()
        # Settled at the last tick, the time of the marks used: between ticks on a real clock
        # a scheduled instant inside the next tick may fall before `now`, and the funding
        # history must stay in time order.
        at = self.state.now_ms
        names = list(self.feeds) if symbol is None else [symbol]
        settlements: list[FundingSettlement] = []
        for name in names:
            mark = self.mark(name)
            settlements.append(FundingSettlement(name, at, mark.funding_rate, mark.mark_price))
        self.state.apply(settlements, at)
        self._notify(settlements, now)
        return settlements

    def _notify(self, updates: Sequence[MarketUpdate], now_ms: int) -> None:
        for listener in self._listeners:
            try:
                listener(updates, now_ms)
            except Exception:
                log.exception("market listener failed")

    # one tick

    def _tick(self, now_ms: int, on_grid: bool) -> None:
        """Advance to `now_ms` and publish: on the grid every stream due, between ticks only
        the real-time ones (the books that changed, the trades)."""
        self._stepped_ms = now_ms
        updates = self.source.advance(now_ms)
        self.updates += len(updates)
        hub = self.hub
        feeds = self.feeds
        booked: dict[SymbolFeed, None] = {}
        for update in updates:
            feed = feeds.get(update.symbol)
            if feed is None:
                continue
            if type(update) is BookUpdate:
                for batch in feed.batches.values():
                    batch.add(update)
                feed.book_time_ms = update.time_ms
                booked[feed] = None
            elif type(update) is Trade and hub.active(feed.topics.trade):
                hub.publish(feed.topics.trade, self._trade_payload(feed, update, now_ms))
        final = self.state.apply(updates, now_ms)
        self._notify(updates, now_ms)
        if on_grid:
            held, self._held_aggs = self._held_aggs, []
            self._emit(now_ms, held + final if held else final)
        else:
            self._held_aggs += final
            for feed in booked:
                self._emit_book_ticker(feed, now_ms)
        hub.flush()

    def _emit(self, now_ms: int, aggs: list[AggTrade]) -> None:
        hub = self.hub
        feeds = self.feeds
        for feed in feeds.values():
            self._emit_book_ticker(feed, now_ms)
        for speed in DEPTH_SPEEDS_MS:
            if now_ms % speed == 0:
                for feed in feeds.values():
                    self._emit_depth(feed, speed, now_ms)
        for agg in aggs:
            feed = feeds[agg.symbol]
            if hub.active(feed.topics.agg_trade):
                hub.publish(feed.topics.agg_trade, _encode(self._agg_event(feed, agg, now_ms)))
        if now_ms % _KLINE_MS == 0:
            self._emit_klines(now_ms)
        if now_ms % 1000 == 0:
            self._emit_marks(now_ms, 1000)
            if now_ms % 3000 == 0:
                self._emit_marks(now_ms, 3000)
            self._emit_ticker_arrays(now_ms)
            self._emit_asset_indexes(now_ms)
            for feed in feeds.values():
                event = feed.force_order
                if event is not None:
                    feed.force_order = None
                    payload = _encode(event)
                    hub.publish(feed.topics.force_order, payload)
                    hub.publish(_ALL_FORCE_ORDER, payload)
        if now_ms % _TICKER_MS == 0:
            self._emit_tickers(now_ms)

    def asset_indexes(self, now_ms: int) -> list[AssetIndexEvent]:
        """`assetIndexUpdate` of every asset the venue takes as Multi-Assets collateral and
        can price (`venue.collateral`): the index is what the venue values it at (1 for
        stablecoins, else the mark of `<asset>USDT`), the bid buffer its haircut, so `B` is
        the value per unit the venue counts; the ask buffer is the same and the
        auto-exchange buffers half of it, as in Binance's documented example (§2.2)."""

        def marks(symbol: str) -> Decimal | None:
            return self.mark(symbol).mark_price if symbol in self.feeds else None

        def places(value: Decimal) -> str:
            return fmt(value, PRICE_PLACES_MARK)

        events = []
        for asset, rate in COLLATERAL_RATES.items():
            index = index_price(asset, marks)
            if index is None:
                continue
            buffer = 1 - rate
            auto = buffer / 2
            events.append(
                AssetIndexEvent(
                    e="assetIndexUpdate",
                    E=now_ms,
                    s=f"{asset}USD",
                    i=places(index),
                    b=places(buffer),
                    a=places(buffer),
                    B=places(index * rate),
                    A=places(index * (1 + buffer)),
                    q=places(auto),
                    g=places(auto),
                    Q=places(index * (1 - auto)),
                    G=places(index * (1 + auto)),
                )
            )
        return events

    def _emit_asset_indexes(self, now_ms: int) -> None:
        """`<asset>@assetIndex` and `!assetIndex@arr` each second (spec §2.1: 1 s)."""
        hub = self.hub
        singles = hub.topics(StreamKind.ASSET_INDEX)
        everything = hub.active(_ALL_ASSET_INDEX)
        if not (singles or everything):
            return
        events = self.asset_indexes(now_ms)
        if everything and events:
            hub.publish(_ALL_ASSET_INDEX, _encode(events))
        by_symbol = {event.s: event for event in events}
        for topic in singles:
            event = by_symbol.get(topic.symbol or "")
            if event is not None:
                hub.publish(topic, _encode(event))

    def _trade_payload(self, feed: SymbolFeed, trade: Trade, now_ms: int) -> bytes:
        return _encode(
            TradeEvent(
                e="trade",
                E=now_ms,
                T=trade.time_ms,
                s=feed.symbol,
                t=trade.trade_id,
                p=feed.price(trade.price),
                q=feed.qty(trade.qty),
                X="MARKET",
                m=trade.buyer_is_maker,
            )
        )

    @staticmethod
    def _agg_event(feed: SymbolFeed, agg: AggTrade, now_ms: int) -> AggTradeEvent:
        qty = feed.qty(agg.qty)
        return AggTradeEvent(
            e="aggTrade",
            E=now_ms,
            s=feed.symbol,
            a=agg.agg_id,
            p=feed.price(agg.price),
            q=qty,
            nq=qty,
            f=agg.first_trade_id,
            l=agg.last_trade_id,
            T=agg.time_ms,
            m=agg.buyer_is_maker,
        )

    def _emit_book_ticker(self, feed: SymbolFeed, now_ms: int) -> None:
        book = self.source.book(feed.symbol)
        bid, ask = book.best_bid(), book.best_ask()
        top = (bid, ask)
        if top == feed.last_top:
            return
        feed.last_top = top
        hub = self.hub
        if not (hub.active(feed.topics.book_ticker) or hub.active(_ALL_BOOK_TICKER)):
            return
        if bid is None or ask is None:
            return
        payload = _encode(
            BookTickerEvent(
                e="bookTicker",
                u=book.last_update_id,
                s=feed.symbol,
                b=feed.price(bid.price),
                B=feed.qty(bid.qty),
                a=feed.price(ask.price),
                A=feed.qty(ask.qty),
                T=feed.book_time_ms,
                E=now_ms,
            )
        )
        hub.publish(feed.topics.book_ticker, payload)
        hub.publish(_ALL_BOOK_TICKER, payload)

    def _emit_depth(self, feed: SymbolFeed, speed: int, now_ms: int) -> None:
        batch = feed.batches[speed]
        if not batch.first_id:
            return
        hub = self.hub
        diff_topic = feed.topics.depth[speed]
        # `@rpiDepth@500ms` is the 500 ms diff with RPI liquidity added (spec §2.1); no source
        # quotes RPI orders, so its frames are the `@depth@500ms` ones, encoded once.
        rpi_topic = feed.topics.rpi_depth if speed == RPI_DEPTH_SPEED_MS else None
        rpi = rpi_topic is not None and hub.active(rpi_topic)
        if rpi or hub.active(diff_topic):
            payload = _encode(
                DepthUpdateEvent(
                    e="depthUpdate",
                    E=now_ms,
                    T=batch.time_ms,
                    s=feed.symbol,
                    U=batch.first_id,
                    u=batch.last_id,
                    pu=batch.prev_u,
                    b=feed.levels(batch.bids, descending=True),
                    a=feed.levels(batch.asks, descending=False),
                )
            )
            hub.publish(diff_topic, payload)
            if rpi_topic is not None:
                hub.publish(rpi_topic, payload)
        for topic in feed.topics.partial[speed]:
            if hub.active(topic):
                snapshot = self.source.book(feed.symbol).snapshot(topic.levels)
                hub.publish(
                    topic,
                    _encode(
                        DepthUpdateEvent(
                            e="depthUpdate",
                            E=now_ms,
                            T=batch.time_ms,
                            s=feed.symbol,
                            U=batch.first_id,
                            u=batch.last_id,
                            pu=batch.prev_u,
                            b=[(feed.price(x.price), feed.qty(x.qty)) for x in snapshot.bids],
                            a=[(feed.price(x.price), feed.qty(x.qty)) for x in snapshot.asks],
                        )
                    ),
                )
        batch.close()

    def mark_event(self, feed: SymbolFeed, now_ms: int) -> MarkPriceEvent:
        mark = self.mark(feed.symbol)
        return MarkPriceEvent(
            e="markPriceUpdate",
            E=now_ms,
            s=feed.symbol,
            p=fmt(mark.mark_price, PRICE_PLACES_MARK),
            ap=fmt(mark.mark_price, PRICE_PLACES_MARK),
            i=fmt(mark.index_price, PRICE_PLACES_MARK),
            P=fmt(mark.estimated_settle_price, PRICE_PLACES_MARK),
            r=fmt(mark.funding_rate, PRICE_PLACES_MARK),
            T=mark.next_funding_time_ms,
        )

    def _emit_marks(self, now_ms: int, speed: int) -> None:
        hub = self.hub
        all_topic = _ALL_MARK[speed]
        everything = hub.active(all_topic)
        events: list[MarkPriceEvent] = []
        for feed in self.feeds.values():
            topic = feed.topics.mark[speed]
            single = hub.active(topic)
            if not (single or everything):
                continue
            event = self.mark_event(feed, now_ms)
            if single:
                hub.publish(topic, _encode(event))
            events.append(event)
        if everything and events:
            hub.publish(all_topic, _encode(events))

    def _emit_klines(self, now_ms: int) -> None:
        """Each subscribed kline every 250 ms: the open bar, preceded once by the bar that
        just closed with `x: true` (spec §2.2)."""
        hub = self.hub
        for topic in hub.topics(StreamKind.KLINE) + hub.topics(StreamKind.CONTINUOUS_KLINE):
            symbol = topic.symbol
            if topic.kind is StreamKind.CONTINUOUS_KLINE:
                symbol = self.pairs.get((topic.symbol or "", topic.contract_type))
            feed = self.feeds.get(symbol or "")
            if feed is None:
                continue
            bars = self.state.klines(feed.symbol, topic.interval, limit=2)
            if not bars:
                continue
            sent = feed.kline_sent.get(topic)
            feed.kline_sent[topic] = bars[-1].open_time_ms
            if sent is not None and len(bars) == 2 and bars[0].open_time_ms == sent:
                hub.publish(topic, self._kline_payload(feed, topic, bars[0], now_ms))
            hub.publish(topic, self._kline_payload(feed, topic, bars[-1], now_ms))

    def _kline_payload(
        self, feed: SymbolFeed, topic: MarketStream, bar: Kline, now_ms: int
    ) -> bytes:
        k = feed.wire_kline(bar, topic.interval, KlineFamily.TRADE)
        if topic.kind is StreamKind.KLINE:
            return _encode(KlineEvent(e="kline", E=now_ms, s=feed.symbol, k=k))
        k.s = msgspec.UNSET
        return _encode(
            ContinuousKlineEvent(
                e="continuous_kline",
                E=now_ms,
                ps=topic.symbol or "",
                ct=topic.contract_type,
                k=k,
            )
        )

    def _emit_tickers(self, now_ms: int) -> None:
        hub = self.hub
        for topic in hub.topics(StreamKind.TICKER):
            feed = self.feeds.get(topic.symbol or "")
            if feed is not None:
                ticker = self.state.ticker(feed.symbol)
                hub.publish(topic, _encode(feed.ticker_event(ticker, now_ms)))
        for topic in hub.topics(StreamKind.MINI_TICKER):
            feed = self.feeds.get(topic.symbol or "")
            if feed is not None:
                ticker = self.state.ticker(feed.symbol)
                hub.publish(topic, _encode(feed.mini_ticker_event(ticker, now_ms)))

    def _emit_ticker_arrays(self, now_ms: int) -> None:
        """`!ticker@arr` and `!miniTicker@arr` each second: only the symbols that traded
        since the previous array (spec §2.1)."""
        hub = self.hub
        full, mini = hub.active(_ALL_TICKER), hub.active(_ALL_MINI_TICKER)
        if not (full or mini):
            return
        changed: list[tuple[SymbolFeed, Ticker24h]] = []
        for feed in self.feeds.values():
            last = self.state.last_trade(feed.symbol)
            last_id = last.trade_id if last is not None else -1
            if last_id != feed.ticker_sent:
                feed.ticker_sent = last_id
                changed.append((feed, self.state.ticker(feed.symbol)))
        if not changed:
            return
        if full:
            hub.publish(_ALL_TICKER, _encode([f.ticker_event(t, now_ms) for f, t in changed]))
        if mini:
            events = [f.mini_ticker_event(t, now_ms) for f, t in changed]
            hub.publish(_ALL_MINI_TICKER, _encode(events))
