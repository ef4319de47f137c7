"""Follow another venue's public market streams (Binance's own, or another userstream server) as
a `MarketSource`: sans-I/O. The adapter (`server/market_feed.py`) owns the sockets and hands
this module each frame and each REST depth snapshot as they come; they are decoded at once (a
broken frame is the adapter's to act on) and folded in order at the next `advance(now_ms)`,
so the book and the updates change only on the server's clock, as the seam requires.

Decoding (market-data spec §2.2): raw frames and combined `{"stream","data"}` envelopes, arrays
(`!markPrice@arr`); `aggTrade`, `trade`, `bookTicker`, `depthUpdate`, `markPriceUpdate` are
decoded into typed structs (unknown fields ignored, as a client must: Binance adds fields);
other events and control replies (`{"result":null,"id":1}`) are skipped.

The book follows the documented futures procedure (spec §2.3): diffs are buffered until a
snapshot, those with `u < lastUpdateId` dropped, the first applied must have
`U <= lastUpdateId <= u`, then each `pu` must equal the previous `u`; a gap (or a lost
connection) asks for a new snapshot (`needs_snapshot`) while the last good book stays served.
Every change the consumers see is a `BookUpdate`, the snapshot itself included (as the diff
from the book they hold), so their own depth streams never skip. Update ids are the
upstream's, shifted up when a new upstream starts below the ids already served (a restarted
server), so they only ever grow.

Without a depth stream (`depth=False`) the book is the L1 of `@bookTicker`, its `u` as ids.
Trades: `@aggTrade` (default; documented) or `@trade` (undocumented, raw), the other kind is
ignored so a mixed upstream never counts a trade twice; an aggregate becomes its fills
(`replay.aggregate_fills`, sizes of single fills invented). Trade ids only grow: a trade seen
again after a reconnect is dropped. Mark, index and the funding estimate come from
`markPriceUpdate`; when its next funding time moves on, a `FundingSettlement` is emitted at
the old instant with the last estimate and mark seen before it (the venue's settled rate is
that estimate to within its last few seconds' drift).

Times: an update carries the upstream's event time, never later than the `now` of the
advance that folds it and never earlier than the previous update of its stream (book, trades,
mark), so a skewed upstream clock cannot send time backwards. Streams interleave in arrival
order: an aggregate's trades keep their match time though `@aggTrade` sends them up to 100 ms
after the book changes that followed them, as on Binance.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal, TypeAlias

import msgspec

from userstream.exceptions import ConfigurationError, TransportError
from userstream.market.book import OrderBook
from userstream.market.replay import aggregate_fills
from userstream.market.types import (
    BookUpdate,
    FundingSettlement,
    Level,
    MarketUpdate,
    MarkUpdate,
    Trade,
)
from userstream.protocol.exchange_info import LotSize, Symbol

__all__ = [
    "AggTradeFrame",
    "BookTickerFrame",
    "DepthFrame",
    "DepthSnapshotBody",
    "Frame",
    "MarkPriceFrame",
    "TradeFrame",
    "UpstreamMarket",
    "decode_frame",
    "decode_snapshot",
]

_ZERO: Final = Decimal(0)
_INTEREST_RATE: Final = Decimal("0.0001")  # spec §4: the per-8 h figure premiumIndex shows
# Diffs buffered while waiting for a snapshot; past this the oldest go (a snapshot is then
# older than every kept diff and is simply fetched again).
_BUFFER_LIMIT: Final = 10_000

PriceQty: TypeAlias = tuple[Decimal, Decimal]


class AggTradeFrame(msgspec.Struct, frozen=True):
    """`<s>@aggTrade` (spec §2.2)."""

    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    agg_id: int = msgspec.field(name="a")
    price: Decimal = msgspec.field(name="p")
    qty: Decimal = msgspec.field(name="q")
    first_trade_id: int = msgspec.field(name="f")
    last_trade_id: int = msgspec.field(name="l")
    trade_time: int = msgspec.field(name="T")
    buyer_is_maker: bool = msgspec.field(name="m")


class TradeFrame(msgspec.Struct, frozen=True):
    """`<s>@trade` (undocumented; fields from a live capture, spec §2.2 [CAP-08])."""

    event_time: int = msgspec.field(name="E")
    trade_time: int = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    trade_id: int = msgspec.field(name="t")
    price: Decimal = msgspec.field(name="p")
    qty: Decimal = msgspec.field(name="q")
    buyer_is_maker: bool = msgspec.field(name="m")
    # `MARKET` for book trades; insurance-fund, ADL and `NA` prints are off-book (spec §2.2).
    kind: str = msgspec.field(default="MARKET", name="X")


class BookTickerFrame(msgspec.Struct, frozen=True):
    """`<s>@bookTicker` (spec §2.2)."""

    update_id: int = msgspec.field(name="u")
    symbol: str = msgspec.field(name="s")
    bid_price: Decimal = msgspec.field(name="b")
    bid_qty: Decimal = msgspec.field(name="B")
    ask_price: Decimal = msgspec.field(name="a")
    ask_qty: Decimal = msgspec.field(name="A")
    transaction_time: int = msgspec.field(default=0, name="T")
    event_time: int = msgspec.field(default=0, name="E")


class DepthFrame(msgspec.Struct, frozen=True):
    """`<s>@depth[@100ms|@500ms]` diff (spec §2.2, §2.3)."""

    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    first_update_id: int = msgspec.field(name="U")
    final_update_id: int = msgspec.field(name="u")
    previous_final_update_id: int = msgspec.field(name="pu")
    bids: list[PriceQty] = msgspec.field(name="b")
    asks: list[PriceQty] = msgspec.field(name="a")
    transaction_time: int = msgspec.field(default=0, name="T")


class MarkPriceFrame(msgspec.Struct, frozen=True):
    """`<s>@markPrice[@1s]` and `!markPrice@arr` items (spec §2.2); `ap` is not used and a
    2026-02 capture lacks it."""

    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    mark_price: Decimal = msgspec.field(name="p")
    index_price: Decimal = msgspec.field(name="i")
    funding_rate: Decimal = msgspec.field(name="r")
    next_funding_time: int = msgspec.field(name="T")
    estimated_settle_price: Decimal | None = msgspec.field(default=None, name="P")


class DepthSnapshotBody(msgspec.Struct, frozen=True):
    """`GET /fapi/v1/depth` (spec §3.1)."""

    last_update_id: int = msgspec.field(name="lastUpdateId")
    bids: list[PriceQty]
    asks: list[PriceQty]


Frame: TypeAlias = AggTradeFrame | TradeFrame | BookTickerFrame | DepthFrame | MarkPriceFrame


class _Kind(msgspec.Struct):
    e: str | None = None


class _Envelope(msgspec.Struct):
    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw()
    e: str | None = None


_OUTER: Final = msgspec.json.Decoder(_Envelope | list[msgspec.Raw])
_KIND: Final = msgspec.json.Decoder(_Kind | list[msgspec.Raw])
_DECODERS: Final[dict[str, msgspec.json.Decoder[Frame]]] = {
    "aggTrade": msgspec.json.Decoder(AggTradeFrame),
    "trade": msgspec.json.Decoder(TradeFrame),
    "bookTicker": msgspec.json.Decoder(BookTickerFrame),
    "depthUpdate": msgspec.json.Decoder(DepthFrame),
    "markPriceUpdate": msgspec.json.Decoder(MarkPriceFrame),
}
_SNAPSHOT: Final = msgspec.json.Decoder(DepthSnapshotBody)


def _payloads(raw: bytes | msgspec.Raw) -> list[Frame]:
    try:
        kind = _KIND.decode(raw)
        if isinstance(kind, list):
            return [frame for item in kind for frame in _payloads(item)]
        decoder = _DECODERS.get(kind.e or "")
        return [decoder.decode(raw)] if decoder is not None else []
    except msgspec.DecodeError as exc:
        raise TransportError(f"upstream sent an unreadable market payload: {exc}") from None


def decode_frame(frame: bytes | str) -> list[Frame]:
    """The market payloads in one WebSocket message, raw or in a combined envelope.

    Raises:
        TransportError: the message is not JSON, or a known event lacks a field or has one of
            the wrong type.
    """
    data = frame.encode() if isinstance(frame, str) else frame
    try:
        outer = _OUTER.decode(data)
    except msgspec.DecodeError as exc:
        raise TransportError(f"upstream sent an unreadable message: {exc}") from None
    if isinstance(outer, _Envelope) and outer.stream is not None and outer.data:
        return _payloads(outer.data)
    return _payloads(data)


def decode_snapshot(body: bytes) -> DepthSnapshotBody:
    """A `GET /fapi/v1/depth` body. Raises `TransportError` when it is not one."""
    try:
        return _SNAPSHOT.decode(body)
    except msgspec.DecodeError as exc:
        raise TransportError(f"upstream depth snapshot is unreadable: {exc}") from None


@dataclass(frozen=True, slots=True)
class _SnapshotIn:
    symbol: str
    body: DepthSnapshotBody


@dataclass(frozen=True, slots=True)
class _Lost:
    """The book's connection dropped (in the inbox, in order)."""


