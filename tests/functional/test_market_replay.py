"""A replayed directory served by a real server (issue 11: "a replayed file's trades come out
exactly as they went in"), on a virtual clock."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.conftest import START_MS, running_harness
from tests.functional.market_helpers import get_json, market_harness
from userstream.market.replay import ReplayMarket
from userstream.market.replay_files import Dataset
from userstream.market.replay_sample import write_sample
from userstream.symbols import load_symbol_table


async def test_replayed_trades_come_out_of_rest_trades_exactly_as_they_went_in(
    tmp_path: Path,
) -> None:
    sample = write_sample(
        tmp_path / "files", headers=False, microseconds=True, datasets=(Dataset.TRADES,)
    )
    start = START_MS + 1_000  # shown after the server's first advance
    source = ReplayMarket(tmp_path / "files", load_symbol_table().symbols, start_ms=start)
    first = sample.trades[0].time_ms
    served: dict[int, dict[str, object]] = {}
    async with market_harness(tmp_path / "data", source) as server:
        for _ in range(7):
            await server.advance(60_000)
            status, body, _ = await get_json(server, "/fapi/v1/trades?symbol=BTCUSDT&limit=1000")
            assert status == 200
            served.update({trade["id"]: trade for trade in body})
    assert [
        (t["id"], Decimal(str(t["price"])), Decimal(str(t["qty"])), t["time"], t["isBuyerMaker"])
        for t in served.values()
    ] == [
        (r.trade_id, r.price, r.qty, start + r.time_ms - first, r.buyer_is_maker)
        for r in sample.trades
    ]
    assert all(
        str(t["price"]) == f"{r.price:.2f}"
        for t, r in zip(served.values(), sample.trades, strict=True)
    )


async def test_a_replayed_aggtrades_file_comes_out_of_rest_aggtrades_exactly(
    tmp_path: Path,
) -> None:
    sample = write_sample(tmp_path / "files", zipped=False, datasets=(Dataset.AGG_TRADES,))
    start = START_MS + 1_000
    source = ReplayMarket(tmp_path / "files", load_symbol_table().symbols, start_ms=start)
    first = sample.agg_trades[0].time_ms
    served: dict[int, dict[str, object]] = {}
    async with market_harness(tmp_path / "data", source) as server:
        for _ in range(7):
            await server.advance(60_000)
            status, body, _ = await get_json(server, "/fapi/v1/aggTrades?symbol=BTCUSDT&limit=1000")
            assert status == 200
            served.update({agg["a"]: agg for agg in body})
    assert list(served.values()) == [
        {
            "a": r.agg_trade_id,
            "p": f"{r.price:.2f}",
            "q": f"{r.qty:.3f}",
            "nq": f"{r.qty:.3f}",
            "f": r.first_trade_id,
            "l": r.last_trade_id,
            "T": start + r.time_ms - first,
            "m": r.buyer_is_maker,
        }
        for r in sample.agg_trades
    ]


async def test_serve_market_replay_spec_serves_the_directory(tmp_path: Path) -> None:
    sample = write_sample(tmp_path / "files", datasets=(Dataset.TRADES, Dataset.FUNDING_RATE))
    async with running_harness(
        tmp_path / "data", market=f"replay:{tmp_path / 'files'}?speed=10"
    ) as server:
        await server.advance(60_000)  # ten file minutes: the whole sample
        status, body, _ = await get_json(server, "/fapi/v1/trades?symbol=BTCUSDT&limit=1000")
        assert status == 200
        assert [t["id"] for t in body] == [r.trade_id for r in sample.trades][-1000:]
        status, body, _ = await get_json(server, "/fapi/v1/fundingRate?symbol=BTCUSDT")
        assert status == 200
        settled = next(r for r in sample.funding_rates if r.calc_time_ms > sample.trades[0].time_ms)
        assert [Decimal(f["fundingRate"]) for f in body] == [settled.funding_rate]
