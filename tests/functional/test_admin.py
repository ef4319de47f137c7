"""The admin API over real HTTP and WebSocket connections (issue #2, "Admin API").

Accounts, event publishing with validation, the clock (virtual and real), connection drops
and stats. Every call goes through `/admin/v1/` with the bearer token.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import ADMIN_TOKEN, START_MS, Harness, event_fixture
from tests.functional.wsclient import (
    MINUTE,
    assert_nothing_received,
    pings,
    raw_connect,
    recv_json,
    wait_closed,
    ws_connect,
)
from userstream.clock import SystemClock
from userstream.server.app import ServerConfig, UserStreamServer
from userstream.simulator import Simulator
from userstream.simulator.driver import Feed

MAX_ADVANCE_MS = 400 * 24 * 3600 * 1000


def order() -> dict[str, Any]:
    return event_fixture("order_trade_update_doc")


async def admin_raw(
    server: Harness, method: str, path: str, data: bytes | None, token: str | None = ADMIN_TOKEN
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with server.http.request(
        method, f"{server.url}/admin/v1/{path}", data=data, headers=headers
    ) as response:
        return response.status, await response.json(content_type=None)


async def stats(server: Harness) -> dict[str, Any]:
    status, body = await server.admin("GET", "stats")
    assert status == 200
    assert isinstance(body, dict)
    return body


async def stream_count_becomes(server: Harness, expected: int) -> dict[str, Any]:
    """Stats once the server has seen every close (connection_lost runs a loop turn later)."""
    body = await stats(server)
    for _ in range(100):
        if body["connections"]["streams"] == expected:
            break
        await asyncio.sleep(0.005)
        body = await stats(server)
    assert body["connections"]["streams"] == expected
    return body


# accounts


async def test_create_account_default_and_custom_name(server: Harness) -> None:
    status, body = await server.admin("POST", "accounts")
    assert status == 200
    assert list(body) == ["accountId", "apiKey", "secretKey"]
    assert isinstance(body["accountId"], int)
    assert len(body["apiKey"]) == 64
    assert len(body["secretKey"]) == 64
    default = await server.server.accounts.by_id(body["accountId"])
    assert default is not None
    assert default.name == "account"

    status, named = await server.admin("POST", "accounts", {"name": "  desk-7  "})
    assert status == 200
    assert named["accountId"] != body["accountId"]
    account = await server.server.accounts.by_id(named["accountId"])
    assert account is not None
    assert account.name == "desk-7"
    # The new key works at once on REST.
    async with server.http.post(
        f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": named["apiKey"]}
    ) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": 5}',
        b'{"name": ""}',
        b'{"name": "   "}',
        b'{"name": "' + b"n" * 101 + b'"}',
        b'{"name": "a", "extra": 1}',
        b'{"name": null}',
        b"[]",
        b"not json",
        b'{"name": "a"',
    ],
)
async def test_create_account_invalid_body_is_400(server: Harness, body: bytes) -> None:
    before = len(server.server.accounts)
    status, reply = await admin_raw(server, "POST", "accounts", body)
    assert status == 400
    assert isinstance(reply["code"], int)
    assert isinstance(reply["msg"], str)
    assert len(server.server.accounts) == before


@pytest.mark.parametrize("token", [None, "wrong", ""])
async def test_admin_requires_the_token(server: Harness, token: str | None) -> None:
    status, reply = await admin_raw(server, "GET", "stats", None, token)
    assert status == 401
    assert reply["code"] == -1002


async def test_unknown_admin_route_is_404(server: Harness) -> None:
    status, _ = await server.admin("GET", "nothing-here")
    assert status == 404
    status, _ = await server.admin("DELETE", "accounts")  # wrong method
    assert status == 404


# events


async def test_publish_one_and_batch_fills_times_from_virtual_clock(server: Harness) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/private/ws?listenKey={key}") as ws:
        await server.advance(5 * MINUTE)
        now = START_MS + 5 * MINUTE
        one = order()
        del one["E"], one["T"]
        status, body = await server.admin("POST", f"accounts/{account.id}/events", one)
        assert (status, body) == (200, {"accepted": 1, "connections": 1})
        event = await recv_json(ws)
        assert (event["e"], event["E"], event["T"]) == ("ORDER_TRADE_UPDATE", now, now)
        assert event["o"]["T"] == 1568879465650  # nested times are the producer's

        kept = event_fixture("trade_lite_doc")
        margin = event_fixture("margin_call")
        del margin["E"]  # MARGIN_CALL has no T: only E is filled
        status, body = await server.admin(
            "POST", f"accounts/{account.id}/events", [kept, margin, one]
        )
        assert (status, body) == (200, {"accepted": 3, "connections": 1})
        received = [await recv_json(ws) for _ in range(3)]
        assert received[0] == kept
        assert received[1]["E"] == now
        assert "T" not in received[1]
        assert [e["e"] for e in received] == ["TRADE_LITE", "MARGIN_CALL", "ORDER_TRADE_UPDATE"]
        await assert_nothing_received(ws)


def _without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    target = event
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return event


def _with(event: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    target = event
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return event


INVALID_EVENTS: list[tuple[str, Any, str]] = [
    ("unknown e", {"e": "NOT_AN_EVENT", "E": 1}, "e"),
    ("missing e", {"E": 1}, "e"),
    ("missing field", _without(order(), "o", "q"), "o.q"),
    ("wrong type int", _with(order(), "8886774", "o", "i"), "o.i"),
    ("amount as number", _with(order(), 0.001, "o", "q"), "o.q"),
    ("wrong type bool", _with(order(), "false", "o", "m"), "o.m"),
    ("unknown field", _with(order(), 1, "zz"), "zz"),
    ("unknown nested field", _with(order(), 1, "o", "zz"), "o.zz"),
    ("E as string", _with(order(), "1", "E"), "E"),
    ("listenKeyExpired offered", event_fixture("listen_key_expired"), "e"),
    ("bad batch element", [order(), _without(order(), "o", "q"), order()], "[1].o.q"),
]


@pytest.mark.parametrize(
    ("payload", "field"),
    [case[1:] for case in INVALID_EVENTS],
    ids=[case[0] for case in INVALID_EVENTS],
)
async def test_invalid_events_are_400_naming_the_field(
    server: Harness, payload: Any, field: str
) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/private/ws?listenKey={key}") as ws:
        status, body = await server.admin("POST", f"accounts/{account.id}/events", payload)
        assert status == 400
        assert body["field"] == field
        assert isinstance(body["code"], int)
        assert isinstance(body["msg"], str)
        assert body["msg"]
        await assert_nothing_received(ws)  # all-or-nothing: the good ones were not sent
    assert (await stats(server))["events"]["accepted"] == 0


@pytest.mark.parametrize("body", [b"", b"[]", b"not json", b"42", b"[1]"])
async def test_unusable_event_bodies_are_400(server: Harness, body: bytes) -> None:
    account = server.account()
    status, reply = await admin_raw(server, "POST", f"accounts/{account.id}/events", body)
    assert status == 400
    assert "field" in reply


@pytest.mark.parametrize("account_id", ["999", "abc", "-1", "0"])
async def test_publish_to_unknown_account_is_404(server: Harness, account_id: str) -> None:
    status, body = await server.admin("POST", f"accounts/{account_id}/events", order())
    assert status == 404
    assert isinstance(body["code"], int)


async def test_publish_without_active_key_is_accepted_not_delivered(server: Harness) -> None:
    account = server.account()
    status, body = await server.admin("POST", f"accounts/{account.id}/events", [order(), order()])
    assert (status, body) == (200, {"accepted": 2, "connections": 0})
    body = await stats(server)
    assert body["events"] == {"accepted": 2, "delivered": 0}


async def test_publish_answers_how_many_connections_it_reached(server: Harness) -> None:
    """Issue 9 item 7: the connections of the account's live key open at that moment that
    want at least one of the events; other accounts' and filtered-out ones are not counted."""
    alice, bob = server.account("alice"), server.account("bob")
    alice_key, bob_key = await server.listen_key(alice), await server.listen_key(bob)
    trade_lite = event_fixture("trade_lite_doc")
    async with (
        ws_connect(f"{server.ws}/private/ws?listenKey={alice_key}") as bare,
        ws_connect(f"{server.ws}/stream?streams={alice_key}") as combined,
        ws_connect(f"{server.ws}/private/stream?listenKey={alice_key}&events=TRADE_LITE") as lite,
        ws_connect(f"{server.ws}/private/ws?listenKey={bob_key}") as other,
    ):
        path = f"accounts/{alice.id}/events"
        assert await server.admin("POST", path, order()) == (
            200,
            {"accepted": 1, "connections": 2},
        )
        assert await server.admin("POST", path, [order(), trade_lite]) == (
            200,
            {"accepted": 2, "connections": 3},
        )
        assert [(await recv_json(bare))["e"] for _ in range(3)] == [
            "ORDER_TRADE_UPDATE",
            "ORDER_TRADE_UPDATE",
            "TRADE_LITE",
        ]
        assert len([await recv_json(combined) for _ in range(3)]) == 3
        assert (await recv_json(lite))["data"] == trade_lite
        await assert_nothing_received(other)
    await stream_count_becomes(server, 0)
    # Nothing is kept for connections that open later: no replay, as on Binance.
    assert await server.admin("POST", f"accounts/{alice.id}/events", order()) == (
        200,
        {"accepted": 1, "connections": 0},
    )
    async with ws_connect(f"{server.ws}/private/ws?listenKey={alice_key}") as late:
        await assert_nothing_received(late)


