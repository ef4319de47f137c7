"""A few minutes of one symbol in Binance's exact historical-file formats (market-data spec §5),
made from a seed, since the real files cannot be fetched here (`scripts/make_sample_market`).

One tape is drawn (trades on a 0.10 tick with a one-tick spread, spec §7) and every file is
derived from it, so they agree as Binance's do: `aggTrades` merges consecutive trades of the
same side and price within 100 ms (spec §2.1), `bookTicker` moves its L1 with the tape, the
1 m `klines` are computed from the trades, mark and index follow the traded price with a small
basis, `premiumIndexKlines` carry the ratio, and the monthly `fundingRate` file holds every 8 h
settlement of the month. The default window, 2026-09-01 15:57-16:02 UTC, crosses the 16:00
funding instant.

Variants, each a file layout users really get: with or without header rows (spec §5.1
"Header presence"), zipped (with `.CHECKSUM` siblings in Binance's tree) or plain CSV,
millisecond or microsecond timestamps, and Binance's folder tree or a flat folder.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import random
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

from userstream.market.replay_files import (
    COLUMNS,
    AggTradeRow,
    BookTickerRow,
    Dataset,
    FundingRateRow,
    KlineRow,
    TradeRow,
)

__all__ = ["Sample", "sample_tape", "write_sample"]

SYMBOL: Final = "BTCUSDT"
START_MS: Final = 1788278220000  # 2026-09-01 15:57:00 UTC
MINUTES: Final = 5
_TICK: Final = Decimal("0.10")
_STEP: Final = Decimal("0.001")
_PRICE_PLACES: Final = Decimal("0.01")
_MARK_PLACES: Final = Decimal("0.00000001")
_MINUTE: Final = 60_000
_FUNDING_HOURS: Final = 8


@dataclass
class Sample:
    """Everything a sample holds, as rows (what a correct parser must read back)."""

    symbol: str
    trades: list[TradeRow] = field(default_factory=list)
    agg_trades: list[AggTradeRow] = field(default_factory=list)
    book_tickers: list[BookTickerRow] = field(default_factory=list)
    klines: dict[Dataset, list[KlineRow]] = field(default_factory=dict)
    funding_rates: list[FundingRateRow] = field(default_factory=list)


def _lots(rng: random.Random) -> Decimal:
    # Log-normal sizes, median ≈ 0.005 BTC with a heavy tail (spec §7).
    return max(_STEP, (Decimal(str(rng.lognormvariate(-5.3, 1.2))) / _STEP).quantize(1) * _STEP)


def sample_tape(
    seed: int = 1, symbol: str = SYMBOL, start_ms: int = START_MS, minutes: int = MINUTES
) -> Sample:
    """The sample's rows, drawn from `seed`; the same seed gives the same rows."""
    rng = random.Random(seed)
    sample = Sample(symbol)
    end_ms = start_ms + minutes * _MINUTE
    bid = Decimal("68005.00")
    trade_id = 7_297_376_000
    update_id = 9_900_000_000_000
    t = start_ms + rng.randrange(50)
    bid_qty, ask_qty = _lots(rng) * 100, _lots(rng) * 100
    while t < end_ms:
        update_id += rng.randrange(1, 40)
        if rng.random() < 0.15:
            bid += _TICK * rng.choice((-1, 1))
        sell = rng.random() < 0.5
        price = bid if sell else bid + _TICK
        for _ in range(rng.choice((1, 1, 1, 2, 3))):  # one taker order may print several trades
            trade_id += 1
            qty = _lots(rng)
            sample.trades.append(TradeRow(trade_id, price, qty, price * qty, t, sell))
        bid_qty, ask_qty = _lots(rng) * 100, _lots(rng) * 100
        sample.book_tickers.append(
            BookTickerRow(update_id, bid, bid_qty, bid + _TICK, ask_qty, t, t + rng.randrange(5))
        )
        t += int(rng.expovariate(1 / 200)) + 1
    sample.agg_trades = _aggregate(sample.trades)
    sample.klines = _klines(sample.trades, start_ms, minutes, rng)
    sample.funding_rates = _funding_month(start_ms, rng)
    return sample


