"""Faults with real processes (issue #4 item 7): a gateway SIGKILLed, a gateway cut off from
NATS, NATS restarted, one member of a 3-node NATS cluster killed. Numbered events are counted
at the clients: connections that stay up lose nothing and see no duplicates.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.distributed.conftest import (
    RECOVERY_S,
    Gateways,
    numbered,
    receive,
    receive_numbered,
    wait_for,
)
from tests.functional.client.relay import Relay
from tests.nats_fixtures import NatsCluster, NatsServer


async def test_sigkill_of_a_gateway_clients_move_to_another_node(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with Gateways(nats_server.url, tmp_path) as gateways:
        a, b = gateways.start(2)
        account = await a.create_account()
        key = await a.listen_key(account)
        async with b.stream(key) as stays_up, a.stream(key) as on_a:
            await a.wait_following(1)
            await b.wait_following(1)
            await b.publish(account, [numbered(n) for n in range(1, 51)])
            assert await receive_numbered(on_a, 50) == list(range(1, 51))
            a.kill()
            await b.publish(account, [numbered(n) for n in range(51, 101)])
            # Delivery goes through JetStream: let 51-100 reach B's connections before the
            # moved client connects, or it would (rightly) receive them too.
            assert await receive_numbered(stays_up, 100) == list(range(1, 101))
            async with b.stream(key) as moved:  # the same key, now on B
                await wait_for(lambda: _following(b, 1), "B follows")
                await b.publish(account, [numbered(n) for n in range(101, 151)])
                assert await receive_numbered(moved, 50) == list(range(101, 151))
            assert await receive_numbered(stays_up, 50) == list(range(101, 151))
            status, _ = await b.rest("PUT", account)  # the key outlived its issuing node
            assert status == 200


async def _following(node: object, accounts: int) -> bool:
    stats = await node.stats()  # type: ignore[attr-defined]
    return int(stats["cluster"]["following"]) >= accounts


async def test_gateway_cut_off_from_nats_resumes_where_it_stopped(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """B reaches NATS through a relay that is cut: events accepted by JetStream meanwhile (on
    A) reach B's still-open connection after B reconnects by itself."""
    relay = Relay(nats_server.port)
    await relay.start()
    try:
        async with Gateways(nats_server.url, tmp_path) as gateways:
            (a,) = gateways.start(1)
            # started in a thread: the relay runs on this loop and must accept meanwhile
            (b,) = await asyncio.to_thread(gateways.start, 1, bus=f"nats://127.0.0.1:{relay.port}")
            account = await a.create_account()
            key = await a.listen_key(account)
            async with b.stream(key) as on_b, a.stream(key) as on_a:
                await b.wait_following(1)
                await a.publish(account, [numbered(n) for n in range(1, 21)])
                assert await receive_numbered(on_b, 20) == list(range(1, 21))
                await relay.cut()
                await a.publish(account, [numbered(n) for n in range(21, 121)])
                assert await receive_numbered(on_a, 120) == list(range(1, 121))
                relay.restore()
                assert await receive_numbered(on_b, 100) == list(range(21, 121))
                await a.publish(account, [numbered(121)])
                assert await receive_numbered(on_b, 1) == [121]
    finally:
        await relay.aclose()


async def test_nats_restart_gateways_reconnect_by_themselves(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with Gateways(nats_server.url, tmp_path) as gateways:
        a, b = gateways.start(2)
        account = await a.create_account()
        key = await a.listen_key(account)
        async with a.stream(key) as on_a, b.stream(key) as on_b:
            await a.wait_following(1)
            await b.wait_following(1)
            await a.publish(account, [numbered(n) for n in range(1, 51)])
            for ws in (on_a, on_b):
                assert await receive_numbered(ws, 50) == list(range(1, 51))
            nats_server.kill()
            nats_server.start()
            await _publish_when_back(a, account, range(51, 101))
            for ws in (on_a, on_b):
                got = await receive_numbered(ws, 50, RECOVERY_S)
                assert got == list(range(51, 101))
            assert await _listen_key_when_back(b, account) == key  # it survived in JetStream


async def _publish_when_back(node: object, account: object, numbers: range) -> None:
    """Publish once the node's admin API accepts again (it answers 5xx while NATS is away)."""
    events = [numbered(n) for n in numbers]
    for _ in range(200):
        status, _ = await node.admin(  # type: ignore[attr-defined]
            "POST",
            f"accounts/{account.id}/events",  # type: ignore[attr-defined]
            events,
        )
        if status == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway never accepted events again")


async def _listen_key_when_back(node: object, account: object) -> str:
    """The account's key once the node answers 200 again: the key-value stream elects its own
    leader after a kill, and until then a listenKey request is answered 5xx."""
    for _ in range(200):
        status, body = await node.rest("POST", account)  # type: ignore[attr-defined]
        if status == 200:
            return str(body["listenKey"])
        assert status >= 500, body
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway never answered a listenKey request again")


async def test_one_member_of_a_nats_cluster_killed_service_continues(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    async with Gateways(nats_cluster.url, tmp_path) as gateways:
        a, b = gateways.start(2)
        account = await a.create_account()
        key = await a.listen_key(account)
        async with a.stream(key) as on_a, b.stream(key) as on_b:
            await a.wait_following(1)
            await b.wait_following(1)
            await a.publish(account, [numbered(n) for n in range(1, 51)])
            for ws in (on_a, on_b):
                assert await receive_numbered(ws, 50) == list(range(1, 51))
            nats_cluster.servers[0].kill()
            await _publish_when_back(b, account, range(51, 101))
            for ws in (on_a, on_b):
                got = await receive_numbered(ws, 50, RECOVERY_S)
                assert got == list(range(51, 101))
            assert await _listen_key_when_back(b, account) == key


async def test_a_delete_missed_while_cut_off_is_announced_after_reconnect(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """Notifications are not relied on alone (issue #4 item 5): B is cut off from NATS while
    the key is DELETEd on A, so B never sees that change; once B is back it re-reads the
    keys it serves and its connection gets exactly one `listenKeyExpired`, then nothing."""
    relay = Relay(nats_server.port)
    await relay.start()
    try:
        async with Gateways(nats_server.url, tmp_path) as gateways:
            (a,) = gateways.start(1)
            (b,) = await asyncio.to_thread(gateways.start, 1, bus=f"nats://127.0.0.1:{relay.port}")
            account = await a.create_account()
            key = await a.listen_key(account)
            async with b.stream(key) as on_b, a.stream(key) as on_a:
                await b.wait_following(1)
                await relay.cut()
                status, _ = await a.rest("DELETE", account)
                assert status == 200
                ended = await receive(on_a)
                assert ended == {"e": "listenKeyExpired", "E": await a.now(), "listenKey": key}
                relay.restore()
                assert await receive(on_b, RECOVERY_S) == ended  # virtual time stood still
                new_key = await a.listen_key(account)  # a new key; the old one stays dead
                assert new_key != key
                await a.publish(account, [numbered(1)])
                with pytest.raises(TimeoutError):
                    await receive(on_b, 1.0)  # no second announcement, no events on the old key
    finally:
        await relay.aclose()
