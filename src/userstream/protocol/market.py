"""Market data on the wire: every market payload, the stream-name grammar and REST weights.

Spec: `shared/spec/binance-usdm-market-data.md` (§2 streams, §3 REST). Every struct lists its
fields in the order Binance sends them (§2.2; bookTicker's live order `e,u,s,b,B,a,A,T,E` from
[CAP-02]); prices and quantities are strings written at the symbol's precision (`"68005.10"`,
`"0.003"`), mark/index prices and rates at 8 places, ids and times are integers (§0).

Sans-I/O: the server builds these from the market state and encodes each once; parameter
checks raise `BinanceAPIError` with Binance's codes and texts (§3.1 "Validation bodies").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import msgspec

from userstream.exceptions import BinanceAPIError

__all__ = [
    "DEPTH_LIMITS",
    "DEPTH_SPEEDS_MS",
    "INTERVALS",
    "PUBLIC_KINDS",
    "RPI_DEPTH_LIMIT",
    "RPI_DEPTH_SPEED_MS",
    "AggTradeEvent",
    "AssetIndexBody",
    "AssetIndexEvent",
    "BookTickerEvent",
    "ContinuousKlineEvent",
    "DepthSnapshotBody",
    "DepthUpdateEvent",
    "ForceOrder",
    "ForceOrderEvent",
    "FundingInfoBody",
    "FundingRateBody",
    "Kline",
    "KlineEvent",
    "MarkPriceEvent",
    "MarketStream",
    "MiniTickerEvent",
    "OpenInterestBody",
    "PremiumIndexBody",
    "RestAggTrade",
    "RestBookTicker",
    "RestTicker24h",
    "RestTrade",
    "StreamKind",
    "TickerEvent",
    "TickerPriceBody",
    "TradeEvent",
    "depth_weight",
    "fmt",
    "is_public",
    "kline_row",
    "klines_weight",
    "parse_market_stream",
]

PRICE_PLACES_MARK: Final = 8
"""Mark, index and settle prices and funding rates carry 8 places (§2.2 markPriceUpdate)."""


def fmt(value: Decimal, places: int) -> str:
    """`value` written with exactly `places` decimals, no exponent (`"68005.10"`)."""
    return f"{value:.{places}f}"


# ---------------------------------------------------------------------------------------------
# Stream payloads (§2.2)

PriceLevel = tuple[str, str]


class AggTradeEvent(msgspec.Struct):
    e: str
    E: int
    s: str
    a: int
    p: str
    q: str
    nq: str
    f: int
    l: int  # noqa: E741 - Binance's key
    T: int
    m: bool


class TradeEvent(msgspec.Struct):
    """`<s>@trade` (undocumented on USDⓈ-M; field set from a live capture, §2.2 [CAP-08])."""

    e: str
    E: int
    T: int
    s: str
    t: int
    p: str
    q: str
    X: str
    m: bool


class MarkPriceEvent(msgspec.Struct):
    e: str
    E: int
    s: str
    p: str
    ap: str
    i: str
    P: str
    r: str
    T: int


class Kline(msgspec.Struct):
    """The `k` object of a kline frame; `s` is left out of continuous klines (§2.2)."""

    t: int
    T: int
    s: str | msgspec.UnsetType
    i: str
    f: int
    L: int
    o: str
    c: str
    h: str
    l: str  # noqa: E741 - Binance's key
    v: str
    n: int
    x: bool
    q: str
    V: str
    Q: str
    B: str


class KlineEvent(msgspec.Struct):
    e: str
    E: int
    s: str
    k: Kline


class ContinuousKlineEvent(msgspec.Struct):
    e: str
    E: int
    ps: str
    ct: str
    k: Kline


class TickerEvent(msgspec.Struct):
    """`24hrTicker`: no bid/ask fields on futures (§2.2)."""

    e: str
    E: int
    s: str
    p: str
    P: str
    w: str
    c: str
    Q: str
    o: str
    h: str
    l: str  # noqa: E741 - Binance's key
    v: str
    q: str
    O: int  # noqa: E741 - Binance's key
    C: int
    F: int
    L: int
    n: int


class MiniTickerEvent(msgspec.Struct):
    e: str
    E: int
    s: str
    c: str
    o: str
    h: str
    l: str  # noqa: E741 - Binance's key
    v: str
    q: str


class BookTickerEvent(msgspec.Struct):
    e: str
    u: int
    s: str
    b: str
    B: str
    a: str
    A: str
    T: int
    E: int


class DepthUpdateEvent(msgspec.Struct):
    e: str
    E: int
    T: int
    s: str
    U: int
    u: int
    pu: int
    b: list[PriceLevel]
    a: list[PriceLevel]


class ForceOrder(msgspec.Struct):
    s: str
    S: str
    o: str
    f: str
    q: str
    p: str
    ap: str
    X: str
    l: str  # noqa: E741 - Binance's key
    z: str
    T: int


class ForceOrderEvent(msgspec.Struct):
    e: str
    E: int
    o: ForceOrder


class AssetIndexEvent(msgspec.Struct):
    """`assetIndexUpdate` (§2.2): an asset's USD index and the Multi-Assets mode buffers and
    rates; `B`/`A` = `i` × (1 ∓ `b`/`a`), `Q`/`G` the same with the auto-exchange buffers
    `q`/`g` (Binance's documented example: index 1.92957370, buffer 0.10 → bid rate
    1.73661633, auto-exchange buffer 0.05 → 1.83309501)."""

    e: str
    E: int
    s: str
    i: str
    b: str
    a: str
    B: str
    A: str
    q: str
    g: str
    Q: str
    G: str


# ---------------------------------------------------------------------------------------------
# REST bodies (§3.1)


class DepthSnapshotBody(msgspec.Struct):
    last_update_id: int = msgspec.field(name="lastUpdateId")
    E: int = 0
    T: int = 0
    bids: list[PriceLevel] = msgspec.field(default_factory=list)
    asks: list[PriceLevel] = msgspec.field(default_factory=list)


class RestTrade(msgspec.Struct, rename="camel"):
    id: int
    price: str
    qty: str
    quote_qty: str
    time: int
    is_buyer_maker: bool
    is_r_p_i_trade: bool = msgspec.field(name="isRPITrade")


class RestAggTrade(msgspec.Struct):
    a: int
    p: str
    q: str
    nq: str
    f: int
    l: int  # noqa: E741 - Binance's key
    T: int
    m: bool


KlineRow = tuple[int, str, str, str, str, str, int, str, int, str, str, str]
"""`[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades,
takerBuyBase, takerBuyQuote, "0"]` (§3.1 kline array)."""


def kline_row(k: Kline) -> KlineRow:
    """The REST array of a kline, from the same numbers the stream's `k` carries."""
    return (k.t, k.o, k.h, k.l, k.c, k.v, k.T, k.q, k.n, k.V, k.Q, "0")


