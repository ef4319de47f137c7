"""Binance's public USDⓈ-M historical files (data.binance.vision), read as users download them
(market-data spec §5).

Datasets: `aggTrades`, `trades`, `bookTicker`, `klines`, `markPriceKlines`,
`indexPriceKlines`, `premiumIndexKlines`, `fundingRate`; daily or monthly; `.zip` (one or more
CSV members) or the `.csv` itself. The format traps of spec §5.1 are handled here, once:

- Header row or not: a file whose first byte is a digit has none (BPD #177, #246); otherwise
  the first row names the columns, and columns are then looked up by name.
- Timestamps: any time value above 10¹³ is in microseconds and is floored to milliseconds
  (spot switched to µs in 2025; the rule is Binance's README's and freqtrade's).
- Booleans: `true`/`false` in any case (futures write lower case, spot `True`/`False`).
- Rows are sorted by their id (`agg_trade_id`, `id`, `update_id`, `open_time`, `calc_time`)
  and exact duplicates dropped, since some monthly aggTrades files interleave two id sequences
  or repeat rows (BPD #203, #288, #293). Two different rows with the same id are an error.
- Zero quantities (`aggTrades`/`trades` rows with quantity 0, e.g. ETHUSDT 2023-05, BPD #342)
  are **skipped** and counted in `ParsedFile.skipped_zero_qty`: they are archive defects, not
  trades: Binance's live tape never prints an empty trade, and one would be a fill of nothing
  for the venue and a volume-less tick moving the last price on the klines and tickers.
- A sibling `<file>.CHECKSUM` (`"<sha256>  <name>"`, as downloaded) is verified when present.

Accepted directory layouts, under the directory given to `discover` (searched recursively):

1. Binance's own tree, as the binance-public-data scripts save it:
   `[data/futures/um/]{daily,monthly}/<dataset>/<SYMBOL>/[<interval>/]<file>`.
2. Any other nesting, even all files in one folder: `aggTrades`, `trades`, `bookTicker` and
   `fundingRate` files name their dataset (`BTCUSDT-aggTrades-2026-09-01.zip`). Kline-family
   files are named by interval only (`BTCUSDT-1m-2026-09-01.zip`), so one of their parent
   folders must be named after the dataset (`klines`, `markPriceKlines`, `indexPriceKlines`,
   `premiumIndexKlines`), as in Binance's tree; a kline file without one is an error.

`indexPriceKlines` files are named by pair (spec §5.1); `FileInfo.symbol` then holds the pair.
Files of Binance datasets that carry no replayable prices (`bookDepth`, `metrics`,
`liquidationSnapshot`: spec §5.2) and non-data files (`*.CHECKSUM`, anything not `.zip`/`.csv`)
are skipped; any other `.zip`/`.csv` whose name is not Binance's is an error naming it.

`parse_csv` is the sans-I/O core (text in, rows out); `read_file` and `discover` read the disk.
"""

from __future__ import annotations

import enum
import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final, TypeAlias

from userstream.exceptions import ConfigurationError

__all__ = [
    "COLUMNS",
    "AggTradeRow",
    "BookTickerRow",
    "Dataset",
    "FileInfo",
    "FundingRateRow",
    "KlineRow",
    "ParsedFile",
    "ReplayFileError",
    "Row",
    "TradeRow",
    "discover",
    "identify",
    "parse_csv",
    "read_file",
    "row_key",
]


class ReplayFileError(ConfigurationError):
    """A replay file cannot be used; the message names the file and, for a bad row, its line."""

    def __init__(self, name: str, reason: str, line: int | None = None) -> None:
        super().__init__(f"{name}:{line}: {reason}" if line is not None else f"{name}: {reason}")
        self.name = name
        self.line = line
        self.reason = reason


class Dataset(enum.StrEnum):
    """A data.binance.vision USDⓈ-M dataset (the folder name under `daily/` or `monthly/`)."""

    AGG_TRADES = "aggTrades"
    TRADES = "trades"
    BOOK_TICKER = "bookTicker"
    KLINES = "klines"
    MARK_PRICE_KLINES = "markPriceKlines"
    INDEX_PRICE_KLINES = "indexPriceKlines"
    PREMIUM_INDEX_KLINES = "premiumIndexKlines"
    FUNDING_RATE = "fundingRate"

    @property
    def is_kline(self) -> bool:
        return self in _KLINE_DATASETS


