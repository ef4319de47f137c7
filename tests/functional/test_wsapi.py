"""The WebSocket API at `/ws-fapi/v1` over real sockets (spec §3; issue #2 item 5).

`userDataStream.start/ping/stop` with `apiKey` in params behave as the REST routes do; the
envelope echoes `id` with its type and honours `returnRateLimits`; every bad request gets a
Binance-shaped error and the connection keeps serving, except an oversized frame (1009).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import Harness
from tests.functional.wsclient import recv_json, wait_closed, ws_connect
from userstream.accounts import Account

WS_API = "/ws-fapi/v1"
ENVELOPE = -1000  # protocol/wsapi.py ENVELOPE_ERROR_CODE


async def call(
    ws: ClientConnection, method: str, params: dict[str, Any] | None = None, id: Any = 1
) -> Any:
    request: dict[str, Any] = {"id": id, "method": method}
    if params is not None:
        request["params"] = params
    await ws.send(json.dumps(request))
    return await recv_json(ws)


async def rest(server: Harness, method: str, account: Account) -> tuple[int, Any]:
    async with server.http.request(
        method, f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
    ) as response:
        return response.status, await response.json()


def assert_rate_limits(reply: dict[str, Any]) -> None:
    (limit,) = reply["rateLimits"]
    assert limit["rateLimitType"] == "REQUEST_WEIGHT"
    assert (limit["interval"], limit["intervalNum"]) == ("MINUTE", 1)
    assert isinstance(limit["limit"], int)
    assert isinstance(limit["count"], int)
    assert limit["count"] >= 1


async def test_start_ping_stop_match_rest(server: Harness) -> None:
    account = server.account()
    async with ws_connect(server.ws + WS_API) as ws:
        started = await call(ws, "userDataStream.start", {"apiKey": account.api_key})
        assert list(started) == ["id", "status", "result", "rateLimits"]
        assert (started["id"], started["status"]) == (1, 200)
        key = started["result"]["listenKey"]
        assert len(key) == 64
        assert key.isalnum()
        assert_rate_limits(started)
        # REST POST returns the same key; start again returns it too.
        assert await server.listen_key(account) == key
        again = await call(ws, "userDataStream.start", {"apiKey": account.api_key}, id=2)
        assert again["result"] == {"listenKey": key}
        pinged = await call(ws, "userDataStream.ping", {"apiKey": account.api_key}, id=3)
        assert (pinged["id"], pinged["status"], pinged["result"]) == (3, 200, {"listenKey": key})
        stopped = await call(ws, "userDataStream.stop", {"apiKey": account.api_key}, id=4)
        assert (stopped["id"], stopped["status"], stopped["result"]) == (4, 200, {})
        # The key is closed for REST too, and a later start issues a new one.
        status, body = await rest(server, "PUT", account)
        assert (status, body["code"]) == (400, -1125)
        fresh = await call(ws, "userDataStream.start", {"apiKey": account.api_key}, id=5)
        assert fresh["result"]["listenKey"] != key


async def test_rest_key_is_pinged_over_ws_api(server: Harness) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(server.ws + WS_API) as ws:
        reply = await call(ws, "userDataStream.ping", {"apiKey": account.api_key})
        assert reply["result"] == {"listenKey": key}
    assert await rest(server, "DELETE", account) == (200, {})


@pytest.mark.parametrize("method", ["userDataStream.ping", "userDataStream.stop"])
async def test_no_active_key_is_1125(server: Harness, method: str) -> None:
    account = server.account()
    async with ws_connect(server.ws + WS_API) as ws:
        reply = await call(ws, method, {"apiKey": account.api_key}, id="req-1")
        assert reply["id"] == "req-1"
        assert reply["status"] == 400
        assert reply["error"] == {"code": -1125, "msg": "This listenKey does not exist."}
        assert "result" not in reply
        assert_rate_limits(reply)
        # The connection keeps serving.
        started = await call(ws, "userDataStream.start", {"apiKey": account.api_key})
        assert started["status"] == 200


@pytest.mark.parametrize(
    "request_id", [0, 42, -7, 2**63 - 1, "abc-DEF_123", "x" * 36, None], ids=repr
)
async def test_id_echoed_with_its_type(server: Harness, request_id: Any) -> None:
    account = server.account()
    async with ws_connect(server.ws + WS_API) as ws:
        await ws.send(
            json.dumps(
                {
                    "id": request_id,
                    "method": "userDataStream.start",
                    "params": {"apiKey": account.api_key},
                }
            )
        )
        raw = await ws.recv()
        assert isinstance(raw, str)
        assert raw.startswith('{"id":' + json.dumps(request_id, separators=(",", ":")) + ",")
        reply = json.loads(raw)
        assert reply["id"] == request_id
        assert type(reply["id"]) is type(request_id)
        assert reply["status"] == 200


async def test_url_return_rate_limits_false_and_per_request_override(server: Harness) -> None:
    account = server.account()
    params = {"apiKey": account.api_key}
    async with ws_connect(f"{server.ws}{WS_API}?returnRateLimits=false") as ws:
        reply = await call(ws, "userDataStream.start", params)
        assert list(reply) == ["id", "status", "result"]
        reply = await call(ws, "userDataStream.ping", {**params, "returnRateLimits": True})
        assert_rate_limits(reply)
        reply = await call(ws, "userDataStream.ping", {**params, "returnRateLimits": False})
        assert "rateLimits" not in reply
        # Errors follow the same switch.
        reply = await call(ws, "userDataStream.ping", {"apiKey": "x" * 64})
        assert reply["status"] == 401
        assert "rateLimits" not in reply
    async with ws_connect(server.ws + WS_API) as ws:
        reply = await call(ws, "userDataStream.ping", {**params, "returnRateLimits": False})
        assert list(reply) == ["id", "status", "result"]
        reply = await call(ws, "userDataStream.ping", params)
        assert_rate_limits(reply)


async def test_rate_limit_count_is_shared_with_rest(server: Harness) -> None:
    account = server.account()
    async with ws_connect(server.ws + WS_API) as ws:
        first = await call(ws, "userDataStream.start", {"apiKey": account.api_key})
        before = first["rateLimits"][0]["count"]
        await server.listen_key(account)  # REST, weight 1
        second = await call(ws, "userDataStream.ping", {"apiKey": account.api_key})
        assert second["rateLimits"][0]["count"] == before + 2


BAD_REQUESTS: list[tuple[str, str | dict[str, Any], Any, int, int, str]] = [
    # (name, request, echoed id, status, code, text in msg)
    (
        "missing apiKey",
        {"id": 5, "method": "userDataStream.start", "params": {}},
        5,
        400,
        -1102,
        "'apiKey'",
    ),
    (
        "no params",
        {"id": 5, "method": "userDataStream.start"},
        5,
        400,
        -1102,
        "'apiKey'",
    ),
    (
        "null apiKey",
        {"id": 5, "method": "userDataStream.ping", "params": {"apiKey": None}},
        5,
        400,
        -1102,
        "'apiKey'",
    ),
    (
        "malformed apiKey",
        {"id": 6, "method": "userDataStream.start", "params": {"apiKey": "not a key"}},
        6,
        401,
        -2014,
        "API-key format invalid.",
    ),
    (
        "unknown apiKey",
        {"id": 7, "method": "userDataStream.stop", "params": {"apiKey": "A" * 64}},
        7,
        401,
        -2015,
        "Invalid API-key, IP, or permissions for action.",
    ),
    (
        "unknown method",
        {"id": "m1", "method": "algoOrder.place", "params": {}},
        "m1",
        400,
        ENVELOPE,
        "Unknown method 'algoOrder.place'",
    ),
    ("invalid JSON", '{"id": 8, "method": ', None, 400, ENVELOPE, "Invalid JSON"),
    ("JSON array", "[1, 2]", None, 400, ENVELOPE, "Invalid JSON"),
    (
        "params not an object",
        {"id": 9, "method": "userDataStream.start", "params": ["k"]},
        9,
        400,
        ENVELOPE,
        "Invalid 'params'",
    ),
    (
        "bad id",
        {"id": {"x": 1}, "method": "userDataStream.start", "params": {}},
        None,
        400,
        ENVELOPE,
        "Invalid 'id'",
    ),
    (
        "missing method",
        {"id": 10, "params": {}},
        10,
        400,
        ENVELOPE,
        "Invalid 'method'",
    ),
    (
        "returnRateLimits not a bool",
        {"id": 11, "method": "userDataStream.start", "params": {"returnRateLimits": "no"}},
        11,
        400,
        -1130,
        "'returnRateLimits'",
    ),
]


@pytest.mark.parametrize(
    ("request_", "echoed", "status", "code", "text"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_bad_request_answered_and_connection_keeps_serving(
    server: Harness,
    request_: str | dict[str, Any],
    echoed: Any,
    status: int,
    code: int,
    text: str,
) -> None:
    account = server.account()
    async with ws_connect(server.ws + WS_API) as ws:
        await ws.send(request_ if isinstance(request_, str) else json.dumps(request_))
        reply = await recv_json(ws)
        assert list(reply)[:3] == ["id", "status", "error"]
        assert reply["id"] == echoed
        assert reply["status"] == status
        assert reply["error"]["code"] == code
        assert text in reply["error"]["msg"]
        assert "result" not in reply
        ok = await call(ws, "userDataStream.start", {"apiKey": account.api_key}, id=99)
        assert (ok["id"], ok["status"]) == (99, 200)


async def test_version_prefixed_method(server: Harness) -> None:
    account = server.account()
    async with ws_connect(server.ws + WS_API) as ws:
        reply = await call(ws, "v1/userDataStream.start", {"apiKey": account.api_key})
        assert reply["status"] == 200


async def test_requests_answered_in_order(server: Harness) -> None:
    account = server.account()
    async with ws_connect(server.ws + WS_API) as ws:
        for n in range(20):
            method = ("userDataStream.start", "userDataStream.ping", "nope")[n % 3]
            await ws.send(
                json.dumps({"id": n, "method": method, "params": {"apiKey": account.api_key}})
            )
        replies = [await recv_json(ws) for _ in range(20)]
        assert [r["id"] for r in replies] == list(range(20))
        assert [r["status"] for r in replies] == [(200, 200, 400)[n % 3] for n in range(20)]


async def test_oversized_frame_closes_1009(server: Harness) -> None:
    account = server.account()
    limit = server.server.config.max_message_bytes
    async with ws_connect(server.ws + WS_API) as ws, ws_connect(server.ws + WS_API) as other:
        huge = json.dumps(
            {"id": 1, "method": "userDataStream.start", "params": {"pad": "x" * (limit + 1)}}
        )
        await ws.send(huge)
        code, _ = await wait_closed(ws)
        assert code == 1009
        # Other connections are unaffected.
        reply = await call(other, "userDataStream.start", {"apiKey": account.api_key})
        assert reply["status"] == 200


async def test_request_just_under_the_limit_is_served(server: Harness) -> None:
    account = server.account()
    limit = server.server.config.max_message_bytes
    async with ws_connect(server.ws + WS_API) as ws:
        base = json.dumps(
            {"id": 1, "method": "userDataStream.start", "params": {"apiKey": account.api_key}}
        )
        pad = limit - len(base) - len(', "pad": ""')
        request = base[:-2] + f', "pad": "{"x" * pad}"' + "}}"
        assert len(request) == limit
        await ws.send(request)
        reply = await recv_json(ws)
        assert reply["status"] == 200