async def test_stats_count_events_of_every_producer(server: Harness) -> None:
    """Issue 15 item 14: a feed published on the bus in process (as `simulate --fabricate
    --in-process` does) counts as accepted, like the admin API."""
    demo = server.server.demo_account
    assert demo is not None
    key = await server.listen_key(demo)
    async with ws_connect(f"{server.ws}/private/ws?listenKey={key}") as ws:
        feed = Feed(Simulator([demo.id], seed=1, rate=200), server.server.publish, SystemClock())
        await recv_json(ws)  # the feed's first event: it is running
        run = await feed.aclose()
        await server.publish(demo, order())
        for _ in range(run.published - 1):  # the rest of the feed's
            await recv_json(ws)
        assert (await recv_json(ws))["e"] == "ORDER_TRADE_UPDATE"
        await assert_nothing_received(ws)
    assert (await stats(server))["events"] == {
        "accepted": run.published + 1,
        "delivered": run.published + 1,
    }


# clock


async def test_clock_get_and_advance_fires_timers(server: Harness) -> None:
    status, body = await server.admin("GET", "clock")
    assert (status, body) == (200, {"now": START_MS, "virtual": True})
    account = server.account()
    key = await server.listen_key(account)
    ws = await raw_connect(server, f"/private/ws?listenKey={key}")
    status, body = await server.admin("POST", "clock/advance", {"ms": 3 * MINUTE})
    assert (status, body) == (200, {"now": START_MS + 3 * MINUTE, "virtual": True})
    assert pings(await ws.sync()) == [str(START_MS + 3 * MINUTE).encode()]
    # An hour later the key's expiry has fired (and the silent raw client was dropped).
    status, body = await server.admin("POST", "clock/advance", {"ms": 60 * MINUTE})
    assert body["now"] == START_MS + 63 * MINUTE
    snapshot = await stats(server)
    assert snapshot["listenKeys"] == {"active": 0, "ended": 1}
    code, reason = await ws.recv_close()
    assert code == 1008
    assert "pong" in reason
    await ws.aclose()
    status, _ = await server.admin("POST", "clock/advance", {"ms": 0})
    assert status == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"ms": -1}',
        b'{"ms": ' + str(MAX_ADVANCE_MS + 1).encode() + b"}",
        b"{}",
        b"",
        b'{"ms": "5"}',
        b'{"ms": 1.5}',
        b'{"ms": 5, "extra": true}',
        b"not json",
    ],
)
async def test_clock_advance_bad_body_is_400(server: Harness, body: bytes) -> None:
    status, reply = await admin_raw(server, "POST", "clock/advance", body)
    assert status == 400
    assert isinstance(reply["msg"], str)
    assert server.clock.now_ms() == START_MS