_KLINE_DATASETS: Final = frozenset(
    {
        Dataset.KLINES,
        Dataset.MARK_PRICE_KLINES,
        Dataset.INDEX_PRICE_KLINES,
        Dataset.PREMIUM_INDEX_KLINES,
    }
)
# Binance datasets with no replayable prices (spec §5.1, §5.2): skipped, not refused.
_UNREPLAYED: Final = frozenset({"bookDepth", "metrics", "liquidationSnapshot"})
# Kline intervals in file names (spec §5.1: `1mo` in names where the API says `1M`).
_INTERVALS: Final = frozenset(
    {"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo"}
)
_NAME: Final = re.compile(
    r"^(?P<symbol>[A-Z0-9_]+)-(?P<kind>[A-Za-z0-9]+)-"
    r"(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?\.(?P<ext>zip|csv)$"
)
_MICROSECONDS_ABOVE: Final = 10**13


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a file's path says: its dataset, symbol (pair for index klines), interval for the
    kline families, and the period it covers (`YYYY-MM-DD` daily, `YYYY-MM` monthly)."""

    path: Path
    dataset: Dataset
    symbol: str
    interval: str | None
    period: str

    @property
    def monthly(self) -> bool:
        return len(self.period) == 7


@dataclass(frozen=True, slots=True)
class AggTradeRow:
    agg_trade_id: int
    price: Decimal
    qty: Decimal
    first_trade_id: int
    last_trade_id: int
    time_ms: int
    buyer_is_maker: bool


@dataclass(frozen=True, slots=True)
class TradeRow:
    trade_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    time_ms: int
    buyer_is_maker: bool


@dataclass(frozen=True, slots=True)
class BookTickerRow:
    update_id: int
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal
    transaction_time_ms: int
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class KlineRow:
    """One bar of any kline family; mark/index/premium bars have volumes 0 and `count` = the
    number of samples in the bar (spec §3.1)."""

    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time_ms: int
    quote_volume: Decimal
    count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal


@dataclass(frozen=True, slots=True)
class FundingRateRow:
    """A settled funding rate; the archive has no mark price (spec §5.1), the replay joins it."""

    calc_time_ms: int
    funding_interval_hours: int
    funding_rate: Decimal


Row: TypeAlias = AggTradeRow | TradeRow | BookTickerRow | KlineRow | FundingRateRow


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A file's rows in id order, without duplicates, and what was left out."""

    rows: tuple[Row, ...]
    duplicates_dropped: int
    skipped_zero_qty: int


# --- columns --------------------------------------------------------------------------------

_KLINE_COLUMNS: Final = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
]
# Each dataset's header since Binance added one (spec §5.1), which is also the column order of
# the headerless files.
COLUMNS: Final[dict[Dataset, list[str]]] = {
    Dataset.AGG_TRADES: [
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
    ],
    Dataset.TRADES: ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"],
    Dataset.BOOK_TICKER: [
        "update_id",
        "best_bid_price",
        "best_bid_qty",
        "best_ask_price",
        "best_ask_qty",
        "transaction_time",
        "event_time",
    ],
    Dataset.KLINES: _KLINE_COLUMNS,
    Dataset.MARK_PRICE_KLINES: _KLINE_COLUMNS,
    Dataset.INDEX_PRICE_KLINES: _KLINE_COLUMNS,
    Dataset.PREMIUM_INDEX_KLINES: _KLINE_COLUMNS,
    Dataset.FUNDING_RATE: ["calc_time", "funding_interval_hours", "last_funding_rate"],
}


class _BadValue(ValueError):
    pass


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _BadValue(f"{text!r} is not an integer") from None


