"""`serve --market replay:DIR[?speed=N]` (issue 11 item 1, replay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from userstream.exceptions import ConfigurationError
from userstream.market.replay import ReplayMarket
from userstream.market.replay_files import Dataset
from userstream.market.replay_sample import write_sample
from userstream.market.types import Trade
from userstream.server.market import open_market_source
from userstream.symbols import load_symbol_table

NOW = 1_900_000_000_000


@pytest.mark.parametrize(("query", "speed"), [("", 1), ("?speed=10", 10), ("?speed=1/2", 0.5)])
def test_replay_spec_opens_the_directory_at_its_speed(
    tmp_path: Path, query: str, speed: float
) -> None:
    sample = write_sample(tmp_path, datasets=(Dataset.TRADES,))
    source = open_market_source(f"replay:{tmp_path}{query}", load_symbol_table(), NOW)
    assert isinstance(source, ReplayMarket)
    assert list(source.symbols) == ["BTCUSDT"]
    trades = [u for u in source.advance(NOW + 2_000) if isinstance(u, Trade)]
    reached = sample.trades[0].time_ms + 2_000 * speed
    assert [t.trade_id for t in trades] == [
        r.trade_id for r in sample.trades if r.time_ms <= reached
    ]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("", "needs a directory"),
        ("{dir}?speed=fast", "speed 'fast' is not a number"),
        ("{dir}?speed=0", "speed must be positive"),
        ("{dir}?pace=2", "unknown option 'pace'"),
        ("{dir}/absent", "not a directory"),
    ],
)
def test_bad_replay_specs_are_refused_with_a_reason(
    tmp_path: Path, argument: str, message: str
) -> None:
    write_sample(tmp_path, datasets=(Dataset.TRADES,))
    with pytest.raises(ConfigurationError, match=message):
        open_market_source(f"replay:{argument.format(dir=tmp_path)}", load_symbol_table(), NOW)