async def test_real_clock_server_refuses_advance(tmp_path: Path) -> None:
    config = ServerConfig(
        port=0, data_dir=tmp_path / "real", clock=SystemClock(), admin_token=ADMIN_TOKEN
    )
    app = UserStreamServer(config)
    await app.start()
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            before = SystemClock().now_ms()
            async with http.get(f"{app.http_url}/admin/v1/clock") as response:
                body = await response.json()
            assert body["virtual"] is False
            assert before <= body["now"] <= SystemClock().now_ms()
            async with http.post(
                f"{app.http_url}/admin/v1/clock/advance", json={"ms": 1000}
            ) as response:
                assert response.status == 409
                reply = await response.json()
            assert "virtual" in reply["msg"]
    finally:
        await app.aclose()


# connections/drop


async def test_drop_by_account_with_code_4000(server: Harness) -> None:
    alice, bob = server.account("alice"), server.account("bob")
    alice_key, bob_key = await server.listen_key(alice), await server.listen_key(bob)
    async with (
        ws_connect(f"{server.ws}/private/ws?listenKey={alice_key}") as a1,
        ws_connect(f"{server.ws}/stream?streams={alice_key}") as a2,
        ws_connect(f"{server.ws}/private/ws?listenKey={bob_key}") as b,
        ws_connect(f"{server.ws}/ws-fapi/v1") as api,
    ):
        status, body = await server.admin(
            "POST", "connections/drop", {"accountId": alice.id, "code": 4000}
        )
        assert (status, body) == (200, {"dropped": 2})
        for ws in (a1, a2):
            code, _ = await wait_closed(ws)
            assert code == 4000
        # The others keep working.
        await server.publish(bob, order())
        assert (await recv_json(b))["e"] == "ORDER_TRADE_UPDATE"
        await api.send(json.dumps({"id": 1, "method": "userDataStream.ping", "params": {}}))
        assert (await recv_json(api))["status"] == 400
        await stream_count_becomes(server, 1)


