"""The simulator's sans-I/O core: deterministic for a seed, and every event self-consistent.

A long run is replayed the way a client would mirror the account: quantities, average
prices, wallet balances, positions and realized profit are recomputed from the events and
must match what the events themselves report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from functools import cache

import msgspec
import pytest

from userstream.protocol.codec import encode_event, event_name, parse_admin_events
from userstream.protocol.events import (
    EVENT_TYPES,
    AccountConfigUpdate,
    AccountUpdate,
    AlgoUpdate,
    ConditionalOrderTriggerReject,
    Event,
    MarginCall,
    OrderTradeUpdate,
    TradeLite,
)
from userstream.simulator import AccountEvent, Simulator, instruments_from_symbols
from userstream.symbols import load_symbol_table

START_MS = 1_767_225_600_000
LONG_RUN = 40_000


def run(seed: int, steps: int, accounts: tuple[int, ...] = (1, 2, 3)) -> list[AccountEvent]:
    sim = Simulator(accounts, seed=seed)
    out: list[AccountEvent] = []
    for i in range(steps):
        out.extend(sim.step(START_MS + i))
    return out


@cache
def long_run() -> tuple[AccountEvent, ...]:
    events: list[AccountEvent] = []
    sim = Simulator((1, 2, 3, 4, 5), seed=7)
    now = START_MS
    while len(events) < LONG_RUN:
        now += 1
        events.extend(sim.step(now))
    return tuple(events)


def of_type(kind: type[Event]) -> list[tuple[int, Event]]:
    return [(a, e) for a, e in long_run() if isinstance(e, kind)]


def test_same_seed_same_bytes_other_seed_other_events() -> None:
    first = [(a, encode_event(e)) for a, e in run(42, 2_000)]
    again = [(a, encode_event(e)) for a, e in run(42, 2_000)]
    other = [(a, encode_event(e)) for a, e in run(43, 2_000)]
    assert first == again
    assert first != other


def test_every_event_type_but_listen_key_expired_appears() -> None:
    seen = Counter(event_name(e) for _, e in long_run())
    assert set(seen) == set(EVENT_TYPES) - {"listenKeyExpired"}, seen


def test_every_event_passes_the_servers_strict_admin_validation() -> None:
    events = [e for _, e in long_run()]
    for start in range(0, len(events), 500):
        batch = events[start : start + 500]
        body = b"[" + b",".join(encode_event(e) for e in batch) + b"]"
        assert parse_admin_events(body, START_MS) == batch


def test_prices_and_quantities_respect_the_symbol_filters() -> None:
    instruments = {i.symbol: i for i in instruments_from_symbols(load_symbol_table().symbols)}
    for _, event in of_type(OrderTradeUpdate):
        assert isinstance(event, OrderTradeUpdate)
        o, spec = event.order, instruments[event.order.symbol]
        assert o.original_quantity % spec.step_size == 0
        assert o.original_quantity >= spec.min_qty
        for price in (o.original_price, o.last_filled_price, o.stop_price):
            assert price % spec.tick_size == 0
            assert price == 0 or spec.min_price <= price <= spec.max_price
        if o.order_type == "LIMIT":
            assert o.original_quantity * o.original_price >= spec.min_notional


def test_cumulative_quantity_is_the_sum_of_fills_and_average_price_matches() -> None:
    filled: dict[int, Decimal] = defaultdict(Decimal)
    notional: dict[int, Decimal] = defaultdict(Decimal)
    for _, event in of_type(OrderTradeUpdate):
        assert isinstance(event, OrderTradeUpdate)
        o = event.order
        if o.execution_type == "TRADE":
            filled[o.order_id] += o.last_filled_quantity
            notional[o.order_id] += o.last_filled_quantity * o.last_filled_price
            assert o.trade_id > 0
            assert o.commission is not None
            assert o.commission > 0
        else:
            assert o.last_filled_quantity == 0
            assert o.trade_id == 0
        assert o.filled_accumulated_quantity == filled[o.order_id]
        assert o.filled_accumulated_quantity <= o.original_quantity
        assert (o.order_status == "FILLED") == (
            o.filled_accumulated_quantity == o.original_quantity
        )
        if filled[o.order_id]:
            exact = notional[o.order_id] / filled[o.order_id]
            assert abs(o.average_price - exact) < Decimal("0.00000001")
        else:
            assert o.average_price == 0


def test_every_fill_has_its_trade_lite() -> None:
    trades = {
        (e.order.order_id, e.order.trade_id): (
            e.order.last_filled_quantity,
            e.order.last_filled_price,
        )
        for _, e in of_type(OrderTradeUpdate)
        if isinstance(e, OrderTradeUpdate) and e.order.execution_type == "TRADE"
    }
    lites = {
        (e.order_id, e.trade_id): (e.last_filled_quantity, e.last_filled_price)
        for _, e in of_type(TradeLite)
        if isinstance(e, TradeLite)
    }
    assert trades == lites


def test_balances_and_positions_follow_from_the_fills() -> None:
    """Replay: the wallet is deposits + Σ(rp - n) + funding; a position is Σ signed fills;
    a reducing fill realizes (L - entry) x closed at the entry the stream reported last."""
    wallet: dict[int, Decimal] = defaultdict(Decimal)
    amount: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    entry: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    isolated: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    last_fill: dict[int, OrderTradeUpdate] = {}
    checked_realized = 0
    for account, event in long_run():
        if isinstance(event, OrderTradeUpdate) and event.order.execution_type == "TRADE":
            o = event.order
            assert o.commission is not None
            key = (account, o.symbol)
            signed = o.last_filled_quantity * (1 if o.side == "BUY" else -1)
            held = amount[key]
            if held and (held > 0) != (signed > 0):
                closed = min(abs(signed), abs(held))
                direction = 1 if held > 0 else -1
                expected = (o.last_filled_price - entry[key]) * closed * direction
                assert o.realized_profit == expected.quantize(Decimal("0.00000001"))
                checked_realized += 1
            else:
                assert o.realized_profit == 0
            amount[key] += signed
            wallet[account] += o.realized_profit - o.commission
            last_fill[account] = event
        elif isinstance(event, AccountUpdate):
            update = event.update
            (balance,) = update.balances
            if update.reason == "ORDER":
                (position,) = update.positions
                key = (account, position.symbol)
                assert last_fill[account].order.symbol == position.symbol
                assert position.position_amount == amount[key]
                entry[key] = position.entry_price
                isolated[key] = position.isolated_wallet
                if position.position_amount == 0:
                    assert position.entry_price == 0
                    assert position.unrealized_pnl == 0
            else:
                assert update.reason in ("DEPOSIT", "FUNDING_FEE")
                wallet[account] += balance.balance_change
                for position in update.positions:
                    isolated[(account, position.symbol)] = position.isolated_wallet
            assert balance.wallet_balance == wallet[account]
            total_isolated = sum((v for (a, _), v in isolated.items() if a == account), Decimal())
            assert balance.cross_wallet_balance == balance.wallet_balance - total_isolated
    assert checked_realized > 100


def test_funding_fee_shapes_cross_only_balances_isolated_adds_the_position() -> None:
    shapes: Counter[str] = Counter()
    for _, event in of_type(AccountUpdate):
        assert isinstance(event, AccountUpdate)
        update = event.update
        if update.reason != "FUNDING_FEE":
            assert update.funding_symbol is None
            continue
        assert update.funding_symbol is not None
        if update.positions:
            (position,) = update.positions
            assert position.symbol == update.funding_symbol
            assert position.margin_type == "isolated"
            shapes["isolated"] += 1
        else:
            shapes["cross"] += 1
    assert shapes["cross"] > 0
    assert shapes["isolated"] > 0


def test_margin_calls_carry_cw_only_for_cross_positions() -> None:
    kinds: Counter[str] = Counter()
    for _, event in of_type(MarginCall):
        assert isinstance(event, MarginCall)
        types = {p.margin_type for p in event.positions}
        assert len(types) == 1
        (kind,) = types
        assert (event.cross_wallet_balance is not None) == (kind == "CROSSED")
        for p in event.positions:
            assert p.unrealized_pnl < 0
            assert p.maintenance_margin > 0
        kinds[kind] += 1
    assert kinds["CROSSED"] > 0


def test_account_config_updates_have_exactly_one_shape() -> None:
    shapes: Counter[str] = Counter()
    for _, event in of_type(AccountConfigUpdate):
        assert isinstance(event, AccountConfigUpdate)
        assert (event.leverage_config is None) != (event.account_info_config is None)
        shapes["ac" if event.leverage_config else "ai"] += 1
    assert shapes["ac"] > 0
    assert shapes["ai"] > 0


ALGO_NEXT = {
    "NEW": {"TRIGGERING", "CANCELED"},
    "TRIGGERING": {"TRIGGERED", "REJECTED"},
    "TRIGGERED": {"FINISHED"},
}


def test_algo_orders_go_new_triggering_triggered_finished_with_their_order() -> None:
    status: dict[int, str] = {}
    placed: dict[int, int] = {}
    orders: dict[int, list[OrderTradeUpdate]] = defaultdict(list)
    finals: Counter[str] = Counter()
    rejects = {
        e.reject.symbol
        for _, e in of_type(ConditionalOrderTriggerReject)
        if isinstance(e, ConditionalOrderTriggerReject)
    }
    for _, event in long_run():
        if isinstance(event, OrderTradeUpdate):
            orders[event.order.order_id].append(event)
        if not isinstance(event, AlgoUpdate):
            continue
        o = event.order
        if o.algo_id not in status:
            assert o.status == "NEW"
            assert o.order_id == ""
        else:
            assert o.status in ALGO_NEXT[status[o.algo_id]]
        status[o.algo_id] = o.status
        if o.status == "TRIGGERED":
            placed[o.algo_id] = int(o.order_id)
        if o.status == "FINISHED":
            order = orders[placed[o.algo_id]]
            assert order[0].order.original_order_type == o.order_type
            assert order[0].order.order_type == "MARKET"
            assert order[0].order.stop_price == o.trigger_price
            assert o.executed_quantity == order[-1].order.filled_accumulated_quantity
            assert o.average_price == order[-1].order.average_price
        if o.status in ("FINISHED", "CANCELED", "REJECTED"):
            finals[o.status] += 1
    assert finals["FINISHED"] > 0
    assert finals["CANCELED"] > 0
    assert finals["REJECTED"] > 0
    assert rejects


def test_paced_output_follows_the_rate() -> None:
    sim = Simulator((1, 2), seed=3, rate=200)
    total = sum(len(sim.next_events(START_MS + ms)) for ms in range(0, 10_001, 10))
    assert 2_000 <= total <= 2_010  # whole actions: a few over, never under


def test_a_stalled_caller_gets_at_most_max_lag_of_backlog() -> None:
    sim = Simulator((1,), seed=3, rate=100, max_lag_s=1.0)
    sim.next_events(START_MS)
    burst = sim.next_events(START_MS + 60_000)
    assert 100 <= len(burst) <= 110
    assert len(sim.next_events(START_MS + 60_000, limit=5)) == 0


def test_limit_leaves_the_rest_due() -> None:
    sim = Simulator((1,), seed=3, rate=1000)
    sim.next_events(START_MS)
    first = sim.next_events(START_MS + 1_000, limit=50)
    assert 50 <= len(first) < 60
    rest = sim.next_events(START_MS + 1_000)
    assert len(first) + len(rest) >= 1_000


def test_events_are_stamped_with_the_callers_time() -> None:
    for _, event in run(1, 50):
        raw = msgspec.json.decode(encode_event(event))
        assert START_MS <= raw["E"] < START_MS + 50
        if "T" in raw:
            assert raw["T"] == raw["E"]


def test_needs_an_account_and_a_rate_to_pace() -> None:
    with pytest.raises(ValueError, match="at least one account"):
        Simulator((), seed=1)
    with pytest.raises(ValueError, match="positive rate"):
        Simulator((1,), seed=1).next_events(START_MS)
