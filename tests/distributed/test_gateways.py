"""Several real gateway processes on one real nats-server: one listenKey space, events from
any node to connections on every node, expiry and close everywhere (issue #4 items 1-5).

Events are numbered TRADE_LITEs (`t` = 1..N) counted at the clients: order and completeness
are checked per connection. Time is virtual and shared (`--clock virtual`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.distributed.conftest import (
    Gateway,
    Gateways,
    numbered,
    receive,
    receive_numbered,
    wait_for,
)
from tests.functional.wsclient import assert_nothing_received
from tests.nats_fixtures import NatsServer

MINUTE = 60_000
N = 200


async def test_key_issued_on_one_node_works_on_another(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with Gateways(nats_server.url, tmp_path) as gateways:
        a, b = gateways.start(2)
        account = await a.create_account()
        key = await a.listen_key(account)
        assert await b.listen_key(account) == key  # POST on B: the same live key
        status, body = await b.rest("PUT", account)
        assert (status, body) == (200, {"listenKey": key})
        async with b.stream(key) as ws:
            await b.wait_following(1)
            await a.publish(account, [numbered(1)])
            assert await receive_numbered(ws, 1) == [1]


async def test_event_published_on_a_reaches_connections_on_a_and_b(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with Gateways(nats_server.url, tmp_path) as gateways:
        a, b = gateways.start(2)
        account = await a.create_account()
        other = await b.create_account("other")
        key = await a.listen_key(account)
        other_key = await b.listen_key(other)
        async with (
            a.stream(key) as on_a,
            b.stream(key) as on_b1,
            b.stream(key) as on_b2,
            b.stream(other_key) as other_on_b,
        ):
            await a.wait_following(1)
            await b.wait_following(2)
            for start in range(1, N + 1, 50):
                await a.publish(account, [numbered(n) for n in range(start, start + 50)])
            expected = list(range(1, N + 1))
            for ws in (on_a, on_b1, on_b2):
                assert await receive_numbered(ws, N) == expected
            await assert_nothing_received(other_on_b)  # B follows both, routes by account
        # unfollowed once the last connection went
        await wait_for(lambda: _following(b, 0), "B unfollows")


async def _following(node: Gateway, accounts: int) -> bool:
    return int((await node.stats())["cluster"]["following"]) == accounts


async def test_concurrent_posts_on_two_nodes_agree_on_one_key(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with Gateways(nats_server.url, tmp_path) as gateways:
        a, b = gateways.start(2)
        for round_ in range(10):
            account = await a.create_account(f"race{round_}")
            keys = await asyncio.gather(*(n.listen_key(account) for n in (a, b, a, b)))
            assert len(set(keys)) == 1, keys


async def test_delete_on_one_node_closes_the_key_everywhere(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with Gateways(nats_server.url, tmp_path) as gateways:
        a, b = gateways.start(2)
        account = await a.create_account()
        key = await a.listen_key(account)
        async with a.stream(key) as on_a, b.stream(key) as on_b:
            await a.wait_following(1)
            await b.wait_following(1)
            assert await b.rest("DELETE", account) == (200, {})
            for ws in (on_a, on_b):
                event = await receive(ws)
                assert (event["e"], event["listenKey"]) == ("listenKeyExpired", key)
            status, body = await a.rest("PUT", account)
            assert (status, body["code"]) == (400, -1125)
            await a.advance(61 * MINUTE)  # the old deadline passes: no second announcement
            await gateways.same_time()
            for ws in (on_a, on_b):
                await assert_nothing_received(ws)
            assert await a.listen_key(account) != key  # a fresh key after the close


async def test_expiry_and_keepalive_act_on_every_node_under_virtual_time(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with Gateways(nats_server.url, tmp_path) as gateways:
        a, b = gateways.start(2)
        start = await gateways.same_time()
        account = await a.create_account()
        key = await a.listen_key(account)
        async with a.stream(key) as on_a, b.stream(key) as on_b:
            await b.wait_following(1)
            await b.advance(30 * MINUTE)  # advanced on B, followed by A
            assert await gateways.same_time() == start + 30 * MINUTE
            status, _ = await b.rest("PUT", account)  # keepalive on B: deadline +90 min
            assert status == 200
            await a.advance(59 * MINUTE)  # past the original deadline (start + 60)
            await gateways.same_time()
            for ws in (on_a, on_b):
                await assert_nothing_received(ws)
            await a.publish(account, [numbered(7)])
            for ws in (on_a, on_b):
                assert await receive_numbered(ws, 1) == [7]
            await a.advance(2 * MINUTE)  # start + 91 min: past the extended deadline
            deadline = start + 30 * MINUTE + 60 * MINUTE
            for ws in (on_a, on_b):
                event = await receive(ws)
                assert event == {"e": "listenKeyExpired", "E": deadline, "listenKey": key}
            await gateways.same_time()
            await a.advance(60 * MINUTE)
            await gateways.same_time()
            for ws in (on_a, on_b):
                await assert_nothing_received(ws)  # exactly one each
            status, body = await b.rest("PUT", account)
            assert (status, body["code"]) == (400, -1125)


async def test_a_node_started_after_the_key_was_issued_announces_its_end(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """B starts after A issued the key (B learns it from the bucket, not a notification);
    an expiry forced on A reaches B's connection exactly once."""
    async with Gateways(nats_server.url, tmp_path) as gateways:
        (a,) = gateways.start(1)
        account = await a.create_account()
        key = await a.listen_key(account)
        (b,) = gateways.start(1)
        async with b.stream(key) as on_b:
            await b.wait_following(1)
            status, body = await a.admin("POST", f"listenKeys/{key}/expire")
            assert status == 200, body
            event = await receive(on_b)
            assert (event["e"], event["listenKey"]) == ("listenKeyExpired", key)
            await assert_nothing_received(on_b)
