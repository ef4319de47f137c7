"""Duplicates only across a rotation's two connections, and a rotation that ends only once
the new connection proved it carries the same events (issue 9 items 11 and 14)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import Harness, running_harness
from tests.functional.client.helpers import (
    HOUR,
    MINUTE,
    RECV_TIMEOUT_S,
    advance,
    endpoints,
    leverage,
    make_stream,
    next_gap,
    next_item,
    number,
)
from tests.functional.client.relay import Relay
from userstream import Endpoints, GapReason, Reconnect
from userstream.protocol.events import AccountConfigUpdate

ROTATION = Reconnect(rotate_after_ms=HOUR, rotation_timeout_ms=10 * MINUTE)


def streams_via(server: Harness, relay: Relay) -> Endpoints:
    direct = endpoints(server)
    return Endpoints(direct.rest_url, direct.ws_api_url, f"ws://127.0.0.1:{relay.port}")


async def until_stream_connections(server: Harness, expected: int) -> None:
    """Wait (real time, the virtual clock stays put) until the server counts `expected`."""
    async with asyncio.timeout(RECV_TIMEOUT_S):
        while True:
            _, stats = await server.admin("GET", "stats")
            if stats["connections"]["streams"] == expected:
                return
            await asyncio.sleep(0.005)


async def test_two_identical_events_are_both_delivered(server: Harness) -> None:
    account = server.account()
    event = {
        "e": "ACCOUNT_CONFIG_UPDATE",
        "E": 1_700_000_000_000,
        "T": 1_700_000_000_000,
        "ac": {"s": "BTCUSDT", "l": 25},
    }
    async with make_stream(server, account) as stream:
        assert await server.publish(account, [event, event]) == 2
        first, second = await next_item(stream), await next_item(stream)
        assert isinstance(first, AccountConfigUpdate)
        assert first == second
        assert (stream.health.events, stream.health.duplicates, stream.health.gaps) == (2, 0, 0)


async def test_the_old_connection_closes_once_the_new_one_delivered_a_shared_frame(
    server: Harness,
) -> None:
    account = server.account()
    async with make_stream(server, account, reconnect=ROTATION) as stream:
        await advance(server, HOUR)
        await until_stream_connections(server, 2)  # rotating: both open
        await server.publish(account, [leverage(1), leverage(1), leverage(2)])
        assert [number(await next_item(stream)) for _ in range(3)] == [1, 1, 2]
        # Closed on the proof, long before the 10-minute bound (the clock does not move).
        await until_stream_connections(server, 1)
        await server.publish(account, [leverage(3), leverage(3)])
        assert [number(await next_item(stream)) for _ in range(2)] == [3, 3]
        health = stream.health
        assert (health.rotations, health.reconnects, health.gaps) == (1, 0, 0)
        assert health.duplicates == 3  # the second copies of 1, 1 and 2
        assert health.events == 5


async def test_a_new_connection_that_delivers_nothing_ends_the_rotation_with_a_gap(
    server: Harness, relay: Relay, tmp_path: Path
) -> None:
    account = server.account()
    async with running_harness(tmp_path / "other", clock=server.clock) as other:
        stream = make_stream(
            server, account, endpoints=streams_via(server, relay), reconnect=ROTATION
        )
        async with stream:
            # The new connection lands on a server that does not know the key: accepted,
            # answers pings, silent (spec §2.3), like a connection that does not deliver.
            relay.redirect_new(other.server.port)
            await advance(server, HOUR)
            await until_stream_connections(other, 1)
            await server.publish(account, [leverage(1)])
            assert number(await next_item(stream)) == 1  # through the old connection
            await until_stream_connections(server, 1)  # the old one is kept meanwhile
            await advance(server, 10 * MINUTE)
            gap = await next_gap(stream)
            assert gap.reason is GapReason.ROTATION
            await until_stream_connections(server, 0)
            assert stream.health.rotations == 1
