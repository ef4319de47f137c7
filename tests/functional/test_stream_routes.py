"""Every stream URL form over a real WebSocket connection (spec §4.1-§4.3, issue #2 item 6).

Each test publishes through the admin API and asserts the exact frames a client receives.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.protocol import State

from tests.conftest import Harness, event_fixture
from tests.functional.stream_helpers import (
    assert_quiet,
    assert_silent,
    new_account,
    open_ws,
    recv_json,
    request,
)

ORDER = event_fixture("order_trade_update_doc")
ACCOUNT = event_fixture("account_update_doc")
TRADE = event_fixture("trade_lite_doc")
MARGIN = event_fixture("margin_call")
BOGUS_KEY = "Z" * 64

# (target with {K} for the listenKey, SUBSCRIBE params or None, combined envelope?)
SINGLE_KEY_FORMS = [
    pytest.param("/ws/{K}", None, False, id="ws-path"),
    pytest.param("/stream?streams={K}", None, True, id="stream-query"),
    pytest.param("/ws", ["{K}"], False, id="ws-subscribe"),
    pytest.param("/stream", ["{K}"], True, id="stream-subscribe"),
    pytest.param("/private/ws/{K}", None, False, id="private-ws-path"),
    pytest.param("/private/ws?listenKey={K}", None, False, id="private-ws-query"),
    pytest.param("/private/stream?streams={K}", None, True, id="private-stream-query"),
    pytest.param("/private/stream", ["{K}"], True, id="private-stream-subscribe"),
    pytest.param("/private/stream?streams=", ["{K}"], True, id="private-stream-empty-sdk"),
    pytest.param("/ws/", ["{K}"], False, id="ws-trailing-slash"),
]


@pytest.mark.parametrize(("target", "subscribe", "combined"), SINGLE_KEY_FORMS)
async def test_url_form_delivers_published_event(
    server: Harness, target: str, subscribe: list[str] | None, combined: bool
) -> None:
    account, key = await new_account(server)
    async with open_ws(server, target.replace("{K}", key)) as ws:
        if subscribe is not None:
            params = [p.replace("{K}", key) for p in subscribe]
            reply = await request(ws, {"method": "SUBSCRIBE", "params": params, "id": 1})
            assert reply == '{"result":null,"id":1}'
        assert await server.publish(account, ORDER) == 1
        frame = await recv_json(ws)
        assert frame == ({"stream": key, "data": ORDER} if combined else ORDER)
        assert await assert_quiet(ws) == [key]


@pytest.mark.parametrize(
    "events",
    ["ORDER_TRADE_UPDATE/ACCOUNT_UPDATE", "ORDER_TRADE_UPDATE%2FACCOUNT_UPDATE"],
    ids=["slash", "percent-encoded"],
)
async def test_private_ws_events_filter_is_an_allow_list(server: Harness, events: str) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/private/ws?listenKey={key}&events={events}") as ws:
        await server.publish(account, [TRADE, ORDER, MARGIN, ACCOUNT, TRADE])
        assert await recv_json(ws) == ORDER
        assert await recv_json(ws) == ACCOUNT
        assert await assert_quiet(ws) == [f"{key}@ACCOUNT_UPDATE", f"{key}@ORDER_TRADE_UPDATE"]


async def test_private_stream_two_accounts_each_with_its_own_filter(server: Harness) -> None:
    alice, k1 = await new_account(server, "alice")
    bob, k2 = await new_account(server, "bob")
    target = (
        f"/private/stream?listenKey={k1}&events=ORDER_TRADE_UPDATE"
        f"&listenKey={k2}&events=ACCOUNT_UPDATE"
    )
    async with open_ws(server, target) as ws:
        await server.publish(alice, [ACCOUNT, ORDER])
        await server.publish(bob, [ORDER, ACCOUNT])
        assert await recv_json(ws) == {"stream": f"{k1}@ORDER_TRADE_UPDATE", "data": ORDER}
        assert await recv_json(ws) == {"stream": f"{k2}@ACCOUNT_UPDATE", "data": ACCOUNT}
        assert await assert_quiet(ws) == sorted(
            [f"{k1}@ORDER_TRADE_UPDATE", f"{k2}@ACCOUNT_UPDATE"]
        )


async def test_private_stream_subscribe_one_event_of_a_key(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, "/private/stream") as ws:
        name = f"{key}@ORDER_TRADE_UPDATE"
        reply = await request(ws, {"method": "SUBSCRIBE", "params": [name], "id": 7})
        assert reply == '{"result":null,"id":7}'
        await server.publish(account, [ACCOUNT, ORDER, TRADE])
        assert await recv_json(ws) == {"stream": name, "data": ORDER}
        assert await assert_quiet(ws) == [name]


async def test_bare_key_and_event_item_on_one_connection(server: Harness) -> None:
    """`K` and `K@EVENT` together: the event is sent once, under its `K@EVENT` name."""
    account, key = await new_account(server)
    async with open_ws(server, f"/private/stream?streams={key}/{key}@ORDER_TRADE_UPDATE") as ws:
        await server.publish(account, [ORDER, ACCOUNT])
        assert await recv_json(ws) == {"stream": f"{key}@ORDER_TRADE_UPDATE", "data": ORDER}
        assert await recv_json(ws) == {"stream": key, "data": ACCOUNT}
        await assert_quiet(ws)


NON_USER_DATA_ROUTES = [
    "/market/stream",
    "/market/ws",
    "/public/ws",
    "/public/stream",
    "/market/ws/{K}",
    "/public/ws/{K}",
    "/market/stream?streams={K}",
    "/public/stream?listenKey={K}",
]


@pytest.mark.parametrize("target", NON_USER_DATA_ROUTES)
async def test_market_and_public_routes_never_deliver_user_data(
    server: Harness, target: str
) -> None:
    account, key = await new_account(server)
    async with open_ws(server, target.replace("{K}", key)) as ws:
        sub = {"method": "SUBSCRIBE", "params": [key, "btcusdt@aggTrade"], "id": 1}
        assert await request(ws, sub) == '{"result":null,"id":1}'
        get = {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}
        combined = "stream" in target
        assert await request(ws, get) == f'{{"result":{str(combined).lower()},"id":2}}'
        await server.publish(account, [ORDER, ACCOUNT])
        assert sorted(await assert_quiet(ws)) == sorted([key, "btcusdt@aggTrade"])
        await assert_silent(ws)


@pytest.mark.parametrize(
    "target",
    [
        "/ws/{B}",
        "/stream?streams={B}",
        "/private/ws/{B}",
        "/private/ws?listenKey={B}&events=ORDER_TRADE_UPDATE",
        "/private/stream?listenKey={B}",
    ],
)
async def test_bogus_listen_key_connects_and_stays_silent(server: Harness, target: str) -> None:
    account, key = await new_account(server)
    async with (
        open_ws(server, target.replace("{B}", BOGUS_KEY)) as bogus,
        open_ws(server, f"/ws/{key}") as real,
    ):
        await server.publish(account, ORDER)
        assert await recv_json(real) == ORDER
        await assert_silent(bogus)
        assert bogus.state is State.OPEN
        await assert_quiet(bogus)


@pytest.mark.parametrize(
    "target",
    [
        "/stream/nonsense",
        "/foo",
        "/",
        "/ws/a/b",
        "/private",
        "/private/foo",
        "/market",
        "/ws-fapi/v2",
        "/private/ws/%00",
        "/ws/bad%20key",
    ],
)
async def test_unknown_path_rejects_handshake_with_404(server: Harness, target: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with open_ws(server, target):
            pass
    response = info.value.response
    assert response.status_code == 404
    body: Any = json.loads(response.body or b"{}")
    assert body == {"code": -1099, "msg": "Not found, unauthenticated, or unauthorized."}


async def test_route_rejection_does_not_disturb_open_connections(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as ws:
        for target in ("/stream/nonsense", "/foo"):
            with pytest.raises(InvalidStatus):
                async with open_ws(server, target):
                    pass
        await server.publish(account, ORDER)
        assert await recv_json(ws) == ORDER


async def test_events_filter_applies_to_the_path_key(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/private/ws/{key}?events=ORDER_TRADE_UPDATE") as ws:
        await server.publish(account, [ACCOUNT, ORDER])
        assert await recv_json(ws) == ORDER
        assert await assert_quiet(ws) == [f"{key}@ORDER_TRADE_UPDATE"]


async def test_url_with_1024_streams_connects_and_1025_is_404(server: Harness) -> None:
    account, key = await new_account(server)
    names = [key] + [f"m{i}" for i in range(1023)]  # short, to fit the 8 KiB URL limit
    async with open_ws(server, "/stream?streams=" + "/".join(names)) as ws:
        await server.publish(account, ORDER)
        assert await recv_json(ws) == {"stream": key, "data": ORDER}
        assert sorted(await assert_quiet(ws)) == sorted(names)
        sub = {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}
        assert await request(ws, sub) == (
            '{"error":{"code":4,"msg":"Too many subscriptions"},"id":1}'
        )
    with pytest.raises(InvalidStatus) as info:
        async with open_ws(server, "/stream?streams=" + "/".join([*names, "m9999"])):
            pass
    assert info.value.response.status_code == 404