class PremiumIndexBody(msgspec.Struct, rename="camel"):
    symbol: str
    mark_price: str
    index_price: str
    estimated_settle_price: str
    last_funding_rate: str
    interest_rate: str
    next_funding_time: int
    time: int


class FundingRateBody(msgspec.Struct, rename="camel"):
    symbol: str
    funding_time: int
    funding_rate: str
    mark_price: str


class FundingInfoBody(msgspec.Struct, rename="camel"):
    symbol: str
    adjusted_funding_rate_cap: str
    adjusted_funding_rate_floor: str
    funding_interval_hours: int
    disclaimer: bool
    update_time: int | None


class RestTicker24h(msgspec.Struct, rename="camel"):
    symbol: str
    price_change: str
    price_change_percent: str
    weighted_avg_price: str
    last_price: str
    last_qty: str
    open_price: str
    high_price: str
    low_price: str
    volume: str
    quote_volume: str
    open_time: int
    close_time: int
    first_id: int
    last_id: int
    count: int


class TickerPriceBody(msgspec.Struct):
    symbol: str
    price: str
    time: int


class RestBookTicker(msgspec.Struct, rename="camel"):
    symbol: str
    bid_price: str
    bid_qty: str
    ask_price: str
    ask_qty: str
    time: int
    last_update_id: int


class AssetIndexBody(msgspec.Struct, rename="camel"):
    """`GET /fapi/v1/assetIndex`: the REST form of `assetIndexUpdate` (§3.1, [SDK
    asset_index_response1])."""

    symbol: str
    time: int
    index: str
    bid_buffer: str
    ask_buffer: str
    bid_rate: str
    ask_rate: str
    auto_exchange_bid_buffer: str
    auto_exchange_ask_buffer: str
    auto_exchange_bid_rate: str
    auto_exchange_ask_rate: str

    @classmethod
    def of(cls, event: AssetIndexEvent) -> AssetIndexBody:
        return cls(
            event.s, event.E, event.i, event.b, event.a, event.B, event.A,
            event.q, event.g, event.Q, event.G,
        )  # fmt: skip


class OpenInterestBody(msgspec.Struct, rename="camel"):
    """Key order of Binance's documented example: openInterest, symbol, time."""

    open_interest: str
    symbol: str
    time: int


# ---------------------------------------------------------------------------------------------
# Stream names (§2.1)