def _aggregate(trades: Sequence[TradeRow]) -> list[AggTradeRow]:
    rows: list[AggTradeRow] = []
    agg_id = 3_100_000_000
    for trade in trades:
        last = rows[-1] if rows else None
        if (
            last is not None
            and last.price == trade.price
            and last.buyer_is_maker == trade.buyer_is_maker
            and trade.time_ms - last.time_ms < 100
        ):
            rows[-1] = AggTradeRow(
                last.agg_trade_id,
                last.price,
                last.qty + trade.qty,
                last.first_trade_id,
                trade.trade_id,
                last.time_ms,
                last.buyer_is_maker,
            )
            continue
        agg_id += 1
        rows.append(
            AggTradeRow(
                agg_id,
                trade.price,
                trade.qty,
                trade.trade_id,
                trade.trade_id,
                trade.time_ms,
                trade.buyer_is_maker,
            )
        )
    return rows


def _bar(open_ms: int, values: Sequence[Decimal], count: int) -> KlineRow:
    zero = Decimal(0)
    return KlineRow(
        open_ms,
        values[0],
        max(values),
        min(values),
        values[-1],
        zero,
        open_ms + _MINUTE - 1,
        zero,
        count,
        zero,
        zero,
    )


def _klines(
    trades: Sequence[TradeRow], start_ms: int, minutes: int, rng: random.Random
) -> dict[Dataset, list[KlineRow]]:
    klines: list[KlineRow] = []
    mark: list[KlineRow] = []
    index: list[KlineRow] = []
    premium: list[KlineRow] = []
    last = trades[0].price
    for minute in range(minutes):
        open_ms = start_ms + minute * _MINUTE
        in_bar = [t for t in trades if open_ms <= t.time_ms < open_ms + _MINUTE]
        prices = [t.price for t in in_bar] or [last]
        taker_buys = [t for t in in_bar if not t.buyer_is_maker]
        klines.append(
            KlineRow(
                open_ms,
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
                sum((t.qty for t in in_bar), Decimal(0)),
                open_ms + _MINUTE - 1,
                sum((t.quote_qty for t in in_bar), Decimal(0)),
                len(in_bar),
                sum((t.qty for t in taker_buys), Decimal(0)),
                sum((t.quote_qty for t in taker_buys), Decimal(0)),
            )
        )
        last = prices[-1]
        # open, high, low, close of the traded price, each less a basis of up to ±0.02 %
        basis = [Decimal(str(round(rng.uniform(-0.0002, 0.0002), 8))) for _ in range(4)]
        ohlc = (prices[0], max(prices), min(prices), prices[-1])
        index_values = [
            (p * (1 - b)).quantize(_MARK_PLACES) for p, b in zip(ohlc, basis, strict=True)
        ]
        mark_values = [(i * Decimal("1.00003")).quantize(_MARK_PLACES) for i in index_values]
        ratios = [b.quantize(_MARK_PLACES) for b in basis]
        index.append(_bar(open_ms, index_values, 36))
        mark.append(_bar(open_ms, mark_values, 60))
        premium.append(_bar(open_ms, ratios, 12))
    return {
        Dataset.KLINES: klines,
        Dataset.MARK_PRICE_KLINES: mark,
        Dataset.INDEX_PRICE_KLINES: index,
        Dataset.PREMIUM_INDEX_KLINES: premium,
    }