def _time(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise _BadValue(f"{text!r} is not a timestamp")
    return value // 1000 if value > _MICROSECONDS_ABOVE else value


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _BadValue(f"{text!r} is not a decimal") from None
    if not value.is_finite():
        raise _BadValue(f"{text!r} is not a finite decimal")
    return value


def _amount(text: str) -> Decimal:
    value = _decimal(text)
    if value < 0:
        raise _BadValue(f"{text!r} is negative")
    return value


def _price(text: str) -> Decimal:
    value = _decimal(text)
    if value <= 0:
        raise _BadValue(f"price {text!r} is not positive")
    return value


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise _BadValue(f"{text!r} is not a boolean")


# A builder takes a row's values in `COLUMNS` order.
_Builder: TypeAlias = Callable[[list[str]], Row]


def _agg_trade(v: list[str]) -> Row:
    return AggTradeRow(
        _int(v[0]),
        _price(v[1]),
        _amount(v[2]),
        _int(v[3]),
        _int(v[4]),
        _time(v[5]),
        _bool(v[6]),
    )


def _trade(v: list[str]) -> Row:
    return TradeRow(
        _int(v[0]),
        _price(v[1]),
        _amount(v[2]),
        _amount(v[3]),
        _time(v[4]),
        _bool(v[5]),
    )


def _book_ticker(v: list[str]) -> Row:
    return BookTickerRow(
        _int(v[0]),
        _price(v[1]),
        _amount(v[2]),
        _price(v[3]),
        _amount(v[4]),
        _time(v[5]),
        _time(v[6]),
    )


def _kline(v: list[str]) -> Row:
    # Premium-index bars are signed ratios (spec §3.1), so OHLC are decimals, not prices.
    return KlineRow(
        _time(v[0]),
        _decimal(v[1]),
        _decimal(v[2]),
        _decimal(v[3]),
        _decimal(v[4]),
        _amount(v[5]),
        _time(v[6]),
        _amount(v[7]),
        _int(v[8]),
        _amount(v[9]),
        _amount(v[10]),
    )


def _funding_rate(v: list[str]) -> Row:
    return FundingRateRow(
        _time(v[0]),
        _int(v[1]),
        _decimal(v[2]),
    )


_BUILDERS: Final[dict[Dataset, _Builder]] = {
    Dataset.AGG_TRADES: _agg_trade,
    Dataset.TRADES: _trade,
    Dataset.BOOK_TICKER: _book_ticker,
    Dataset.KLINES: _kline,
    Dataset.MARK_PRICE_KLINES: _kline,
    Dataset.INDEX_PRICE_KLINES: _kline,
    Dataset.PREMIUM_INDEX_KLINES: _kline,
    Dataset.FUNDING_RATE: _funding_rate,
}


def row_key(row: Row) -> int:
    """The id a row is ordered and deduplicated by."""
    if isinstance(row, AggTradeRow):
        return row.agg_trade_id
    if isinstance(row, TradeRow):
        return row.trade_id
    if isinstance(row, BookTickerRow):
        return row.update_id
    if isinstance(row, KlineRow):
        return row.open_time_ms
    return row.calc_time_ms


def _is_empty_trade(row: Row) -> bool:
    return isinstance(row, AggTradeRow | TradeRow) and row.qty == 0


def parse_csv(text: str, dataset: Dataset, name: str) -> ParsedFile:
    """Parse one CSV file's text of `dataset`; `name` is used in error messages.

    Raises:
        ReplayFileError: a header lacks a needed column, or a row is malformed, or two
            different rows share an id; the message names the file and the line.
    """
    lines = text.splitlines()
    expected = COLUMNS[dataset]
    first_data_line = 1
    index = {column: position for position, column in enumerate(expected)}
    if lines and not lines[0][:1].isdigit():
        header = [column.strip().lower() for column in lines[0].split(",")]
        missing = [column for column in expected if column != "ignore" and column not in header]
        if missing:
            raise ReplayFileError(
                name,
                f"header lacks {', '.join(missing)} (a {dataset} file has {','.join(expected)})",
                1,
            )
        index = {column: position for position, column in enumerate(header)}
        first_data_line = 2
    positions = [index.get(column, -1) for column in expected]
    width = max(positions) + 1
    build = _BUILDERS[dataset]
    keyed: list[tuple[int, int, Row]] = []
    skipped_zero_qty = 0
    for line_no, line in enumerate(lines[first_data_line - 1 :], start=first_data_line):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) < width:
            raise ReplayFileError(
                name, f"{len(fields)} columns where a {dataset} row has {len(expected)}", line_no
            )
        try:
            row = build([fields[position].strip() for position in positions])
        except _BadValue as exc:
            raise ReplayFileError(name, str(exc), line_no) from None
        if _is_empty_trade(row):
            skipped_zero_qty += 1
            continue
        keyed.append((row_key(row), line_no, row))
    keyed.sort(key=lambda item: (item[0], item[1]))
    rows: list[Row] = []
    duplicates = 0
    previous: tuple[int, int, Row] | None = None
    for item in keyed:
        if previous is not None and previous[0] == item[0]:
            if previous[2] != item[2]:
                raise ReplayFileError(
                    name,
                    f"id {item[0]} appears at line {previous[1]} with different values",
                    item[1],
                )
            duplicates += 1
            continue
        rows.append(item[2])
        previous = item
    return ParsedFile(tuple(rows), duplicates, skipped_zero_qty)