class StreamKind(enum.Enum):
    AGG_TRADE = "aggTrade"
    TRADE = "trade"
    MARK_PRICE = "markPrice"
    MARK_PRICE_ALL = "!markPrice@arr"
    KLINE = "kline"
    CONTINUOUS_KLINE = "continuousKline"
    MINI_TICKER = "miniTicker"
    MINI_TICKER_ALL = "!miniTicker@arr"
    TICKER = "ticker"
    TICKER_ALL = "!ticker@arr"
    BOOK_TICKER = "bookTicker"
    BOOK_TICKER_ALL = "!bookTicker"
    DEPTH = "depth"
    DEPTH_PARTIAL = "depthN"
    FORCE_ORDER = "forceOrder"
    FORCE_ORDER_ALL = "!forceOrder@arr"
    RPI_DEPTH = "rpiDepth"
    ASSET_INDEX = "assetIndex"
    ASSET_INDEX_ALL = "!assetIndex@arr"


INTERVALS: Final = (
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"
)  # fmt: skip
"""Kline intervals on USDⓈ-M (no `1s`, §2.1 and §3.1)."""

DEPTH_SPEEDS_MS: Final = (100, 250, 500)
DEFAULT_DEPTH_SPEED_MS: Final = 250
DEPTH_PARTIAL_LEVELS: Final = (5, 10, 20)
DEPTH_LIMITS: Final = (5, 10, 20, 50, 100, 500, 1000)
RPI_DEPTH_LIMIT: Final = 1000
"""`GET /fapi/v1/rpiDepth`'s one valid limit ([SDK market_data_api.py] "Valid limits:[1000]")."""
RPI_DEPTH_SPEED_MS: Final = 500
"""`<s>@rpiDepth@500ms`, the one speed of the RPI diff stream (§2.1)."""
_CONTRACT_TYPES: Final = ("perpetual", "current_quarter", "next_quarter", "tradifi_perpetual")


@dataclass(frozen=True, slots=True)
class MarketStream:
    """One market topic: what a frame is built from. Names that differ only in the case of
    the symbol or in a redundant default speed (`btcusdt@depth` and `BTCUSDT@depth@250ms`) map
    to one topic, so its payload is built once.

    `symbol` is upper-case (None for the `!` streams); `speed_ms` is the update period (0 for
    real-time streams); `interval` is the kline interval; `levels` the partial depth's N;
    `contract_type` the continuous kline's `ct` as sent in its frames (`PERPETUAL`).
    """

    kind: StreamKind
    symbol: str | None = None
    speed_ms: int = 0
    interval: str = ""
    levels: int = 0
    contract_type: str = ""


PUBLIC_KINDS: Final = frozenset(
    {
        StreamKind.BOOK_TICKER,
        StreamKind.BOOK_TICKER_ALL,
        StreamKind.DEPTH,
        StreamKind.DEPTH_PARTIAL,
        StreamKind.RPI_DEPTH,
        StreamKind.TRADE,
    }
)
"""The streams Binance serves on `/public` since 2026-03-06; every other market stream is on
`/market` (§1 "Which route each stream lives on"; `@trade` as ccxt routes it)."""


def is_public(topic: MarketStream) -> bool:
    """True for a `/public` (book) stream, False for a `/market` one (§1)."""
    return topic.kind in PUBLIC_KINDS


_GLOBAL: Final = {
    "!markPrice@arr": MarketStream(StreamKind.MARK_PRICE_ALL, speed_ms=3000),
    "!markPrice@arr@1s": MarketStream(StreamKind.MARK_PRICE_ALL, speed_ms=1000),
    "!miniTicker@arr": MarketStream(StreamKind.MINI_TICKER_ALL, speed_ms=1000),
    "!ticker@arr": MarketStream(StreamKind.TICKER_ALL, speed_ms=1000),
    "!bookTicker": MarketStream(StreamKind.BOOK_TICKER_ALL),
    "!forceOrder@arr": MarketStream(StreamKind.FORCE_ORDER_ALL, speed_ms=1000),
    "!assetIndex@arr": MarketStream(StreamKind.ASSET_INDEX_ALL, speed_ms=1000),
}

_SIMPLE: Final = {
    "aggTrade": (StreamKind.AGG_TRADE, 100),
    "trade": (StreamKind.TRADE, 0),
    "markPrice": (StreamKind.MARK_PRICE, 3000),
    "markPrice@1s": (StreamKind.MARK_PRICE, 1000),
    "miniTicker": (StreamKind.MINI_TICKER, 2000),
    "ticker": (StreamKind.TICKER, 2000),
    "bookTicker": (StreamKind.BOOK_TICKER, 0),
    "forceOrder": (StreamKind.FORCE_ORDER, 1000),
    "assetIndex": (StreamKind.ASSET_INDEX, 1000),  # `<asset>@assetIndex`: `btcusd@assetIndex`
}


