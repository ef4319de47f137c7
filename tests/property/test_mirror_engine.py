"""The mirror's merge against the venue's own engine (sans-I/O, hypothesis).

Random trading drives the engine (`tests/property/test_engine_fold.py`'s steps: orders, fills
against price moves, cancels, amends, leverage and margin-type changes, transfers). At a
random step the engine's read views are taken as the REST snapshot (`/fapi/v3/account`
assets, `/fapi/v3/positionRisk` rows, `/fapi/v1/openOrders`, `symbolConfig`), and the
client's fence is any earlier point of the account's event stream. The snapshot merged with
every event after the fence must equal, at the end, the engine's own state: the engine's
`updateTime` conventions and the merge rules agree.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.property.test_engine_fold import ACCOUNTS, Harness, Step, steps
from userstream.client.book import Book
from userstream.client.mirror_views import differences
from userstream.client.rest import Snapshot
from userstream.protocol.events import Event
from userstream.protocol.snapshot import (
    AccountConfig,
    AccountInfo,
    AssetRow,
    OpenOrder,
    PositionRisk,
    SymbolConfig,
)
from userstream.venue import Deposit, Engine

ACCOUNT = ACCOUNTS[0]


class Recording(Harness):
    """The engine harness, keeping every event each account received, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.received: dict[int, list[Event]] = {a: [] for a in ACCOUNTS}

    def deliver(self, account: int, events: list[Event]) -> None:
        super().deliver(account, events)
        self.received[account].extend(events)


def rest_snapshot(engine: Engine, account: int) -> Snapshot:
    """The engine's read views in the shape the mirror decodes from REST."""
    dual, multi = engine.account_flags(account)
    return Snapshot(
        taken_ms=0,
        account=AccountInfo(
            assets=tuple(
                AssetRow(
                    asset=b.asset,
                    wallet_balance=b.wallet_balance,
                    cross_wallet_balance=b.cross_wallet_balance,
                    update_time=b.update_time,
                )
                for b in engine.balances(account)
            )
        ),
        positions=tuple(
            PositionRisk(
                symbol=p.symbol,
                position_side=p.position_side,
                position_amount=p.position_amt,
                entry_price=p.entry_price,
                breakeven_price=p.breakeven_price,
                mark_price=p.mark_price,
                isolated_wallet=p.isolated_wallet,
                update_time=p.update_time,
            )
            for p in engine.positions(account)
            if p.position_amt
        ),
        orders=tuple(
            OpenOrder(
                symbol=o.symbol,
                order_id=o.order_id,
                client_order_id=o.client_order_id,
                side=o.side,
                position_side=o.position_side,
                order_type=o.order_type,
                time_in_force=o.time_in_force,
                status=o.status,
                price=o.price,
                average_price=o.avg_price,
                original_quantity=o.orig_qty,
                executed_quantity=o.executed_qty,
                reduce_only=o.reduce_only,
                good_till_date=o.good_till_date,
                price_match=o.price_match,
                self_trade_prevention_mode=o.self_trade_prevention_mode,
                update_time=o.update_time,
            )
            for o in engine.open_orders(account)
        ),
        algo_orders=None,
        symbol_config=tuple(
            SymbolConfig(symbol=c.symbol, margin_type=c.margin_type, leverage=c.leverage)
            for c in engine.symbol_config(account)
        ),
        account_config=AccountConfig(multi_assets_margin=multi, dual_side_position=dual),
        weight=0,
    )


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(st.tuples(steps, st.booleans()), min_size=5, max_size=60),
    st.integers(0, 60),
    st.floats(0, 1),
)
def test_a_snapshot_of_the_engine_plus_raced_events_equals_the_engine(
    drawn: list[tuple[Step, bool]], taken_at: int, fence_at: float
) -> None:
    # One account trades; many steps share the millisecond of the one before, and so does
    # the step right after the snapshot: the snapshot sits inside a millisecond.
    taken = taken_at % len(drawn)
    sequence = [
        replace(step, account=ACCOUNT, dt=0 if same_ms or i == taken else step.dt)
        for i, (step, same_ms) in enumerate(drawn)
    ]
    harness = Recording()
    harness.run(Step(ACCOUNT, Deposit(asset="USDT", amount=Decimal(20_000)), None, 1))
    snapshot: Snapshot | None = None
    seen = 0
    for i, step in enumerate(sequence):
        if i == taken:
            snapshot = rest_snapshot(harness.engine, ACCOUNT)
            seen = len(harness.received[ACCOUNT])
        harness.run(step)
    assert snapshot is not None
    events = harness.received[ACCOUNT]
    fence = int(seen * fence_at)
    live = Book()
    for event in events:
        live.apply(event)
    merged, _ = Book.merged(snapshot, events[fence:], like=live)
    assert merged.fold.state == harness.engine.snapshot(ACCOUNT)
    at_end = Book.from_snapshot(rest_snapshot(harness.engine, ACCOUNT), like=merged)
    assert differences(merged.state(), at_end.state()) == []
