"""listenKey expiry and close over real sockets (spec §2.3, §3.4, §5.1; issue #2 item 8).

When a key's 60 minutes run out, or it is closed by DELETE, `userDataStream.stop` or the
admin fault injection, every connection on it receives exactly one
`{"e":"listenKeyExpired","E":<ms>,"listenKey":K}` and then nothing more; it stays open.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import START_MS, Harness
from tests.functional.wsclient import (
    MINUTE,
    advance_with_pongs,
    assert_nothing_received,
    recv_json,
    ws_connect,
)
from userstream.accounts import Account

HOUR = 60 * MINUTE
LEVERAGE = {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "BTCUSDT", "l": 25}}


def expired(key: str, at_ms: int) -> dict[str, Any]:
    return {"e": "listenKeyExpired", "E": at_ms, "listenKey": key}


async def rest(server: Harness, method: str, account: Account) -> tuple[int, Any]:
    async with server.http.request(
        method, f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
    ) as response:
        return response.status, await response.json()


async def ws_api(ws: ClientConnection, method: str, account: Account) -> Any:
    await ws.send(json.dumps({"id": 1, "method": method, "params": {"apiKey": account.api_key}}))
    return await recv_json(ws)


async def expect_expired_once(ws: ClientConnection, key: str, at_ms: int) -> None:
    """Exactly one listenKeyExpired (E a JSON integer), then silence; still open."""
    raw = await ws.recv()
    assert isinstance(raw, str)
    assert f'"E":{at_ms},' in raw  # an integer on the wire, not a string
    assert json.loads(raw) == expired(key, at_ms)
    await assert_nothing_received(ws)


async def test_expiry_at_60_minutes_reaches_every_connection_once(server: Harness) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with (
        ws_connect(f"{server.ws}/private/ws?listenKey={key}") as first,
        ws_connect(f"{server.ws}/private/ws/{key}") as second,
        ws_connect(f"{server.ws}/ws/{key}") as legacy,
    ):
        conns = (first, second, legacy)
        await advance_with_pongs(server, HOUR - 1, *conns)
        for ws in conns:
            await assert_nothing_received(ws)
        await advance_with_pongs(server, 1, *conns)
        for ws in conns:
            await expect_expired_once(ws, key, START_MS + HOUR)
        # Nothing more for that key: a later event is accepted but not delivered. (A second
        # passes first: the checks' pings count toward the 10 incoming messages per second.)
        await server.advance(1000)
        assert await server.publish(account, LEVERAGE) == 1
        for ws in conns:
            await assert_nothing_received(ws)
        # The connections stay open through more ping cycles.
        await advance_with_pongs(server, 30 * MINUTE, *conns)
        for ws in conns:
            await assert_nothing_received(ws)
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":9}')
            assert (await recv_json(ws))["id"] == 9


async def test_events_flow_until_expiry(server: Harness) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/private/ws?listenKey={key}") as ws:
        await advance_with_pongs(server, 59 * MINUTE, ws)
        await server.publish(account, LEVERAGE)
        event = await recv_json(ws)
        assert event["e"] == "ACCOUNT_CONFIG_UPDATE"
        assert event["E"] == START_MS + 59 * MINUTE
        await advance_with_pongs(server, MINUTE, ws)
        await expect_expired_once(ws, key, START_MS + HOUR)


@pytest.mark.parametrize("via", ["PUT", "userDataStream.ping", "POST", "userDataStream.start"])
async def test_keepalive_at_59_minutes_postpones_expiry(server: Harness, via: str) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with (
        ws_connect(f"{server.ws}/private/ws?listenKey={key}") as stream,
        ws_connect(f"{server.ws}/ws-fapi/v1") as api,
    ):
        await advance_with_pongs(server, 59 * MINUTE, stream, api)
        if via.startswith("userDataStream"):
            reply = await ws_api(api, via, account)
            assert reply["status"] == 200
            assert reply["result"] == {"listenKey": key}
        else:
            status, body = await rest(server, via, account)
            assert (status, body) == (200, {"listenKey": key})
        await advance_with_pongs(server, HOUR - 1, stream, api)  # to 1:58:59.999
        await assert_nothing_received(stream)
        await advance_with_pongs(server, 1, stream, api)
        await expect_expired_once(stream, key, START_MS + 59 * MINUTE + HOUR)


@pytest.mark.parametrize("via", ["DELETE", "userDataStream.stop", "admin"])
async def test_close_sends_listen_key_expired_at_once(server: Harness, via: str) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with (
        ws_connect(f"{server.ws}/private/ws?listenKey={key}") as first,
        ws_connect(f"{server.ws}/ws/{key}") as second,
        ws_connect(f"{server.ws}/ws-fapi/v1") as api,
    ):
        await advance_with_pongs(server, 10 * MINUTE, first, second, api)
        if via == "DELETE":
            assert await rest(server, "DELETE", account) == (200, {})
        elif via == "admin":
            status, body = await server.admin("POST", f"listenKeys/{key}/expire")
            assert status == 200
            assert body["listenKey"] == key
        else:
            reply = await ws_api(api, via, account)
            assert (reply["status"], reply["result"]) == (200, {})
        for ws in (first, second):
            await expect_expired_once(ws, key, START_MS + 10 * MINUTE)
        # The key is gone: PUT is -1125, events are not delivered, the old timer is inert.
        status, body = await rest(server, "PUT", account)
        assert (status, body["code"]) == (400, -1125)
        await server.publish(account, LEVERAGE)
        await advance_with_pongs(server, 60 * MINUTE, first, second, api)
        for ws in (first, second):
            await assert_nothing_received(ws)
        # A later POST issues a new key; the old connections still get nothing.
        new_key = await server.listen_key(account)
        assert new_key != key
        await server.publish(account, LEVERAGE)
        for ws in (first, second):
            await assert_nothing_received(ws)


async def test_admin_expire_unknown_key_is_404(server: Harness) -> None:
    status, body = await server.admin("POST", f"listenKeys/{'x' * 64}/expire")
    assert status == 404
    assert body["code"] == -1125
    assert isinstance(body["msg"], str)


async def test_new_key_after_expiry_and_new_connection_gets_events(server: Harness) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/private/ws?listenKey={key}") as old:
        await advance_with_pongs(server, HOUR, old)
        await expect_expired_once(old, key, START_MS + HOUR)
        status, body = await rest(server, "PUT", account)
        assert (status, body["code"]) == (400, -1125)
        new_key = await server.listen_key(account)
        assert new_key != key
        async with ws_connect(f"{server.ws}/private/ws?listenKey={new_key}") as new:
            await server.publish(account, LEVERAGE)
            assert (await recv_json(new))["e"] == "ACCOUNT_CONFIG_UPDATE"
            await assert_nothing_received(old)
            await advance_with_pongs(server, HOUR, old, new)
            await expect_expired_once(new, new_key, START_MS + 2 * HOUR)
            await assert_nothing_received(old)


@pytest.mark.parametrize(
    "path",
    ["/stream?streams={k}", "/private/stream?streams={k}", "/private/stream?listenKey={k}"],
)
async def test_combined_connections_get_wrapped_event(server: Harness, path: str) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(server.ws + path.format(k=key)) as ws:
        await advance_with_pongs(server, HOUR, ws)
        message = await recv_json(ws)
        assert message == {"stream": key, "data": expired(key, START_MS + HOUR)}
        await assert_nothing_received(ws)


async def test_subscribed_connection_gets_expiry(server: Harness) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/private/stream") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [key], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        assert await rest(server, "DELETE", account) == (200, {})
        assert await recv_json(ws) == {"stream": key, "data": expired(key, START_MS)}
        await assert_nothing_received(ws)


async def test_expiry_only_touches_its_own_key(server: Harness) -> None:
    alice, bob = server.account("alice"), server.account("bob")
    alice_key = await server.listen_key(alice)
    await server.advance(30 * MINUTE)
    bob_key = await server.listen_key(bob)
    async with (
        ws_connect(f"{server.ws}/private/ws?listenKey={alice_key}") as a,
        ws_connect(f"{server.ws}/private/ws?listenKey={bob_key}") as b,
    ):
        await advance_with_pongs(server, 30 * MINUTE, a, b)
        await expect_expired_once(a, alice_key, START_MS + HOUR)
        await assert_nothing_received(b)
        await server.publish(bob, LEVERAGE)
        assert (await recv_json(b))["e"] == "ACCOUNT_CONFIG_UPDATE"