async def test_drop_all_default_code_1006_sends_no_close_frame(server: Harness) -> None:
    alice = server.account()
    key = await server.listen_key(alice)
    raw = await raw_connect(server, f"/private/ws?listenKey={key}")
    raw_api = await raw_connect(server, "/ws-fapi/v1")
    async with (
        ws_connect(f"{server.ws}/ws/{key}") as ws,
        ws_connect(f"{server.ws}/market/ws") as market,
        ws_connect(f"{server.ws}/ws-fapi/v1") as api,
    ):
        status, body = await server.admin("POST", "connections/drop", {})
        assert (status, body) == (200, {"dropped": 5})
        for client in (ws, market, api):
            code, reason = await wait_closed(client)
            assert code == 1006
            assert client.close_code == 1006
            assert not reason
        for client_raw in (raw, raw_api):
            with pytest.raises(EOFError):
                await client_raw.recv()  # TCP closed with no close frame before it
            await client_raw.aclose()
    snapshot = await stream_count_becomes(server, 0)
    assert snapshot["connections"]["wsApi"] == 0


async def test_drop_explicit_1006_by_account(server: Harness) -> None:
    account = server.account()
    key = await server.listen_key(account)
    raw = await raw_connect(server, f"/private/ws?listenKey={key}")
    status, body = await server.admin(
        "POST", "connections/drop", {"accountId": account.id, "code": 1006}
    )
    assert (status, body) == (200, {"dropped": 1})
    with pytest.raises(EOFError):
        await raw.recv()
    await raw.aclose()


