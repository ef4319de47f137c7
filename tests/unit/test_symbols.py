"""Loading the symbol table: the packaged default and `serve --symbols FILE`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from userstream.exceptions import ConfigurationError
from userstream.symbols import load_symbol_table


def test_packaged_default() -> None:
    table = load_symbol_table()
    assert [s.symbol for s in table.symbols] == [
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
        "BNBUSDT",
        "XRPUSDT",
        "DOGEUSDT",
    ]
    assert [a.asset for a in table.assets] == ["USDT", "BTC", "BNB", "ETH", "USDC"]


def test_a_bare_list_lists_the_packaged_assets(tmp_path: Path) -> None:
    btc = json.loads(
        (Path(__file__).parents[1] / "fixtures/exchange_info/fapi_v1_exchangeInfo.json").read_text()
    )["symbols"][0]
    path = tmp_path / "symbols.json"
    path.write_text(json.dumps([btc]))
    table = load_symbol_table(str(path))
    assert [s.symbol for s in table.symbols] == ["BTCUSDT"]
    assert table.assets == load_symbol_table().assets


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"missing\.json: cannot read symbols file"):
        load_symbol_table(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    with pytest.raises(ConfigurationError, match=r"bad\.json: Expected `object`"):
        load_symbol_table(str(bad))
