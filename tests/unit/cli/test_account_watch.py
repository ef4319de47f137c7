"""`userstream account watch`'s view: what one screen shows for a mirror's state."""

from __future__ import annotations

from rich.console import Console

from tests.unit.client.mirror_events import account_event, order_event
from userstream import AccountMirror
from userstream.cli.account_watch import render, snapshot_json


def test_the_view_shows_balances_positions_orders_fills_and_health() -> None:
    mirror = AccountMirror("k" * 64, "s" * 64)
    mirror.apply(order_event(1, time=10, client_id="resting", price="95000"))
    mirror.apply(
        order_event(
            2,
            time=11,
            x="TRADE",
            status="FILLED",
            filled="1",
            last="1",
            trade_id=5,
            client_id="taken",
        )
    )
    mirror.apply(account_event(time=11, wallet="999.5", position="1", entry="100"))
    console = Console(record=True, width=160)
    console.print(render(mirror))
    screen = console.export_text()
    assert "999.5" in screen  # balance
    assert "BTCUSDT" in screen  # position
    assert "BOTH" in screen
    assert "resting" in screen  # open order
    assert "FILLED" in screen  # recent fill
    assert "resyncing" in screen  # no snapshot merged yet: the health line says so


def test_json_snapshot_has_amounts_as_strings() -> None:
    mirror = AccountMirror("k" * 64, "s" * 64)
    mirror.apply(account_event(time=11, wallet="999.50", position="1"))
    text = snapshot_json(mirror).decode()
    assert '"wallet_balance":"999.50"' in text
