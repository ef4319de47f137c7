"""Market REST under `/fapi/v1/...`: shapes, weights and parameter errors of spec
`binance-usdm-market-data.md` §3.1, all read from `MarketService` at the same `now` as the
streams (`sync()` first).

Weights are charged by `RestApi` before the handler runs (a refused request still costs its
weight, user-data spec §6.3); each weigher reads only the parameters it needs and falls back to
the endpoint's default weight when they are malformed, so the handler reports the error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Final
from urllib.parse import parse_qsl

import msgspec

from userstream.market.state import AggTrade, KlineFamily
from userstream.market.types import Trade
from userstream.protocol.market import (
    DEPTH_LIMITS,
    INTERVALS,
    PRICE_PLACES_MARK,
    RPI_DEPTH_LIMIT,
    AssetIndexBody,
    DepthSnapshotBody,
    FundingRateBody,
    OpenInterestBody,
    PremiumIndexBody,
    RestAggTrade,
    RestBookTicker,
    RestTicker24h,
    RestTrade,
    TickerPriceBody,
    depth_weight,
    fmt,
    int_param,
    invalid_depth_limit,
    invalid_interval,
    invalid_symbol,
    kline_row,
    klines_weight,
    mandatory,
    not_valid,
    time_window,
)
from userstream.server.http import Request, Response
from userstream.server.market import MarketService, SymbolFeed
from userstream.server.rest import Handler, RestApi, Weigher

__all__ = ["mount_market_rest"]

_encode = msgspec.json.Encoder().encode
HOUR_MS: Final = 3_600_000


def _params(request: Request) -> dict[str, str]:
    return dict(parse_qsl(request.query, keep_blank_values=True))


def _limit(params: dict[str, str], default: int, maximum: int) -> int:
    limit = int_param(params, "limit")
    if limit is None:
        return default
    if limit > maximum:
        raise not_valid("limit")
    return max(limit, 1)


def _weight_by_symbol(with_symbol: int, without: int) -> Weigher:
    def weigh(request: Request) -> int:
        return with_symbol if _params(request).get("symbol") else without

    return weigh


def _fixed(weight: int) -> Weigher:
    return lambda request: weight


def _weigh_depth(request: Request) -> int:
    raw = _params(request).get("limit", "")
    return depth_weight(int(raw)) if raw.isdigit() and len(raw) < 6 else depth_weight(500)


def _weigh_klines(request: Request) -> int:
    raw = _params(request).get("limit", "")
    return klines_weight(int(raw)) if raw.isdigit() and len(raw) < 6 else klines_weight(500)


_CONTRACT_TYPES: Final = ("PERPETUAL", "CURRENT_QUARTER", "NEXT_QUARTER", "TRADIFI_PERPETUAL")


def _ok(body: object) -> Response:
    return Response(200, _encode(body))


class MarketRest:
    def __init__(self, market: MarketService) -> None:
        self._market = market

    def routes(self) -> Iterable[tuple[str, Handler, Weigher]]:
        return (
            ("/fapi/v1/depth", self._depth, _weigh_depth),
            ("/fapi/v1/rpiDepth", self._rpi_depth, _fixed(depth_weight(RPI_DEPTH_LIMIT))),
            ("/fapi/v1/trades", self._trades, _fixed(5)),
            ("/fapi/v1/aggTrades", self._agg_trades, _fixed(20)),
            ("/fapi/v1/premiumIndex", self._premium_index, _weight_by_symbol(1, 10)),
            ("/fapi/v1/fundingRate", self._funding_rate, _fixed(1)),
            ("/fapi/v1/fundingInfo", self._funding_info, _fixed(0)),
            ("/fapi/v1/ticker/price", self._ticker_price, _weight_by_symbol(1, 2)),
            ("/fapi/v2/ticker/price", self._ticker_price, _weight_by_symbol(1, 2)),
            ("/fapi/v1/ticker/bookTicker", self._book_ticker, _weight_by_symbol(2, 5)),
            ("/fapi/v1/openInterest", self._open_interest, _fixed(1)),
            ("/fapi/v1/assetIndex", self._asset_index, _weight_by_symbol(1, 10)),
            ("/fapi/v1/indexInfo", self._index_info, _fixed(1)),
            ("/fapi/v1/ticker/24hr", self._ticker_24h, _weight_by_symbol(1, 40)),
            ("/fapi/v1/klines", self._klines(KlineFamily.TRADE, "symbol"), _weigh_klines),
            (
                "/fapi/v1/continuousKlines",
                self._klines(KlineFamily.TRADE, "pair"),
                _weigh_klines,
            ),
            (
                "/fapi/v1/markPriceKlines",
                self._klines(KlineFamily.MARK, "symbol"),
                _weigh_klines,
            ),
            (
                "/fapi/v1/indexPriceKlines",
                self._klines(KlineFamily.INDEX, "pair"),
                _weigh_klines,
            ),
            (
                "/fapi/v1/premiumIndexKlines",
                self._klines(KlineFamily.PREMIUM, "symbol"),
                _weigh_klines,
            ),
        )

    # helpers

    def _feed(self, params: dict[str, str], required: bool = True) -> SymbolFeed | None:
        symbol = params.get("symbol", "")
        if not symbol:
            if required:
                raise mandatory("symbol")
            return None
        feed = self._market.feeds.get(symbol.upper() if symbol.isascii() else symbol)
        if feed is None:
            raise invalid_symbol()
        return feed

    def _one_or_all(
        self, params: dict[str, str], build: Callable[[SymbolFeed], object]
    ) -> Response:
        feed = self._feed(params, required=False)
        if feed is not None:
            return _ok(build(feed))
        return _ok([build(f) for f in self._market.feeds.values()])

    # handlers

    async def _depth(self, request: Request) -> Response:
        params = _params(request)
        feed = self._feed(params)
        assert feed is not None
        limit = int_param(params, "limit")
        if limit is None:
            limit = 500
        elif limit > DEPTH_LIMITS[-1]:
            raise not_valid("limit")
        elif limit not in DEPTH_LIMITS:
            raise invalid_depth_limit(limit)
        return _ok(self._book(feed, limit))

    async def _rpi_depth(self, request: Request) -> Response:
        """`GET /fapi/v1/rpiDepth`: the book with RPI (Retail Price Improvement) orders; the
        SDK's page lists one valid limit, 1000 (weight 20). No source here quotes RPI
        liquidity, so it is the depth snapshot at 1000 levels (same `lastUpdateId`)."""
        params = _params(request)
        feed = self._feed(params)
        assert feed is not None
        limit = int_param(params, "limit")
        if limit is not None and limit > DEPTH_LIMITS[-1]:
            raise not_valid("limit")
        if limit is not None and limit != RPI_DEPTH_LIMIT:
            raise invalid_depth_limit(limit)
        return _ok(self._book(feed, RPI_DEPTH_LIMIT))

    def _book(self, feed: SymbolFeed, limit: int) -> DepthSnapshotBody:
        now = self._market.sync()
        snapshot = self._market.source.book(feed.symbol).snapshot(limit)
        return DepthSnapshotBody(
            last_update_id=snapshot.last_update_id,
            E=now,
            T=feed.book_time_ms,
            bids=[(feed.price(x.price), feed.qty(x.qty)) for x in snapshot.bids],
            asks=[(feed.price(x.price), feed.qty(x.qty)) for x in snapshot.asks],
        )

    async def _trades(self, request: Request) -> Response:
        params = _params(request)
        feed = self._feed(params)
        assert feed is not None
        limit = _limit(params, 500, 1000)
        self._market.sync()
        trades = self._market.state.trades(feed.symbol, limit)
        return _ok([_rest_trade(feed, t) for t in trades])

    async def _agg_trades(self, request: Request) -> Response:
        params = _params(request)
        feed = self._feed(params)
        assert feed is not None
        limit = _limit(params, 500, 1000)
        from_id = int_param(params, "fromId")
        start = int_param(params, "startTime")
        end = int_param(params, "endTime")
        if start is not None and end is not None and end - start > HOUR_MS:
            raise time_window(1)
        self._market.sync()
        selected = self._market.state.agg_trades(
            feed.symbol, from_id=from_id, start_ms=start, end_ms=end, limit=limit
        )
        return _ok([_rest_agg(feed, a) for a in selected])

    async def _asset_index(self, request: Request) -> Response:
        """`GET /fapi/v1/assetIndex[?symbol=BTCUSD]`: the figures `!assetIndex@arr` carries,
        an object for one symbol, an array for all (weight 1 / 10)."""
        symbol = _params(request).get("symbol", "")
        bodies = [AssetIndexBody.of(e) for e in self._market.asset_indexes(self._market.sync())]
        if not symbol:
            return _ok(bodies)
        for body in bodies:
            if body.symbol == symbol.upper():
                return _ok(body)
        raise invalid_symbol()

    async def _index_info(self, request: Request) -> Response:
        """`GET /fapi/v1/indexInfo` answers "only for composite index symbols" ([SDK
        market_data_api.py], weight 1); exchangeInfo lists none (no `underlyingType`
        `INDEX`), so the list is empty and a named symbol is not one."""
        if _params(request).get("symbol"):
            raise invalid_symbol()
        return _ok([])

    async def _premium_index(self, request: Request) -> Response:
        params = _params(request)
        now = self._market.sync()

        def build(feed: SymbolFeed) -> PremiumIndexBody:
            mark = self._market.mark(feed.symbol)
            return PremiumIndexBody(
                symbol=feed.symbol,
                mark_price=fmt(mark.mark_price, PRICE_PLACES_MARK),
                index_price=fmt(mark.index_price, PRICE_PLACES_MARK),
                estimated_settle_price=fmt(mark.estimated_settle_price, PRICE_PLACES_MARK),
                last_funding_rate=fmt(mark.funding_rate, PRICE_PLACES_MARK),
                interest_rate=fmt(mark.interest_rate, PRICE_PLACES_MARK),
                next_funding_time=mark.next_funding_time_ms,
                time=now,
            )

        return self._one_or_all(params, build)

    async def _funding_rate(self, request: Request) -> Response:
        params = _params(request)
        feed = self._feed(params, required=False)
        limit = _limit(params, 100, 1000)
        start = int_param(params, "startTime")
        end = int_param(params, "endTime")
        self._market.sync()
        records = self._market.state.funding_history(
            feed.symbol if feed is not None else None, start_ms=start, end_ms=end, limit=limit
        )
        return _ok(
            [
                FundingRateBody(
                    symbol=r.symbol,
                    funding_time=r.funding_time_ms,
                    funding_rate=fmt(r.funding_rate, PRICE_PLACES_MARK),
                    mark_price=fmt(r.mark_price, PRICE_PLACES_MARK),
                )
                for r in records
            ]
        )

    async def _funding_info(self, request: Request) -> Response:
        # Only symbols whose cap, floor or interval were adjusted are listed (spec §3.1);
        # every symbol here keeps Binance's defaults.
        return _ok([])

    async def _ticker_price(self, request: Request) -> Response:
        params = _params(request)
        now = self._market.sync()

        def build(feed: SymbolFeed) -> TickerPriceBody:
            return TickerPriceBody(feed.symbol, feed.price(self._last_price(feed)), now)

        return self._one_or_all(params, build)

    async def _book_ticker(self, request: Request) -> Response:
        params = _params(request)
        now = self._market.sync()

        def build(feed: SymbolFeed) -> RestBookTicker:
            book = self._market.source.book(feed.symbol)
            bid, ask = book.best_bid(), book.best_ask()
            zero = Decimal(0)
            return RestBookTicker(
                symbol=feed.symbol,
                bid_price=feed.price(bid.price if bid else zero),
                bid_qty=feed.qty(bid.qty if bid else zero),
                ask_price=feed.price(ask.price if ask else zero),
                ask_qty=feed.qty(ask.qty if ask else zero),
                time=now,
                last_update_id=book.last_update_id,
            )

        return self._one_or_all(params, build)

    async def _open_interest(self, request: Request) -> Response:
        params = _params(request)
        feed = self._feed(params)
        assert feed is not None
        now = self._market.sync()
        return _ok(
            OpenInterestBody(feed.qty(self._market.open_interest(feed.symbol)), feed.symbol, now)
        )

    async def _ticker_24h(self, request: Request) -> Response:
        params = _params(request)
        self._market.sync()

        def build(feed: SymbolFeed) -> RestTicker24h:
            ticker = self._market.state.ticker(feed.symbol)
            event = feed.ticker_event(ticker, ticker.close_time_ms)
            return RestTicker24h(
                symbol=feed.symbol,
                price_change=event.p,
                price_change_percent=event.P,
                weighted_avg_price=event.w,
                last_price=event.c,
                last_qty=event.Q,
                open_price=event.o,
                high_price=event.h,
                low_price=event.l,
                volume=event.v,
                quote_volume=event.q,
                open_time=event.O,
                close_time=event.C,
                first_id=event.F,
                last_id=event.L,
                count=event.n,
            )

        return self._one_or_all(params, build)

    def _klines(self, family: KlineFamily, key: str) -> Handler:
        """A kline endpoint: `symbol` keyed, or `pair` keyed (continuous and index klines,
        which name the pair and, for continuous ones, a `contractType`)."""

        async def handle(request: Request) -> Response:
            params = _params(request)
            if key == "symbol":
                feed = self._feed(params)
            else:
                pair = params.get("pair", "")
                if not pair:
                    raise mandatory("pair")
                contract = params.get("contractType", "PERPETUAL")
                if family is KlineFamily.TRADE and contract not in _CONTRACT_TYPES:
                    raise not_valid("contractType")
                symbol = self._market.pairs.get((pair.upper(), contract))
                feed = self._market.feeds.get(symbol or "")
                if feed is None:
                    raise invalid_symbol()
            assert feed is not None
            interval = params.get("interval", "")
            if not interval:
                raise mandatory("interval")
            if interval not in INTERVALS:
                raise invalid_interval()
            limit = _limit(params, 500, 1500)
            start = int_param(params, "startTime")
            end = int_param(params, "endTime")
            self._market.sync()
            bars = self._market.state.klines(
                feed.symbol, interval, family=family, start_ms=start, end_ms=end, limit=limit
            )
            return _ok([kline_row(feed.wire_kline(bar, interval, family)) for bar in bars])

        return handle

    def _last_price(self, feed: SymbolFeed) -> Decimal:
        last = self._market.state.last_trade(feed.symbol)
        if last is not None:
            return last.price
        book = self._market.source.book(feed.symbol)
        bid = book.best_bid()
        if bid is not None:
            return bid.price
        return self._market.source.mark(feed.symbol).mark_price


def _rest_trade(feed: SymbolFeed, trade: Trade) -> RestTrade:
    return RestTrade(
        id=trade.trade_id,
        price=feed.price(trade.price),
        qty=feed.qty(trade.qty),
        quote_qty=feed.price(trade.price * trade.qty),
        time=trade.time_ms,
        is_buyer_maker=trade.buyer_is_maker,
        is_r_p_i_trade=False,
    )


def _rest_agg(feed: SymbolFeed, agg: AggTrade) -> RestAggTrade:
    qty = feed.qty(agg.qty)
    return RestAggTrade(
        a=agg.agg_id,
        p=feed.price(agg.price),
        q=qty,
        nq=qty,
        f=agg.first_trade_id,
        l=agg.last_trade_id,
        T=agg.time_ms,
        m=agg.buyer_is_maker,
    )


def mount_market_rest(rest: RestApi, market: MarketService) -> None:
    """Serve the market endpoints on `rest`."""
    for path, handler, weight in MarketRest(market).routes():
        rest.mount(path, "GET", handler, weight)