def identify(path: Path, root: Path | None = None) -> FileInfo | None:
    """What `path`'s name (and, for kline files, a parent folder below `root`) says it holds;
    None for a file that is not replay data (see the module docstring).

    Raises:
        ReplayFileError: a `.zip`/`.csv` whose name is not Binance's, or a kline file with no
            dataset folder above it.
    """
    name = path.name
    if not name.endswith((".zip", ".csv")) or name.startswith("."):
        return None
    match = _NAME.match(name)
    if match is None:
        raise ReplayFileError(
            str(path), "not a Binance file name (<SYMBOL>-<dataset or interval>-<date>.zip|csv)"
        )
    kind = match["kind"]
    period = f"{match['year']}-{match['month']}" + (f"-{match['day']}" if match["day"] else "")
    if kind in _UNREPLAYED:
        return None
    interval: str | None = None
    if kind in _INTERVALS:
        interval = kind
        parents = path.parent.relative_to(root).parts if root is not None else path.parent.parts
        folders = [Dataset(part) for part in reversed(parents) if part in _KLINE_DATASETS]
        if not folders:
            raise ReplayFileError(
                str(path),
                "a kline file must sit under a folder named klines, markPriceKlines, "
                "indexPriceKlines or premiumIndexKlines (its name gives only the interval)",
            )
        dataset = folders[0]
    else:
        try:
            dataset = Dataset(kind)
        except ValueError:
            raise ReplayFileError(str(path), f"unknown dataset {kind!r}") from None
        if dataset.is_kline:
            raise ReplayFileError(str(path), "kline files are named by interval, not dataset")
    return FileInfo(path, dataset, match["symbol"], interval, period)


def discover(directory: Path) -> list[FileInfo]:
    """Every replay file under `directory`, in path order.

    Raises:
        ReplayFileError: the directory does not exist, or a file name is not Binance's.
    """
    if not directory.is_dir():
        raise ReplayFileError(str(directory), "not a directory")
    found: list[FileInfo] = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            info = identify(path, directory)
            if info is not None:
                found.append(info)
    return found


def _verify_checksum(path: Path, data: bytes) -> None:
    checksum = path.with_name(path.name + ".CHECKSUM")
    if not checksum.exists():
        return
    expected = checksum.read_text().split()
    if not expected or hashlib.sha256(data).hexdigest() != expected[0].lower():
        raise ReplayFileError(str(path), f"sha256 does not match {checksum.name}")


def _text(path: Path, data: bytes) -> tuple[str, str]:
    """The CSV text of a `.csv`, or of the one CSV member of a `.zip` (Binance zips hold one)."""
    if path.suffix == ".csv":
        return str(path), _decode(str(path), data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ReplayFileError(str(path), f"not a zip archive: {exc}") from None
    with archive:
        members = [m for m in archive.namelist() if m.endswith(".csv")]
        if len(members) != 1:
            raise ReplayFileError(
                str(path), f"the archive holds {len(members)} .csv files where Binance's hold one"
            )
        name = f"{path}!{members[0]}"
        return name, _decode(name, archive.read(members[0]))


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # a BOM (spreadsheet exports) is not a header byte
    except UnicodeDecodeError as exc:
        raise ReplayFileError(name, f"not UTF-8 text: {exc}") from None


def read_file(info: FileInfo) -> ParsedFile:
    """Read and parse one file.

    Raises:
        ReplayFileError: it cannot be read, fails its checksum, or a row is malformed.
    """
    try:
        data = info.path.read_bytes()
    except OSError as exc:
        raise ReplayFileError(str(info.path), f"cannot read: {exc}") from None
    _verify_checksum(info.path, data)
    name, text = _text(info.path, data)
    return parse_csv(text, info.dataset, name)