_LOST: Final = _Lost()


@dataclass
class _Symbol:
    name: str
    step: Decimal
    book: OrderBook
    # §2.3: "unsynced" (buffering, wants a snapshot), "snapshot" (book at a snapshot, waiting
    # for the diff that spans it), "live" (each diff's pu is the previous u).
    depth_state: Literal["unsynced", "snapshot", "live"] = "unsynced"
    buffer: list[DepthFrame] = field(default_factory=list)
    last_u: int = 0  # the upstream's id the book is at
    offset: int = 0  # served id = upstream id + offset
    last_trade_id: int = -1
    mark: MarkUpdate | None = None
    last_price: Decimal | None = None


class UpstreamMarket:
    """A `MarketSource` fed with another venue's market frames (module docstring).

    Args:
        symbols: The exchangeInfo entries of the symbols to follow (their lot step sizes the
            fills of an aggregate trade).
        trades: Which trade stream is followed, `"aggTrade"` or `"trade"`.
        depth: Whether the book comes from the diff stream (with snapshots) or, if False,
            from `@bookTicker` as L1 only.
    """

    def __init__(
        self,
        symbols: Sequence[Symbol],
        *,
        trades: Literal["aggTrade", "trade"] = "aggTrade",
        depth: bool = True,
    ) -> None:
        if not symbols:
            raise ConfigurationError("an upstream market needs at least one symbol")
        self._symbols: dict[str, _Symbol] = {}
        for info in symbols:
            lot = info.filter(LotSize)
            assert lot is not None  # required by the symbol file (protocol.exchange_info)
            self._symbols[info.symbol] = _Symbol(
                info.symbol, Decimal(lot.step_size), OrderBook(info.symbol)
            )
        self._trades = trades
        self._depth = depth
        self._inbox: list[Frame | _SnapshotIn | _Lost] = []
        self._snapshots_due: set[str] = set()
        self._pending: list[MarketUpdate] = []
        self._last_time: dict[str, int] = {}  # per stream: book, trade, mark

    # --- what the adapter subscribes to --------------------------------------------------

    def streams(self) -> dict[str, list[str]]:
        """Stream names per route, the 2026 split (spec §1): `public` the book and the raw
        `@trade` (it lives there: it flowed on unrouted sockets, which are served as
        `/public`, binance-public-data#472), `market` `@aggTrade` and the mark."""
        book = "@depth@100ms" if self._depth else "@bookTicker"
        names = [name.lower() for name in self._symbols]
        trades = [f"{name}@{self._trades}" for name in names]
        raw = self._trades == "trade"
        return {
            "public": [f"{name}{book}" for name in names] + (trades if raw else []),
            "market": ([] if raw else trades) + [f"{name}@markPrice@1s" for name in names],
        }

    def needs_snapshot(self) -> list[str]:
        """Symbols whose book waits for a `GET /fapi/v1/depth` (give it to `receive_snapshot`),
        as of the last advance, less those with a snapshot received since."""
        if not self._depth:
            return []
        return [
            s.name
            for s in self._symbols.values()
            if s.depth_state == "unsynced" and s.name not in self._snapshots_due
        ]

    # --- input -----------------------------------------------------------------------------

    def receive(self, frame: bytes | str) -> None:
        """One WebSocket message from the upstream, folded at the next `advance`.

        Raises:
            TransportError: the message cannot be decoded (the adapter reconnects).
        """
        self._inbox.extend(decode_frame(frame))

    def receive_snapshot(self, symbol: str, body: bytes) -> None:
        """The answer to `GET /fapi/v1/depth?symbol=<symbol>&limit=1000`, folded at the next
        `advance`.

        Raises:
            TransportError: the body is not a depth snapshot.
        """
        self._inbox.append(_SnapshotIn(symbol, decode_snapshot(body)))
        self._snapshots_due.add(symbol)

    def connection_lost(self) -> None:
        """The book's connection dropped: diffs were missed, every book needs a snapshot."""
        self._inbox.append(_LOST)

    # --- MarketSource ----------------------------------------------------------------------

    @property
    def symbols(self) -> Sequence[str]:
        return list(self._symbols)

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        inbox, self._inbox = self._inbox, []
        for item in inbox:
            if isinstance(item, _Lost):
                for state in self._symbols.values():
                    state.depth_state = "unsynced"
                    state.buffer = []
            elif isinstance(item, _SnapshotIn):
                self._snapshots_due.discard(item.symbol)
                self._snapshot(self._symbols[item.symbol], item.body, now_ms)
            else:
                self._payload(item, now_ms)
        updates, self._pending = self._pending, []
        return updates

    def book(self, symbol: str) -> OrderBook:
        return self._symbols[symbol].book

    def mark(self, symbol: str) -> MarkUpdate:
        """The last mark the upstream sent; before one arrives, the last trade price (or 0)
        as mark and index, with the default interest rate as the estimate."""
        state = self._symbols[symbol]
        if state.mark is not None:
            return state.mark
        price = state.last_price if state.last_price is not None else _ZERO
        return MarkUpdate(symbol, price, price, price, _INTEREST_RATE, _INTEREST_RATE, 0, 0)

    # --- folding ---------------------------------------------------------------------------

    def _payload(self, payload: Frame, now_ms: int) -> None:
        state = self._symbols.get(payload.symbol)
        if state is None:
            return
        if isinstance(payload, DepthFrame):
            if self._depth:
                self._diff(state, payload, now_ms)
        elif isinstance(payload, AggTradeFrame | TradeFrame):
            self._trade(state, payload, now_ms)
        elif isinstance(payload, BookTickerFrame):
            if not self._depth:
                self._top(state, payload, now_ms)
        else:
            self._mark(state, payload, now_ms)

    def _snapshot(self, state: _Symbol, snapshot: DepthSnapshotBody, now_ms: int) -> None:
        if state.depth_state != "unsynced":
            return
        last = snapshot.last_update_id
        state.buffer = [d for d in state.buffer if d.final_update_id >= last]
        if state.buffer and not _spans(state.buffer[0], last):
            return  # the snapshot is older than every buffered diff: fetch another
        if last + state.offset <= state.book.last_update_id:
            state.offset = state.book.last_update_id - last + 1
        self._replace(state, snapshot, now_ms)
        state.last_u = last
        state.depth_state = "snapshot"
        buffered, state.buffer = state.buffer, []
        for diff in buffered:
            self._diff(state, diff, now_ms)

    def _time(self, stream: str, upstream_ms: int, now_ms: int) -> int:
        time_ms = max(self._last_time.get(stream, 0), min(upstream_ms, now_ms))
        self._last_time[stream] = time_ms
        return time_ms

    def _diff(self, state: _Symbol, diff: DepthFrame, now_ms: int) -> None:
        if state.depth_state == "unsynced":
            state.buffer.append(diff)
            del state.buffer[:-_BUFFER_LIMIT]
            return
        if diff.final_update_id < state.last_u:
            return  # step 3: older than the snapshot
        if state.depth_state == "snapshot":
            ok = _spans(diff, state.last_u)
        else:
            ok = diff.previous_final_update_id == state.last_u
        if not ok:
            state.depth_state = "unsynced"  # step 5: a gap; resync from a new snapshot
            state.buffer = [diff]
            return
        state.depth_state = "live"
        book = state.book
        first = max(diff.first_update_id + state.offset, book.last_update_id + 1)
        final = max(diff.final_update_id + state.offset, first)
        update = BookUpdate(
            state.name,
            first,
            final,
            tuple(Level(p, q) for p, q in diff.bids),
            tuple(Level(p, q) for p, q in diff.asks),
            self._time("book", diff.transaction_time or diff.event_time, now_ms),
        )
        book.apply(update)
        state.last_u = diff.final_update_id
        self._pending.append(update)

    def _replace(self, state: _Symbol, snapshot: DepthSnapshotBody, now_ms: int) -> None:
        """Move the consumers' book to the snapshot with one diff (levels gone are 0)."""
        book = state.book
        held = book.snapshot(sys.maxsize)
        changes: list[tuple[Level, ...]] = []
        for old, new in ((held.bids, snapshot.bids), (held.asks, snapshot.asks)):
            target = {p: q for p, q in new if q > 0}
            before = {lv.price: lv.qty for lv in old}
            gone = [Level(price, _ZERO) for price in before if price not in target]
            moved = [Level(p, q) for p, q in target.items() if before.get(p) != q]
            changes.append(tuple(gone + moved))
        final = max(snapshot.last_update_id + state.offset, book.last_update_id + 1)
        update = BookUpdate(
            state.name,
            book.last_update_id + 1,
            final,
            changes[0],
            changes[1],
            self._time("book", now_ms, now_ms),
        )
        book.apply(update)
        self._pending.append(update)

    def _top(self, state: _Symbol, top: BookTickerFrame, now_ms: int) -> None:
        book = state.book
        final = top.update_id + state.offset
        if final <= book.last_update_id:
            return  # a quote older than the book (after a reconnect)
        bids: list[Level] = [Level(top.bid_price, top.bid_qty)]
        asks: list[Level] = [Level(top.ask_price, top.ask_qty)]
        old_bid, old_ask = book.best_bid(), book.best_ask()
        if old_bid is not None and old_bid.price != top.bid_price:
            bids.insert(0, Level(old_bid.price, _ZERO))
        if old_ask is not None and old_ask.price != top.ask_price:
            asks.insert(0, Level(old_ask.price, _ZERO))
        update = BookUpdate(
            state.name,
            book.last_update_id + 1,
            final,
            tuple(bids),
            tuple(asks),
            self._time("book", top.transaction_time or top.event_time, now_ms),
        )
        book.apply(update)
        self._pending.append(update)

    def _trade(self, state: _Symbol, frame: AggTradeFrame | TradeFrame, now_ms: int) -> None:
        time_ms = self._time("trade", frame.trade_time, now_ms)
        trades: list[Trade]
        if isinstance(frame, AggTradeFrame):
            if self._trades != "aggTrade":
                return
            trades = aggregate_fills(
                state.name,
                frame.agg_id,
                frame.first_trade_id,
                frame.last_trade_id,
                frame.price,
                frame.qty,
                frame.buyer_is_maker,
                time_ms,
                state.step,
            )
        else:
            if self._trades != "trade" or frame.kind != "MARKET":
                return
            trades = [
                Trade(
                    state.name,
                    frame.trade_id,
                    frame.price,
                    frame.qty,
                    frame.buyer_is_maker,
                    time_ms,
                )
            ]
        fresh = [t for t in trades if t.trade_id > state.last_trade_id]
        if fresh:
            state.last_trade_id = fresh[-1].trade_id
            state.last_price = fresh[-1].price
            self._pending.extend(fresh)

    def _mark(self, state: _Symbol, frame: MarkPriceFrame, now_ms: int) -> None:
        time_ms = self._time("mark", frame.event_time, now_ms)
        previous = state.mark
        if (
            previous is not None
            and previous.next_funding_time_ms > 0
            and frame.next_funding_time > previous.next_funding_time_ms
        ):
            self._pending.append(
                FundingSettlement(
                    state.name,
                    min(previous.next_funding_time_ms, time_ms),
                    previous.funding_rate,
                    previous.mark_price,
                )
            )
        mark = MarkUpdate(
            state.name,
            frame.mark_price,
            frame.index_price,
            frame.estimated_settle_price
            if frame.estimated_settle_price is not None
            else frame.index_price,
            frame.funding_rate,
            _INTEREST_RATE,
            frame.next_funding_time,
            time_ms,
        )
        state.mark = mark
        self._pending.append(mark)


def _spans(diff: DepthFrame, last_update_id: int) -> bool:
    """§2.3 step 4: the first diff applied after a snapshot must contain its id (ccxt also
    accepts a diff that starts right after it: `pu == lastUpdateId`)."""
    return (
        diff.first_update_id <= last_update_id <= diff.final_update_id
        or diff.previous_final_update_id == last_update_id
    )
