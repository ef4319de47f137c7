"""Incremental saves (venue/journal.py) restore the state a full export would, whatever the
commands, fills, expiries and price moves between saves."""

from __future__ import annotations

from decimal import Decimal

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.property.test_engine_fold import ACCOUNTS, Harness, Step, steps
from userstream.venue import Deposit
from userstream.venue.journal import Row, StateJournal, restore


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(steps, st.booleans()), min_size=1, max_size=60))
def test_saved_rows_and_live_export_restore_the_full_state(
    sequence: list[tuple[Step, bool]],
) -> None:
    harness = Harness()
    journal = StateJournal(harness.engine.export_state(), stored=True)
    live = b""
    orders: dict[int, Row] = {}
    trades: dict[int, Row] = {}

    def save() -> None:
        nonlocal live
        batch = journal.changes()
        live = batch.live
        for row in batch.orders:
            assert row.id not in orders  # a final order is written once
            orders[row.id] = row
        for row in batch.trades:
            assert row.id not in trades
            trades[row.id] = row

    for account in ACCOUNTS:
        harness.run(Step(account, Deposit(asset="USDT", amount=Decimal(20_000)), None, 1))
    for step, save_now in sequence:
        harness.run(step)
        if save_now:
            save()
    save()
    state = restore(live, sorted(orders.values()), sorted(trades.values()))
    assert msgspec.json.encode(state) == harness.engine.encode_state()
