"""`UserDataStream` against the real server on the shared virtual clock (issue 3 items 1–7)."""

from __future__ import annotations

import pytest

from tests.conftest import Harness
from tests.functional.client.helpers import (
    HOUR,
    MINUTE,
    advance,
    leverage,
    make_stream,
    next_gap,
    next_item,
    number,
    settle,
    wait_for,
)
from userstream import ConnectionState, Delivery, GapReason, Reconnect, StreamGap
from userstream.protocol.events import AccountConfigUpdate


async def put_status(server: Harness, api_key: str) -> int:
    async with server.http.put(
        f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}
    ) as response:
        return response.status


async def test_creates_key_yields_typed_events_and_deletes_key_on_exit(server: Harness) -> None:
    account = server.account()
    states: list[tuple[ConnectionState, ConnectionState]] = []
    stream = make_stream(server, account, on_state_change=lambda a, b, _: states.append((a, b)))
    async with stream:
        key = stream.listen_key
        assert key is not None
        assert key not in repr(stream)
        assert account.api_key not in repr(stream)
        await server.publish(account, [leverage(1), leverage(2)])
        first = await next_item(stream)
        assert isinstance(first, AccountConfigUpdate)
        assert first.leverage_config is not None
        assert first.leverage_config.symbol == "BTCUSDT"
        assert [number(first), number(await next_item(stream))] == [1, 2]
        health = stream.health
        assert health.state is ConnectionState.CONNECTED
        assert (health.keys_issued, health.events, health.reconnects, health.gaps) == (1, 2, 0, 0)
        assert health.last_event_ms == server.clock.now_ms()
    assert await put_status(server, account.api_key) == 400  # -1125: DELETEd on exit
    assert states[0] == (ConnectionState.STARTING, ConnectionState.CONNECTING)
    assert states[-1][1] is ConnectionState.CLOSED
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_keepalive_keeps_the_key_alive_past_60_minutes(server: Harness) -> None:
    account = server.account()
    async with make_stream(server, account) as stream:
        await advance(server, 150 * MINUTE)
        await server.publish(account, [leverage(7)])
        assert number(await next_item(stream)) == 7
        health = stream.health
        assert health.keys_issued == 1
        assert health.reconnects == 0
        assert health.last_keepalive_ok is True
        assert health.last_keepalive_ms is not None
        assert server.clock.now_ms() - health.last_keepalive_ms < 30 * MINUTE
        assert health.key_age_ms == 150 * MINUTE
        assert health.connection_age_ms == 150 * MINUTE


async def test_reconnects_after_a_drop_and_marks_the_gap(server: Harness) -> None:
    account = server.account()
    async with make_stream(server, account) as stream:
        key = stream.listen_key
        await server.publish(account, [leverage(1)])
        assert number(await next_item(stream)) == 1
        received_at = server.clock.now_ms()
        await server.advance(5_000)
        status, body = await server.admin("POST", "connections/drop", {"accountId": account.id})
        assert (status, body) == (200, {"dropped": 1})
        gap = await next_gap(stream)
        assert gap.reason is GapReason.DISCONNECTED
        assert gap.since_ms == received_at
        await wait_for(lambda: stream.health.reconnects == 1)
        assert stream.health.state is ConnectionState.CONNECTED
        assert stream.listen_key == key  # verified alive with a keepalive, then reused
        await server.publish(account, [leverage(2)])
        assert number(await next_item(stream)) == 2
        assert stream.health.last_reason is not None
        assert stream.health.last_reason.startswith("disconnected")


async def test_new_key_after_listen_key_expired(server: Harness) -> None:
    account = server.account()
    async with make_stream(server, account) as stream:
        old = stream.listen_key
        status, _ = await server.admin("POST", f"listenKeys/{old}/expire")
        assert status == 200
        gap = await next_gap(stream)
        assert gap.reason is GapReason.KEY_EXPIRED
        await wait_for(lambda: stream.health.reconnects == 1)
        assert stream.listen_key not in (None, old)
        assert stream.health.keys_issued == 2
        await server.publish(account, [leverage(3)])
        assert number(await next_item(stream)) == 3


async def test_rotation_before_24_hours_loses_nothing_and_duplicates_nothing(
    server: Harness,
) -> None:
    account = server.account()
    received: list[int] = []
    async with make_stream(
        server, account, reconnect=Reconnect(rotation_timeout_ms=10 * MINUTE)
    ) as stream:
        published = 0
        for _ in range(24 * 12 + 6):  # 24.5 hours in 5-minute steps, one event per step
            published += 1
            await server.publish(account, [leverage(published)])
            await server.advance(5 * MINUTE)
            await settle(2)
            while stream.health.buffered:
                item = await next_item(stream)
                assert not isinstance(item, StreamGap), item
                received.append(number(item))
        await wait_for(lambda: len(received) + stream.health.buffered >= published)
        while stream.health.buffered:
            received.append(number(await next_item(stream)))
        health = stream.health
        assert received == list(range(1, published + 1))
        assert (health.rotations, health.reconnects, health.gaps) == (1, 0, 0)
        assert health.duplicates >= 1  # the overlap delivered the same frames twice
        assert health.connection_age_ms is not None
        assert health.connection_age_ms < 2 * HOUR


async def test_drop_oldest_overflow_yields_a_gap_then_the_newest(server: Harness) -> None:
    account = server.account()
    async with make_stream(
        server, account, delivery=Delivery(0, max_buffered=3, overflow="drop_oldest")
    ) as stream:
        await server.publish(account, [leverage(n) for n in range(1, 11)])
        await wait_for(lambda: stream.health.events == 10)
        gap = await next_gap(stream)
        assert gap.reason is GapReason.OVERFLOW
        assert [number(await next_item(stream)) for _ in range(3)] == [8, 9, 10]
        assert stream.health.gaps == 1


async def test_block_policy_bounds_memory_and_loses_nothing(server: Harness) -> None:
    account = server.account()
    async with make_stream(
        server, account, delivery=Delivery(0, max_buffered=5, overflow="block")
    ) as stream:
        await server.publish(account, [leverage(n) for n in range(1, 301)])
        await settle(10)
        assert stream.health.buffered <= 6
        assert stream.health.events < 300  # the rest waits in the socket, not in our memory
        received = [number(await next_item(stream)) for _ in range(300)]
        assert received == list(range(1, 301))
        assert stream.health.gaps == 0
