"""The engine's per-symbol open-order sums (venue.ledger.OpenOrderSums, kept up to date as
orders open, fill, amend and close) equal a fresh summation over the open orders after every
step of random sequences, before and after an export and restore."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.property.test_engine_fold import ACCOUNTS, SYMBOLS, Harness, Step, steps
from tests.venue_fixtures import venue_symbols
from userstream.protocol.events import Side
from userstream.venue import Deposit, Engine
from userstream.venue.state import Order

D = Decimal


def _summed(
    orders: list[Order],
) -> tuple[int, int, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]:
    """`OpenOrderSums.key()` the plain way: one pass over the orders."""
    bids = asks = buy_qty = buy_notional = sell_qty = sell_notional = D(0)
    for order in orders:
        notional = order.remaining * order.price
        if order.side is Side.BUY:
            bids += notional
            if not order.reduce_only:
                buy_qty += order.remaining
                buy_notional += notional
        else:
            asks += notional
            if not order.reduce_only:
                sell_qty += order.remaining
                sell_notional += notional
    reduce_only = sum(1 for order in orders if order.reduce_only)
    return (
        len(orders),
        reduce_only,
        bids,
        asks,
        buy_qty,
        buy_notional,
        sell_qty,
        sell_notional,
    )


def _check_sums(engine: Engine) -> None:
    for account in ACCOUNTS:
        for symbol in SYMBOLS:
            orders = list(engine._open_on(account, symbol).values())
            assert engine._sums_on(account, symbol).key() == _summed(orders)
            # The duplicate client id check (-4116) answers as a scan of the open orders
            # would, for every id the account has used on the symbol.
            state = engine._account(account)
            used = {o.client_order_id for o in state.orders.values() if o.symbol == symbol}
            for client_order_id in used:
                carried = any(o.client_order_id == client_order_id for o in orders)
                assert engine._client_id_open(state, symbol, client_order_id) == carried


class SumsHarness(Harness):
    def check(self) -> None:
        super().check()
        _check_sums(self.engine)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(steps, min_size=10, max_size=80),
    st.lists(steps, max_size=20),
    st.sampled_from([300, 20_000]),
)
def test_open_order_sums_equal_a_fresh_summation(
    sequence: list[Step], after: list[Step], funds: int
) -> None:
    harness = SumsHarness()
    for account in ACCOUNTS:
        harness.run(Step(account, Deposit(asset="USDT", amount=D(funds)), None, 1))
    for step in sequence:
        harness.run(step)
    # A restored engine builds its sums from the open orders of the state.
    restored = Engine(
        venue_symbols(*SYMBOLS),
        harness.market,
        state=Engine.decode_state(harness.engine.encode_state()),
    )
    _check_sums(restored)
    harness.engine = restored
    for step in after:
        harness.run(step)