async def test_drop_account_without_connections(server: Harness) -> None:
    account = server.account()
    status, body = await server.admin("POST", "connections/drop", {"accountId": account.id})
    assert (status, body) == (200, {"dropped": 0})


@pytest.mark.parametrize(
    "body",
    [
        {"code": 999},
        {"code": 5000},
        {"code": 0},
        {"code": 1005},  # "no status": must never be sent in a close frame (RFC 6455 §7.4.1)
        {"code": 1015},  # "TLS failure": ditto
        {"code": "4000"},
        {"accountId": "1"},
        {"bogus": 1},
    ],
)
async def test_drop_bad_body_is_400(server: Harness, body: dict[str, Any]) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/private/ws?listenKey={key}") as ws:
        status, reply = await server.admin("POST", "connections/drop", body)
        assert status == 400
        assert isinstance(reply["msg"], str)
        await assert_nothing_received(ws)  # still open


# stats


async def test_stats_counts_connections_keys_and_events(server: Harness) -> None:
    snapshot = await stats(server)
    assert snapshot["now"] == START_MS
    assert snapshot["connections"] == {"streams": 0, "wsApi": 0}
    assert snapshot["listenKeys"] == {"active": 0, "ended": 0}
    assert snapshot["events"] == {"accepted": 0, "delivered": 0}

    alice, bob = server.account("alice"), server.account("bob")
    alice_key, bob_key = await server.listen_key(alice), await server.listen_key(bob)
    clients: list[ClientConnection] = []
    async with (
        ws_connect(f"{server.ws}/private/ws?listenKey={alice_key}") as a1,
        ws_connect(f"{server.ws}/stream?streams={alice_key}") as a2,
        ws_connect(f"{server.ws}/private/ws?listenKey={bob_key}") as b,
        ws_connect(f"{server.ws}/ws-fapi/v1") as api,
    ):
        clients = [a1, a2, b]
        snapshot = await stats(server)
        assert snapshot["connections"] == {"streams": 3, "wsApi": 1}
        assert snapshot["listenKeys"] == {"active": 2, "ended": 0}
        assert snapshot["accounts"] == len(server.server.accounts)

        await server.publish(alice, [order(), order(), order()])  # 3 events x 2 connections
        await server.publish(bob, order())  # 1 x 1
        for ws, count in zip(clients, (3, 3, 1), strict=True):
            for _ in range(count):
                await recv_json(ws)
        snapshot = await stats(server)
        assert snapshot["events"] == {"accepted": 4, "delivered": 7}

        await api.send(
            json.dumps(
                {"id": 1, "method": "userDataStream.stop", "params": {"apiKey": bob.api_key}}
            )
        )
        assert (await recv_json(api))["status"] == 200
        assert (await recv_json(b))["e"] == "listenKeyExpired"
        snapshot = await stats(server)
        assert snapshot["listenKeys"] == {"active": 1, "ended": 1}
        await b.close()
        await stream_count_becomes(server, 2)
    snapshot = await stream_count_becomes(server, 0)
    assert snapshot["connections"]["wsApi"] == 0
    assert snapshot["events"]["accepted"] == 4


async def test_stats_follow_the_virtual_clock(server: Harness) -> None:
    account = server.account()
    await server.listen_key(account)
    await server.advance(60 * MINUTE)
    snapshot = await stats(server)
    assert snapshot["now"] == START_MS + 60 * MINUTE
    assert snapshot["listenKeys"] == {"active": 0, "ended": 1}
