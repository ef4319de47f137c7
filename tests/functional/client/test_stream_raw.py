"""`stream.received()` hands over each event with the exact bytes the server sent."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import Harness
from tests.functional.client.helpers import RECV_TIMEOUT_S, leverage, make_stream, number
from userstream import Delivery, Received, StreamGap
from userstream.protocol.codec import encode_event
from userstream.protocol.events import AccountConfigUpdate


async def test_received_records_carry_the_raw_frame_and_the_model(server: Harness) -> None:
    account = server.account()
    async with make_stream(server, account) as stream:
        await server.publish(account, [leverage(1), leverage(2)])
        records = stream.received()
        got = [await asyncio.wait_for(anext(records), RECV_TIMEOUT_S) for _ in range(2)]
    for n, record in enumerate(got, start=1):
        assert isinstance(record, Received)
        assert isinstance(record.event, AccountConfigUpdate)
        assert record.raw == encode_event(record.event)
        payload = json.loads(record.raw)
        assert payload["ac"] == {"s": "BTCUSDT", "l": n}
        assert payload["E"] == record.event.event_time
        assert record.received_ms == server.clock.now_ms()


async def test_received_yields_gaps_too(server: Harness) -> None:
    account = server.account()
    async with make_stream(server, account) as stream:
        status, _ = await server.admin("POST", "connections/drop", {"accountId": account.id})
        assert status == 200
        records = stream.received()
        first = await asyncio.wait_for(anext(records), RECV_TIMEOUT_S)
        assert isinstance(first, StreamGap)


async def test_events_held_for_ordering_are_handed_over_on_close(server: Harness) -> None:
    account = server.account()
    stream = make_stream(server, account, delivery=Delivery(reorder_window_ms=60_000))
    async with stream:
        await server.publish(account, [leverage(1), leverage(2)])
        for _ in range(100):  # wait until both are received and held
            if stream.health.events == 2:
                break
            await asyncio.sleep(0.01)
        assert stream.health.events == 2
    items = [item async for item in stream]
    assert [number(item) for item in items] == [1, 2]
