"""The mirror's merge rules over random histories (hypothesis), sans-I/O.

A random history of one account's events (orders placed, partly and fully filled, cancelled;
funding; several events in one millisecond) is the truth. A REST snapshot is taken at a
random point S of it, and the client's fence F (what it had received when it sent the
request) is any point at or before S. Merging the snapshot with every event after F must
give exactly the state of the whole history: nothing counted twice, nothing lost, no order
resurrected, whatever F and S are.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.client.mirror_events import account_event, order_event
from userstream.client.book import Book
from userstream.client.mirror_views import differences
from userstream.client.rest import Snapshot
from userstream.protocol.events import AccountUpdate, Event
from userstream.protocol.resync import trim
from userstream.protocol.snapshot import AccountInfo, AssetRow, OpenOrder, PositionRisk

ORDERS = 4


def history(draw: st.DrawFn) -> list[Event]:
    """Events of up to ORDERS orders of 3 lots on two symbols, with funding in between."""
    events: list[Event] = []
    now = 1_000
    wallet = Decimal(1_000)
    positions = {"BTCUSDT": Decimal(0), "ETHUSDT": Decimal(0)}
    filled: dict[int, int | None] = {
        i: -1 for i in range(1, ORDERS + 1)
    }  # -1: not placed; None: closed
    trade_id = 0
    for _ in range(draw(st.integers(0, 30))):
        now += draw(st.sampled_from([0, 0, 1, 2]))  # often several events in one millisecond
        action = draw(st.sampled_from(["place", "fill", "fill", "cancel", "funding"]))
        order_id = draw(st.integers(1, ORDERS))
        symbol = "BTCUSDT" if order_id % 2 else "ETHUSDT"
        state = filled[order_id]
        if action == "funding":
            wallet -= Decimal("0.1")
            events.append(account_event(time=now, wallet=str(wallet), reason="FUNDING_FEE"))
        elif action == "place" and state == -1:
            filled[order_id] = 0
            events.append(order_event(order_id, time=now, quantity="3", symbol=symbol))
        elif action == "fill" and state is not None and state >= 0:
            done = state + 1
            trade_id += 1
            status = "FILLED" if done == 3 else "PARTIALLY_FILLED"
            events.append(
                order_event(
                    order_id,
                    time=now,
                    x="TRADE",
                    status=status,
                    filled=str(done),
                    last="1",
                    trade_id=trade_id,
                    quantity="3",
                    symbol=symbol,
                )
            )
            positions[symbol] += 1
            wallet -= Decimal("0.05")
            events.append(
                account_event(
                    time=now, wallet=str(wallet), position=str(positions[symbol]), symbol=symbol
                )
            )
            filled[order_id] = None if done == 3 else done
        elif action == "cancel" and state is not None and state >= 0:
            filled[order_id] = None
            events.append(
                order_event(
                    order_id,
                    time=now,
                    x="CANCELED",
                    status="CANCELED",
                    filled=str(state),
                    quantity="3",
                    symbol=symbol,
                )
            )
    return events


def rest_at(events: list[Event]) -> Snapshot:
    """What the venue's REST answers after `events`: the fold's state, with each row's
    `updateTime` (the last event that touched it)."""
    book = Book()
    touched: dict[object, int] = {}
    for event in events:
        book.apply(event)
        if isinstance(event, AccountUpdate):
            for b in event.update.balances:
                touched[b.asset] = event.transaction_time
            for p in event.update.positions:
                touched[(p.symbol, p.position_side)] = event.transaction_time
    return Snapshot(
        taken_ms=0,
        account=AccountInfo(
            assets=tuple(
                AssetRow(
                    asset=b.asset,
                    wallet_balance=b.wallet_balance,
                    cross_wallet_balance=b.cross_wallet_balance,
                    update_time=touched[b.asset],
                )
                for b in book.balances.values()
            )
        ),
        positions=tuple(
            PositionRisk(
                symbol=p.symbol,
                position_side=p.position_side,
                position_amount=p.position_amount,
                entry_price=p.entry_price,
                breakeven_price=p.breakeven_price,
                update_time=touched[(p.symbol, p.position_side)],
            )
            for p in book.positions.values()
        ),
        orders=tuple(
            OpenOrder(
                symbol=o.symbol,
                order_id=o.order_id,
                client_order_id=o.client_order_id,
                side=o.side,
                order_type=o.order_type,
                time_in_force=o.time_in_force,
                status=o.status,
                price=o.price,
                average_price=o.average_price,
                original_quantity=o.original_quantity,
                executed_quantity=o.filled_quantity,
                price_match=o.price_match,
                self_trade_prevention_mode=o.self_trade_prevention_mode,
                update_time=o.update_time,
            )
            for o in book.open_orders.values()
        ),
        algo_orders=None,
        symbol_config=None,
        account_config=None,
        weight=0,
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Event], int, int]:
    events = history(draw)
    taken = draw(st.integers(0, len(events)))
    fence = draw(st.integers(0, taken))
    return events, fence, taken


@settings(max_examples=400, deadline=None)
@given(cases())
def test_snapshot_plus_raced_events_equals_the_whole_history(
    case: tuple[list[Event], int, int],
) -> None:
    events, fence, taken = case
    truth = Book()
    for event in events:
        truth.apply(event)
    snapshot = rest_at(events[:taken])
    # The mirror applied what it received (best effort) until the answer came.
    live = Book()
    for event in events:
        live.apply(event)
    merged, _ = Book.merged(snapshot, events[fence:], like=live)
    assert differences(merged.state(), truth.state()) == []
    trade_ids = [f.order.trade_id for f in merged.fills]
    assert len(trade_ids) == len(set(trade_ids))  # no fill listed twice


@settings(max_examples=400, deadline=None)
@given(cases())
def test_no_view_steps_back_behind_the_snapshot(case: tuple[list[Event], int, int]) -> None:
    events, fence, taken = case
    at_snapshot = Book()
    for event in events[:taken]:
        at_snapshot.apply(event)
    book = Book.from_snapshot(rest_at(events[:taken]))
    for event in events[fence:]:
        kept = trim(event, book.versions)
        if kept is None:
            continue
        book.apply(kept)
        for order_id, seen in at_snapshot.open_orders.items():
            now = book.open_orders.get(order_id)
            assert now is None or now.filled_quantity >= seen.filled_quantity
            assert now is None or now.update_time >= seen.update_time