def _funding_month(start_ms: int, rng: random.Random) -> list[FundingRateRow]:
    year, month = _utc(start_ms)[:2]
    first = calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    days = calendar.monthrange(year, month)[1]
    interval = _FUNDING_HOURS * 3_600_000
    return [
        FundingRateRow(
            first + n * interval + rng.randrange(10),
            _FUNDING_HOURS,
            Decimal(rng.choice(("0.00010000", "0.00007500", "0.00004213", "-0.00001250"))),
        )
        for n in range(days * 24 // _FUNDING_HOURS)
    ]


def _utc(ms: int) -> tuple[int, int, int]:
    t = time.gmtime(ms // 1000)
    return t.tm_year, t.tm_mon, t.tm_mday


# --- writing --------------------------------------------------------------------------------


def _time(ms: int, microseconds: bool, rng: random.Random) -> str:
    return str(ms * 1000 + rng.randrange(1000) if microseconds else ms)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _q(value: Decimal, places: Decimal) -> str:
    return str(value.quantize(places))


def _lines(sample: Sample, dataset: Dataset, microseconds: bool, rng: random.Random) -> list[str]:
    def t(ms: int) -> str:
        return _time(ms, microseconds, rng)

    price, qty, quote = _PRICE_PLACES, _STEP, Decimal("0.00001")
    if dataset is Dataset.TRADES:
        return [
            f"{r.trade_id},{_q(r.price, price)},{_q(r.qty, qty)},{_q(r.quote_qty, quote)},"
            f"{t(r.time_ms)},{_bool(r.buyer_is_maker)}"
            for r in sample.trades
        ]
    if dataset is Dataset.AGG_TRADES:
        return [
            f"{r.agg_trade_id},{_q(r.price, price)},{_q(r.qty, qty)},{r.first_trade_id},"
            f"{r.last_trade_id},{t(r.time_ms)},{_bool(r.buyer_is_maker)}"
            for r in sample.agg_trades
        ]
    if dataset is Dataset.BOOK_TICKER:
        return [
            f"{r.update_id},{_q(r.bid_price, price)},{_q(r.bid_qty, qty)},"
            f"{_q(r.ask_price, price)},{_q(r.ask_qty, qty)},"
            f"{t(r.transaction_time_ms)},{t(r.event_time_ms)}"
            for r in sample.book_tickers
        ]
    if dataset is Dataset.FUNDING_RATE:
        return [
            f"{t(r.calc_time_ms)},{r.funding_interval_hours},{_q(r.funding_rate, _MARK_PLACES)}"
            for r in sample.funding_rates
        ]
    places = price if dataset is Dataset.KLINES else _MARK_PLACES
    return [
        f"{t(r.open_time_ms)},{_q(r.open, places)},{_q(r.high, places)},{_q(r.low, places)},"
        f"{_q(r.close, places)},{_q(r.volume, qty)},{t(r.close_time_ms)},"
        f"{_q(r.quote_volume, quote)},{r.count},{_q(r.taker_buy_volume, qty)},"
        f"{_q(r.taker_buy_quote_volume, quote)},0"
        for r in sample.klines[dataset]
    ]


Layout = Literal["binance", "flat"]


def write_sample(
    directory: Path,
    *,
    seed: int = 1,
    symbol: str = SYMBOL,
    headers: bool = True,
    zipped: bool = True,
    microseconds: bool = False,
    layout: Layout = "binance",
    datasets: Sequence[Dataset] = tuple(Dataset),
) -> Sample:
    """Write the sample's files of `datasets` for `symbol` (a BTCUSDT-like tape whatever the
    name) under `directory` and return its rows.

    `layout="binance"` is data.binance.vision's tree (`data/futures/um/daily/aggTrades/
    BTCUSDT/BTCUSDT-aggTrades-2026-09-01.zip`, kline families under `<dataset>/BTCUSDT/1m/`,
    `fundingRate` monthly), with `.CHECKSUM` siblings when zipped; `"flat"` puts the tape and
    funding files in `directory` and each kline family in a folder named after its dataset.
    """
    sample = sample_tape(seed, symbol)
    rng = random.Random(seed)
    year, month, day = _utc(START_MS)
    daily, monthly = f"{year}-{month:02}-{day:02}", f"{year}-{month:02}"
    for dataset in datasets:
        funding = dataset is Dataset.FUNDING_RATE
        period = monthly if funding else daily
        stem = f"{symbol}-{'1m' if dataset.is_kline else dataset.value}-{period}"
        if layout == "binance":
            folder = directory / "data/futures/um" / ("monthly" if funding else "daily")
            folder = folder / dataset.value / symbol / ("1m" if dataset.is_kline else "")
        else:
            folder = directory / dataset.value if dataset.is_kline else directory
        folder.mkdir(parents=True, exist_ok=True)
        lines = _lines(sample, dataset, microseconds, rng)
        if headers:
            lines.insert(0, ",".join(COLUMNS[dataset]))
        text = "\n".join(lines) + "\n"
        if not zipped:
            (folder / f"{stem}.csv").write_text(text)
            continue
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{stem}.csv", text)
        data = buffer.getvalue()
        (folder / f"{stem}.zip").write_bytes(data)
        if layout == "binance":
            digest = hashlib.sha256(data).hexdigest()
            (folder / f"{stem}.zip.CHECKSUM").write_text(f"{digest}  {stem}.zip\n")
    return sample
