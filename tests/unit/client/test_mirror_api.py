"""`AccountMirror`'s caller-facing API on applied events (no network: `apply` is what the
stream reader calls for each event)."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.client.mirror_events import account_event, order_event
from userstream import AccountMirror, Change, ChangeKind
from userstream.protocol.events import OrderTradeUpdate


def mirror() -> AccountMirror:
    return AccountMirror("k" * 64, "s" * 64)


async def test_wait_for_order_returns_once_the_status_is_reached() -> None:
    m = mirror()
    m.apply(order_event(1, time=10, client_id="mine"))
    waiter = asyncio.create_task(m.wait_for_order("mine", status="FILLED", timeout=5))
    await asyncio.sleep(0)
    assert not waiter.done()
    m.apply(
        order_event(
            1,
            time=11,
            x="TRADE",
            status="PARTIALLY_FILLED",
            filled="0.5",
            last="0.5",
            trade_id=1,
            client_id="mine",
        )
    )
    await asyncio.sleep(0)
    assert not waiter.done()
    m.apply(
        order_event(
            1,
            time=12,
            x="TRADE",
            status="FILLED",
            filled="1",
            last="0.5",
            trade_id=2,
            client_id="mine",
        )
    )
    order = await waiter
    assert order.status == "FILLED"
    assert 1 not in m.open_orders
    # Already there: answered at once.
    assert (await m.wait_for_order("mine", timeout=0)).status == "FILLED"


async def test_an_order_that_ends_otherwise_is_returned_too() -> None:
    m = mirror()
    waiter = asyncio.create_task(m.wait_for_order("gone", status="FILLED", timeout=5))
    m.apply(order_event(2, time=10, client_id="gone"))
    m.apply(order_event(2, time=11, x="CANCELED", status="CANCELED", client_id="gone"))
    assert (await waiter).status == "CANCELED"


async def test_wait_for_order_times_out() -> None:
    m = mirror()
    m.apply(order_event(3, time=10, client_id="slow"))
    with pytest.raises(TimeoutError):
        await m.wait_for_order("slow", timeout=0.05)


async def test_changes_say_what_changed_and_why() -> None:
    m = mirror()
    seen: list[tuple[ChangeKind, str]] = []

    async def read() -> None:
        async for change in m.changes():
            seen.append((change.kind, change.reason))
            if len(seen) == 5:
                return

    reader = asyncio.create_task(read())
    await asyncio.sleep(0)
    m.apply(order_event(4, time=10))
    m.apply(order_event(4, time=11, x="TRADE", status="FILLED", filled="1", last="1", trade_id=9))
    m.apply(account_event(time=11, wallet="999", position="1"))
    m.apply(account_event(time=12, wallet="998", reason="FUNDING_FEE"))
    liquidation = order_event(
        5,
        time=13,
        x="CALCULATED",
        status="FILLED",
        filled="1",
        last="1",
        trade_id=10,
        client_id="autoclose-1",
    )
    m.apply(liquidation)
    await asyncio.wait_for(reader, 5)
    assert seen == [
        (ChangeKind.ORDER, "NEW"),
        (ChangeKind.FILL, "FILLED"),
        (ChangeKind.POSITION, "ORDER"),
        (ChangeKind.FUNDING, "FUNDING_FEE"),
        (ChangeKind.LIQUIDATION, "CALCULATED"),
    ]
    assert m.balances["USDT"].wallet_balance == 998
    assert [f.order.trade_id for f in m.recent_fills] == [9, 10]
    assert all(isinstance(f, OrderTradeUpdate) for f in m.recent_fills)
    assert m.health.events_total == 5


async def test_a_slow_reader_loses_its_oldest_changes_and_health_counts_them() -> None:
    m = AccountMirror("k" * 64, "s" * 64, max_changes=2)

    async def first() -> Change:
        async for change in m.changes():
            return change
        raise AssertionError("no change")

    reader = asyncio.create_task(first())
    await asyncio.sleep(0)
    for i in range(5):
        m.apply(order_event(10 + i, time=10 + i))
    got = await reader
    assert isinstance(got.event, OrderTradeUpdate)
    assert got.event.order.order_id == 13  # the two newest were kept
    assert m.health.dropped_changes == 3
