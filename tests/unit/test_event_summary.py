"""Every event type gets a readable one-line summary with its key facts."""

from __future__ import annotations

import pytest

from tests.conftest import EVENT_FIXTURES
from userstream.event_summary import summarize
from userstream.protocol.codec import decode_event

EXPECTED = {
    "order_trade_update_real_2026": "SOLUSDT BUY MARKET NEW/NEW 0/0.1 · order 199033476993 "
    "SOLUSDT_BOTH_1771856732181_1",
    "trade_lite_real_2026": "SOLUSDT BUY 0.1 @ 80.19 · order 199033476993 trade 3181138052",
    "account_update_real_2026": "ORDER · USDT wallet 1.73744723 · SOLUSDT BOTH 0.1 @ 80.19 uPnL 0",
    "margin_call": "ETHUSDT LONG 1.327 mark 187.17127 maint 1.614445 uPnL -1.166074",
    "account_config_update_leverage": "BTCUSDT leverage 25x",
    "account_config_update_multi_assets": "multi-assets mode on",
    "strategy_update": "GRID 176054594 BTCUSDT NEW op 8007",
    "grid_update": "GRID 176057039 BTCUSDT WORKING realized -0.00300716 matched 0",
    "algo_update": "BNBUSDT SELL TAKE_PROFIT 0.01 trigger 750 CANCELED (Reduce Only reject) "
    "· algo 2148719",
}


@pytest.mark.parametrize(("name", "line"), sorted(EXPECTED.items()))
def test_summary(name: str, line: str) -> None:
    event = decode_event((EVENT_FIXTURES / f"{name}.json").read_bytes())
    assert summarize(event) == line


def test_a_fill_shows_quantity_price_and_fee() -> None:
    event = decode_event((EVENT_FIXTURES / "order_trade_update_doc.json").read_bytes())
    assert summarize(event).startswith("BTCUSDT SELL TRAILING_STOP_MARKET NEW/NEW 0/0.001")


def test_every_fixture_has_a_summary() -> None:
    for path in EVENT_FIXTURES.glob("*.json"):
        assert summarize(decode_event(path.read_bytes()))


def test_balance_changes_are_signed() -> None:
    event = decode_event((EVENT_FIXTURES / "account_update_doc.json").read_bytes())
    line = summarize(event)
    assert "USDT wallet 122624.12345678 (+50.12345678)" in line
    assert "BUSD wallet 1 (-49.12345678)" in line
