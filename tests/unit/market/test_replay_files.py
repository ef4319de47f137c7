"""The historical-file parser on every variant users download (market-data spec §5.1)."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from userstream.market.replay_files import (
    AggTradeRow,
    Dataset,
    FundingRateRow,
    ReplayFileError,
    TradeRow,
    discover,
    identify,
    parse_csv,
    read_file,
)
from userstream.market.replay_sample import Layout, Sample, write_sample

AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"


def _expected(sample: Sample, dataset: Dataset) -> list[object]:
    if dataset is Dataset.TRADES:
        return list(sample.trades)
    if dataset is Dataset.AGG_TRADES:
        return list(sample.agg_trades)
    if dataset is Dataset.BOOK_TICKER:
        return list(sample.book_tickers)
    if dataset is Dataset.FUNDING_RATE:
        return list(sample.funding_rates)
    return list(sample.klines[dataset])


@pytest.mark.parametrize("layout", ["binance", "flat"])
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "csv"])
@pytest.mark.parametrize("headers", [True, False], ids=["header", "no-header"])
@pytest.mark.parametrize("microseconds", [False, True], ids=["ms", "us"])
def test_every_variant_reads_back_exactly_what_was_written(
    tmp_path: Path, layout: Layout, zipped: bool, headers: bool, microseconds: bool
) -> None:
    sample = write_sample(
        tmp_path, headers=headers, zipped=zipped, microseconds=microseconds, layout=layout
    )
    found = discover(tmp_path)
    assert sorted(info.dataset for info in found) == sorted(Dataset)
    for info in found:
        assert info.symbol == "BTCUSDT"
        assert info.interval == ("1m" if info.dataset.is_kline else None)
        assert info.monthly == (info.dataset is Dataset.FUNDING_RATE)
        parsed = read_file(info)
        assert list(parsed.rows) == _expected(sample, info.dataset), info.path
        assert parsed.duplicates_dropped == 0


def test_interleaved_and_duplicated_rows_come_out_in_id_order_once() -> None:
    rows = [
        "5,100.1,0.5,50,50,1000,true",
        "2,100.0,1.0,20,21,990,false",
        "6,100.2,0.1,51,51,1001,false",
        "2,100.0,1.0,20,21,990,false",
        "3,100.0,0.2,22,22,995,TRUE",
        "5,100.1,0.5,50,50,1000,true",
    ]
    parsed = parse_csv("\n".join([AGG_HEADER, *rows]) + "\n", Dataset.AGG_TRADES, "f.csv")
    assert [row.agg_trade_id for row in parsed.rows if isinstance(row, AggTradeRow)] == [2, 3, 5, 6]
    assert parsed.duplicates_dropped == 2
    assert parsed.rows[0] == AggTradeRow(2, Decimal("100.0"), Decimal("1.0"), 20, 21, 990, False)


def test_booleans_any_case_and_microseconds_floor_to_milliseconds() -> None:
    text = "1,10.5,2,21,1788278220008123,True\n2,10.5,1,10.5,1788278220009999,FALSE\n"
    parsed = parse_csv(text, Dataset.TRADES, "t.csv")
    assert parsed.rows == (
        TradeRow(1, Decimal("10.5"), Decimal("2"), Decimal("21"), 1788278220008, True),
        TradeRow(2, Decimal("10.5"), Decimal("1"), Decimal("10.5"), 1788278220009, False),
    )


def test_zero_quantity_trades_are_skipped_and_counted() -> None:
    text = "\n".join(
        [AGG_HEADER, "1,100,0,1,1,10,true", "2,100,0.000,2,2,11,true", "3,100,1,3,3,12,false"]
    )
    parsed = parse_csv(text, Dataset.AGG_TRADES, "z.csv")
    assert [row.agg_trade_id for row in parsed.rows if isinstance(row, AggTradeRow)] == [3]
    assert parsed.skipped_zero_qty == 2


def test_header_columns_are_found_by_name() -> None:
    text = "last_funding_rate,calc_time,funding_interval_hours\n0.0001,1788249600000,8\n"
    parsed = parse_csv(text, Dataset.FUNDING_RATE, "f.csv")
    assert parsed.rows == (FundingRateRow(1788249600000, 8, Decimal("0.0001")),)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            f"{AGG_HEADER}\n1,100,1,1,1,10,true\n2,100,1,2,2,11,maybe\n",
            3,
            "'maybe' is not a boolean",
        ),
        (f"{AGG_HEADER}\n1,abc,1,1,1,10,true\n", 2, "'abc' is not a decimal"),
        ("1,100,1,1,1,10,true\n2,100,1,2\n", 2, "4 columns where a aggTrades row has 7"),
        ("1,100,-1,1,1,10,true\n", 1, "'-1' is negative"),
        ("1,0,1,1,1,10,true\n", 1, "price '0' is not positive"),
        ("1,100,1,1,1,x10,true\n", 1, "'x10' is not an integer"),
        ("agg_trade_id,price,quantity\n1,100,1\n", 1, "header lacks first_trade_id"),
        ("1,100,1,1,1,10,true\n1,100,2,1,1,10,true\n", 2, "id 1 appears at line 1 with different"),
    ],
)
def test_a_bad_row_is_an_error_naming_the_file_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(ReplayFileError, match=reason) as caught:
        parse_csv(text, Dataset.AGG_TRADES, "BTCUSDT-aggTrades-2026-09-01.csv")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"BTCUSDT-aggTrades-2026-09-01.csv:{line}: ")


def test_a_bad_row_inside_a_zip_names_the_archive_and_member(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-trades-2026-09-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "BTCUSDT-trades-2026-09-01.csv", "1,10,1,10,100,true\n2,10,1,10,oops,true\n"
        )
    info = identify(path, tmp_path)
    assert info is not None
    with pytest.raises(ReplayFileError) as caught:
        read_file(info)
    assert str(caught.value) == f"{path}!BTCUSDT-trades-2026-09-01.csv:2: 'oops' is not an integer"


@pytest.mark.parametrize(
    ("relative", "dataset", "symbol", "interval", "period"),
    [
        ("BTCUSDT-aggTrades-2026-09-01.zip", Dataset.AGG_TRADES, "BTCUSDT", None, "2026-09-01"),
        ("x/BTCUSDT-trades-2026-09.csv", Dataset.TRADES, "BTCUSDT", None, "2026-09"),
        ("BTCUSDT-bookTicker-2024-03-30.zip", Dataset.BOOK_TICKER, "BTCUSDT", None, "2024-03-30"),
        ("ETHUSDT-fundingRate-2026-08.zip", Dataset.FUNDING_RATE, "ETHUSDT", None, "2026-08"),
        (
            "data/futures/um/monthly/klines/BTCUSDT/1mo/BTCUSDT-1mo-2026-08.zip",
            Dataset.KLINES,
            "BTCUSDT",
            "1mo",
            "2026-08",
        ),
        (
            "markPriceKlines/BTCUSDT-1m-2026-09-01.csv",
            Dataset.MARK_PRICE_KLINES,
            "BTCUSDT",
            "1m",
            "2026-09-01",
        ),
        (
            "daily/indexPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2026-09-01.zip",
            Dataset.INDEX_PRICE_KLINES,
            "BTCUSDT",
            "1m",
            "2026-09-01",
        ),
        (
            "premiumIndexKlines/BTCUSDT/5m/BTCUSDT-5m-2026-09-01.zip",
            Dataset.PREMIUM_INDEX_KLINES,
            "BTCUSDT",
            "5m",
            "2026-09-01",
        ),
    ],
)
def test_names_and_layouts(
    relative: str, dataset: Dataset, symbol: str, interval: str | None, period: str
) -> None:
    root = Path("/replay")
    info = identify(root / relative, root)
    assert info is not None
    assert (info.dataset, info.symbol, info.interval, info.period) == (
        dataset,
        symbol,
        interval,
        period,
    )


@pytest.mark.parametrize(
    "name",
    ["BTCUSDT-bookDepth-2026-09-01.zip", "BTCUSDT-metrics-2026-09-01.zip", "README.md", ".x.csv"],
)
def test_files_without_replayable_prices_are_skipped(name: str) -> None:
    assert identify(Path("/replay") / name, Path("/replay")) is None


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("BTCUSDT-1m-2026-09-01.zip", "must sit under a folder named klines"),
        ("BTCUSDT/1m/BTCUSDT-1m-2026-09-01.zip", "must sit under a folder named klines"),
        ("BTCUSDT-aggTrades.zip", "not a Binance file name"),
        ("BTCUSDT-quotes-2026-09-01.zip", "unknown dataset 'quotes'"),
        ("BTCUSDT-klines-2026-09-01.zip", "named by interval"),
    ],
)
def test_names_that_cannot_be_placed_are_errors(relative: str, reason: str) -> None:
    with pytest.raises(ReplayFileError, match=reason):
        identify(Path("/replay") / relative, Path("/replay"))


def test_the_root_folder_name_does_not_count_as_a_dataset_folder() -> None:
    root = Path("/data/klines")
    with pytest.raises(ReplayFileError, match="must sit under"):
        identify(root / "BTCUSDT-1m-2026-09-01.zip", root)


def test_a_checksum_that_does_not_match_is_refused(tmp_path: Path) -> None:
    write_sample(tmp_path, datasets=(Dataset.AGG_TRADES,))
    [info] = discover(tmp_path)
    assert info.path.with_name(info.path.name + ".CHECKSUM").exists()
    read_file(info)
    info.path.with_name(info.path.name + ".CHECKSUM").write_text(f"{'0' * 64}  {info.path.name}\n")
    with pytest.raises(ReplayFileError, match="sha256 does not match"):
        read_file(info)


def test_a_zip_must_hold_exactly_one_csv(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-trades-2026-09-01.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "1,10,1,10,100,true\n")
        archive.writestr("b.csv", "2,10,1,10,100,true\n")
    path.write_bytes(buffer.getvalue())
    info = identify(path, tmp_path)
    assert info is not None
    with pytest.raises(ReplayFileError, match=r"holds 2 \.csv files"):
        read_file(info)


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayFileError, match="not a directory"):
        discover(tmp_path / "absent")


def test_the_sample_script_writes_files_the_parser_reads(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[3] / "scripts" / "make_sample_market"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "--no-header", "--csv", "--flat"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "BTCUSDT" in done.stdout
    found = discover(tmp_path)
    assert sorted(info.dataset for info in found) == sorted(Dataset)
    assert all(info.path.suffix == ".csv" for info in found)
    assert all(read_file(info).rows for info in found)


def test_a_byte_order_mark_does_not_hide_the_header(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2026-09-01.csv"
    path.write_bytes(("\ufeff" + AGG_HEADER + "\n1,100,1,1,1,10,true\n").encode())
    info = identify(path, tmp_path)
    assert info is not None
    assert read_file(info).rows == (AggTradeRow(1, Decimal(100), Decimal(1), 1, 1, 10, True),)
