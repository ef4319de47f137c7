"""Silent dead connections, keys that die unseen, and the WebSocket API key transport."""

from __future__ import annotations

import pytest

from tests.conftest import Harness
from tests.functional.client.helpers import (
    MINUTE,
    advance,
    endpoints,
    leverage,
    make_stream,
    next_gap,
    next_item,
    number,
    wait_for,
)
from tests.functional.client.relay import Relay
from userstream import Endpoints, GapReason, Keepalive, ListenKeyNotFound
from userstream.client.listenkeys import WsApiListenKeys


def via_relay(server: Harness, relay: Relay) -> Endpoints:
    direct = endpoints(server)
    return Endpoints(direct.rest_url, direct.ws_api_url, f"ws://127.0.0.1:{relay.port}")


async def test_a_silent_connection_that_ignores_pings_is_replaced(
    server: Harness, relay: Relay
) -> None:
    account = server.account()
    options = {"keepalive": Keepalive(ping_interval_s=0.05, ping_timeout_s=0.1)}
    async with make_stream(server, account, endpoints=via_relay(server, relay), **options) as s:
        assert relay.freeze_existing() == 1
        gap = await next_gap(s)
        assert gap.reason is GapReason.DISCONNECTED
        assert gap.detail.startswith("1011")  # websockets: keepalive ping timeout
        await wait_for(lambda: s.health.reconnects == 1)
        await server.publish(account, [leverage(4)])
        assert number(await next_item(s)) == 4


async def test_a_quiet_healthy_connection_is_left_alone(server: Harness, relay: Relay) -> None:
    account = server.account()
    # Under 10 pings a second: pings count toward the server's 10 incoming messages per
    # second, as on Binance.
    options = {"keepalive": Keepalive(ping_interval_s=0.12, ping_timeout_s=0.5)}
    async with make_stream(server, account, endpoints=via_relay(server, relay), **options) as s:
        start = relay.chunks_up
        await wait_for(lambda: relay.chunks_up >= start + 6)  # six client pings
        # Each ping was answered before the next went out (a ping outstanding for 0.5 s
        # would have closed the connection), and the connection is still the first one.
        await server.publish(account, [leverage(1)])
        assert number(await next_item(s)) == 1
        assert (s.health.reconnects, s.health.gaps) == (0, 0)


async def test_a_key_that_died_unseen_is_replaced_after_the_keepalive_says_1125(
    server: Harness, relay: Relay
) -> None:
    account = server.account()
    async with make_stream(server, account, endpoints=via_relay(server, relay)) as stream:
        old = stream.listen_key
        relay.freeze_existing()  # the socket never sees the listenKeyExpired below
        async with server.http.delete(
            f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
        ) as response:
            assert response.status == 200
        await advance(server, 30 * MINUTE)  # the keepalive PUT answers -1125
        gap = await next_gap(stream)
        assert gap.reason is GapReason.KEY_REJECTED
        await wait_for(lambda: stream.health.reconnects == 1)
        assert stream.listen_key not in (None, old)
        assert stream.health.last_keepalive_ok is False
        await server.publish(account, [leverage(9)])
        assert number(await next_item(stream)) == 9


async def test_ws_api_listen_key_client_round_trip(server: Harness) -> None:
    account = server.account()
    keys = WsApiListenKeys(account.api_key, f"{server.ws}/ws-fapi/v1")
    try:
        key = await keys.create()
        assert await keys.keepalive(key) == key
        assert account.api_key not in repr(keys)
        await keys.close(key)
        with pytest.raises(ListenKeyNotFound) as missing:
            await keys.keepalive(key)
        assert missing.value.code == -1125
    finally:
        await keys.aclose()


async def test_stream_over_the_ws_api_transport(server: Harness) -> None:
    account = server.account()
    async with make_stream(server, account, key_transport="ws_api") as stream:
        await server.publish(account, [leverage(2)])
        assert number(await next_item(stream)) == 2
        await advance(server, 70 * MINUTE)
        assert stream.health.last_keepalive_ok is True
        assert stream.health.keys_issued == 1
        key = stream.listen_key
    status, _ = await server.admin("POST", f"listenKeys/{key}/expire")
    assert status == 404  # closed with userDataStream.stop on exit