def _depth_speed(rest: str) -> int | None:
    if rest == "":
        return DEFAULT_DEPTH_SPEED_MS
    # `@0ms` appears in 2022 recordings (real-time diff); it is served as 100 ms (§2.1).
    speeds = {"@100ms": 100, "@250ms": 250, "@500ms": 500, "@0ms": 100}
    return speeds.get(rest)


def parse_market_stream(name: str) -> MarketStream | None:
    """The topic a market stream name subscribes to, or None when `name` is not one.

    `symbols` are checked by the caller: a well-formed name for an unknown symbol is a topic
    that never delivers, as Binance ACKs it and stays silent (§1).
    """
    known = _GLOBAL.get(name)
    if known is not None:
        return known
    head, sep, event = name.partition("@")
    if not sep or not head or head.startswith("!"):
        return None
    symbol = head.upper()
    simple = _SIMPLE.get(event)
    if simple is not None:
        return MarketStream(simple[0], symbol, simple[1])
    if event.startswith("depth"):
        body, _, rest = event.partition("@")
        speed = _depth_speed("@" + rest if rest else "")
        if speed is None:
            return None
        if body == "depth":
            return MarketStream(StreamKind.DEPTH, symbol, speed)
        levels = body[len("depth") :]
        if levels.isdigit() and int(levels) in DEPTH_PARTIAL_LEVELS:
            return MarketStream(StreamKind.DEPTH_PARTIAL, symbol, speed, levels=int(levels))
        return None
    if event == "rpiDepth@500ms":
        return MarketStream(StreamKind.RPI_DEPTH, symbol, RPI_DEPTH_SPEED_MS)
    if event.startswith("kline_"):
        interval = event[len("kline_") :]
        if interval in INTERVALS:
            return MarketStream(StreamKind.KLINE, symbol, 250, interval=interval)
        return None
    if event.startswith("continuousKline_"):
        interval = event[len("continuousKline_") :]
        pair, _, contract = head.rpartition("_")
        if interval in INTERVALS and pair and contract in _CONTRACT_TYPES:
            return MarketStream(
                StreamKind.CONTINUOUS_KLINE,
                pair.upper(),
                250,
                interval=interval,
                contract_type=contract.upper(),
            )
    return None


# ---------------------------------------------------------------------------------------------
# REST weights and parameter errors (§2.3, §3.1)

INVALID_SYMBOL: Final = -1121
INVALID_INTERVAL: Final = -1120
ILLEGAL_CHARS: Final = -1100
MANDATORY_PARAM: Final = -1102
INVALID_PARAMETER: Final = -1130
INVALID_DEPTH_LIMIT: Final = -4021
TIME_WINDOW: Final = -1127


def depth_weight(limit: int) -> int:
    """`GET /fapi/v1/depth` weight: 2 up to 50 levels, 5 for 100, 10 for 500, 20 for 1000."""
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


def klines_weight(limit: int) -> int:
    """Weight of every kline endpoint: [1,100) 1, [100,500) 2, [500,1000] 5, above 10."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def invalid_symbol() -> BinanceAPIError:
    return BinanceAPIError(INVALID_SYMBOL, "Invalid symbol.", 400)


def invalid_interval() -> BinanceAPIError:
    return BinanceAPIError(INVALID_INTERVAL, "Invalid interval.", 400)


def mandatory(name: str) -> BinanceAPIError:
    return BinanceAPIError(
        MANDATORY_PARAM,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
        400,
    )


def illegal_chars(name: str) -> BinanceAPIError:
    return BinanceAPIError(
        ILLEGAL_CHARS,
        f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        400,
    )


def not_valid(name: str) -> BinanceAPIError:
    return BinanceAPIError(
        INVALID_PARAMETER, f"Data sent for parameter '{name}' is not valid.", 400
    )


def invalid_depth_limit(limit: int) -> BinanceAPIError:
    return BinanceAPIError(INVALID_DEPTH_LIMIT, f"{limit} is not valid depth limit", 400)


def time_window(hours: int) -> BinanceAPIError:
    return BinanceAPIError(
        TIME_WINDOW, f"More than {hours} hours between startTime and endTime.", 400
    )


def int_param(params: dict[str, str], name: str) -> int | None:
    """An unsigned integer parameter, None when absent or empty (Binance's -1100 otherwise)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 20:
        raise illegal_chars(name)
    return int(raw)
