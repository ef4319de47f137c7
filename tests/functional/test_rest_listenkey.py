"""REST listenKey lifecycle over real sockets (spec §2, §6.6), on the virtual clock.

Every test talks to a real `UserStreamServer` on 127.0.0.1 through aiohttp and asserts the exact
status, body and headers a Binance client sees.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import START_MS, Harness, running_harness
from userstream.accounts import Account
from userstream.clock import ManualClock
from userstream.protocol.limits import WeightLimits

MINUTE = 60_000
LISTEN_KEY = "/fapi/v1/listenKey"
KEY_RE = re.compile(r"[A-Za-z0-9]{64}")

NOT_EXIST = {"code": -1125, "msg": "This listenKey does not exist."}
BAD_FORMAT = {"code": -2014, "msg": "API-key format invalid."}
REJECTED = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
JSON = "application/json"


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    data: bytes | str | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    """One request; returns (status, decoded JSON body, response headers)."""
    async with http.request(method, url, headers=headers, data=data) as response:
        raw = await response.read()
        return response.status, json.loads(raw), response.headers


async def lk(
    h: Harness,
    method: str,
    account: Account | None,
    *,
    query: str = "",
    data: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    all_headers = dict(headers or {})
    if account is not None:
        all_headers["X-MBX-APIKEY"] = account.api_key
    url = f"{h.url}{LISTEN_KEY}" + (f"?{query}" if query else "")
    async with h.http.request(method, url, headers=all_headers, data=data) as response:
        assert response.headers["Content-Type"] == JSON
        assert response.headers["X-MBX-USED-WEIGHT-1M"].isdigit()
        return response.status, json.loads(await response.read())


async def post_key(h: Harness, account: Account) -> str:
    status, body = await lk(h, "POST", account)
    assert status == 200, body
    assert set(body) == {"listenKey"}
    key = body["listenKey"]
    assert isinstance(key, str)
    assert KEY_RE.fullmatch(key), key
    return key


# --- issue, extend, close -------------------------------------------------------------------


async def test_post_issues_a_64_char_alphanumeric_key(server: Harness) -> None:
    account = server.account()
    async with server.http.post(
        f"{server.url}{LISTEN_KEY}", headers={"X-MBX-APIKEY": account.api_key}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == JSON
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        raw = await response.read()
    body = json.loads(raw)
    assert list(body) == ["listenKey"]
    assert KEY_RE.fullmatch(body["listenKey"])
    assert raw == b'{"listenKey":"' + body["listenKey"].encode() + b'"}'


async def test_post_again_returns_the_same_key_and_extends_it(server: Harness) -> None:
    account = server.account()
    key = await post_key(server, account)
    await server.advance(59 * MINUTE)
    assert await post_key(server, account) == key
    # 118 minutes after issue: only alive because the second POST extended it by 60 minutes.
    await server.advance(59 * MINUTE)
    assert await lk(server, "PUT", account) == (200, {"listenKey": key})
    # And the PUT extended it again: 59 more minutes later it is still the same key.
    await server.advance(59 * MINUTE)
    assert await post_key(server, account) == key


async def test_key_without_extension_dies_at_exactly_60_minutes(server: Harness) -> None:
    account = server.account()
    key = await post_key(server, account)
    await server.advance(60 * MINUTE - 1)
    assert await lk(server, "PUT", account) == (200, {"listenKey": key})
    await server.advance(60 * MINUTE)
    assert await lk(server, "PUT", account) == (400, NOT_EXIST)


async def test_put_returns_the_key_and_extends_it(server: Harness) -> None:
    account = server.account()
    key = await post_key(server, account)
    await server.advance(50 * MINUTE)
    assert await lk(server, "PUT", account) == (200, {"listenKey": key})
    await server.advance(50 * MINUTE)
    assert await lk(server, "PUT", account) == (200, {"listenKey": key})
    record = server.server.key_store.get(key)
    assert record is not None
    assert record.expires_ms == START_MS + 100 * MINUTE + 60 * MINUTE


async def test_delete_returns_empty_object_and_ends_the_key(server: Harness) -> None:
    account = server.account()
    key = await post_key(server, account)
    assert await lk(server, "DELETE", account) == (200, {})
    assert await lk(server, "PUT", account) == (400, NOT_EXIST)
    assert await lk(server, "DELETE", account) == (400, NOT_EXIST)
    new_key = await post_key(server, account)
    assert new_key != key


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_put_and_delete_without_an_active_key_are_1125(server: Harness, method: str) -> None:
    account = server.account()
    async with server.http.request(
        method, f"{server.url}{LISTEN_KEY}", headers={"X-MBX-APIKEY": account.api_key}
    ) as response:
        assert response.status == 400
        assert response.headers["Content-Type"] == JSON
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        assert await response.read() == b'{"code":-1125,"msg":"This listenKey does not exist."}'


async def test_after_expiry_put_is_1125_and_post_issues_a_new_key(server: Harness) -> None:
    account = server.account()
    key = await post_key(server, account)
    await server.advance(60 * MINUTE)
    assert await lk(server, "PUT", account) == (400, NOT_EXIST)
    assert await lk(server, "DELETE", account) == (400, NOT_EXIST)
    new_key = await post_key(server, account)
    assert new_key != key
    assert await lk(server, "PUT", account) == (200, {"listenKey": new_key})
    assert server.server.key_store.get(key) is None


async def test_one_key_per_account_and_different_accounts_get_different_keys(
    server: Harness,
) -> None:
    alice, bob = server.account("alice"), server.account("bob")
    a1 = await post_key(server, alice)
    b1 = await post_key(server, bob)
    assert a1 != b1
    assert await post_key(server, alice) == a1
    assert await post_key(server, bob) == b1
    # Closing one account's key leaves the other's alone.
    assert await lk(server, "DELETE", alice) == (200, {})
    assert await lk(server, "PUT", bob) == (200, {"listenKey": b1})
    assert await lk(server, "PUT", alice) == (400, NOT_EXIST)
    a2 = await post_key(server, alice)
    assert a2 not in (a1, b1)


# --- API key checks --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_missing_api_key_header_is_2014(server: Harness, method: str) -> None:
    async with server.http.request(method, f"{server.url}{LISTEN_KEY}") as response:
        assert response.status == 401
        assert response.headers["Content-Type"] == JSON
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        assert json.loads(await response.read()) == BAD_FORMAT


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "api_key",
    [
        "",
        "short",
        "a" * 63,
        "a" * 65,
        "a" * 200,
        "a" * 62 + "-_",
        "a" * 63 + " ",
        " " + "a" * 63,
        "a" * 32 + "." + "a" * 31,
    ],
    ids=[
        "empty",
        "short",
        "63",
        "65",
        "200",
        "dash-underscore",
        "trailing-space",
        "lead-space",
        "dot",
    ],
)
async def test_malformed_api_key_is_2014(server: Harness, method: str, api_key: str) -> None:
    server.account()
    status, body = await lk(server, method, None, headers={"X-MBX-APIKEY": api_key})
    assert (status, body) == (401, BAD_FORMAT)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_unicode_api_key_is_2014(server: Harness, method: str) -> None:
    # 64 code points, all "alphanumeric" to str.isalnum(), but not ASCII. Sent as raw UTF-8
    # bytes, as a careless client would.
    account = server.account()
    api_key = "é" * 32 + account.api_key[:32]
    reader_writer = await _raw_request(
        server,
        f"{method} {LISTEN_KEY} HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: ".encode()
        + api_key.encode("utf-8")
        + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    head, _, body = reader_writer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert json.loads(body) == BAD_FORMAT


async def _raw_request(h: Harness, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", h.server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_well_formed_unknown_api_key_is_2015(server: Harness, method: str) -> None:
    account = server.account()
    unknown = ("Z" if account.api_key[0] != "Z" else "Y") + account.api_key[1:]
    status, body = await lk(server, method, None, headers={"X-MBX-APIKEY": unknown})
    assert (status, body) == (401, REJECTED)
    # The secret key is not an API key either.
    status, body = await lk(server, method, None, headers={"X-MBX-APIKEY": account.secret_key})
    assert (status, body) == (401, REJECTED)


async def test_api_key_header_name_is_case_insensitive(server: Harness) -> None:
    account = server.account()
    status, body = await lk(server, "POST", None, headers={"x-mbx-apikey": account.api_key})
    assert status == 200
    assert KEY_RE.fullmatch(body["listenKey"])


async def test_api_key_in_query_or_body_does_not_authenticate(server: Harness) -> None:
    account = server.account()
    status, body = await lk(server, "POST", None, query=f"X-MBX-APIKEY={account.api_key}")
    assert (status, body) == (401, BAD_FORMAT)
    status, body = await lk(server, "POST", None, data=f"apiKey={account.api_key}")
    assert (status, body) == (401, BAD_FORMAT)


# --- tolerated extra params (spec §2.2) ------------------------------------------------------


def _extras(key: str) -> str:
    return (
        f"listenKey={key}&timestamp={START_MS}&recvWindow=5000"
        "&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
    )


async def test_extra_params_in_query_are_ignored(server: Harness) -> None:
    account = server.account()
    bogus = "B" * 64
    status, body = await lk(server, "POST", account, query=_extras(bogus))
    assert status == 200
    key = body["listenKey"]
    assert key != bogus
    assert await lk(server, "PUT", account, query=_extras(bogus)) == (200, {"listenKey": key})
    assert await lk(server, "PUT", account, query=_extras(key)) == (200, {"listenKey": key})
    assert await lk(server, "DELETE", account, query=_extras(bogus)) == (200, {})
    assert await lk(server, "PUT", account, query=_extras(key)) == (400, NOT_EXIST)


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8"],
)
async def test_extra_params_in_a_form_body_are_ignored(
    server: Harness, content_type: str | None
) -> None:
    account = server.account()
    # aiohttp adds no Content-Type for a bytes body unless told; the first case sends none.
    headers = {} if content_type is None else {"Content-Type": content_type}
    bogus = "C" * 64
    body_bytes = _extras(bogus).encode()
    status, body = await lk(server, "POST", account, data=body_bytes, headers=headers)
    assert status == 200
    key = body["listenKey"]
    assert key != bogus
    assert await lk(server, "PUT", account, data=body_bytes, headers=headers) == (
        200,
        {"listenKey": key},
    )
    # Query and body together (spec §6.1: they may be mixed).
    assert await lk(
        server, "PUT", account, query=_extras(key), data=body_bytes, headers=headers
    ) == (200, {"listenKey": key})
    assert await lk(server, "DELETE", account, data=body_bytes, headers=headers) == (200, {})
    assert await lk(server, "DELETE", account, data=body_bytes, headers=headers) == (
        400,
        NOT_EXIST,
    )


async def test_legacy_connector_put_and_delete_with_listen_key_param(server: Harness) -> None:
    """binance-futures-connector sends `listenKey=<key>` on PUT and DELETE (spec §2.2)."""
    account = server.account()
    key = await post_key(server, account)
    assert await lk(server, "PUT", account, query=f"listenKey={key}") == (200, {"listenKey": key})
    assert await lk(server, "DELETE", account, query=f"listenKey={key}") == (200, {})


async def test_ccxt_style_empty_form_body(server: Harness) -> None:
    """ccxt sends an empty urlencoded body with a form Content-Type and no listenKey."""
    account = server.account()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body = await lk(server, "POST", account, data=b"", headers=form)
    assert status == 200
    key = body["listenKey"]
    assert await lk(server, "PUT", account, data=b"", headers=form) == (200, {"listenKey": key})


async def test_json_body_and_garbage_body_are_ignored(server: Harness) -> None:
    account = server.account()
    status, body = await lk(
        server,
        "POST",
        account,
        data=b'{"listenKey": 1}',
        headers={"Content-Type": "application/json"},
    )
    assert status == 200
    key = body["listenKey"]
    assert await lk(server, "PUT", account, data=b"\xff\xfe%%%&&==") == (200, {"listenKey": key})


# --- survival across a restart ---------------------------------------------------------------


async def _issue_then_stop(data: Path, clock: ManualClock) -> tuple[dict[str, str], str]:
    """Start a server on `data`, issue a listenKey for a new account, stop the server."""
    async with running_harness(data, clock) as first:
        account = await first.server.accounts.create("restart", clock.now_ms())
        headers = {"X-MBX-APIKEY": account.api_key}
        status, body, _ = await call(
            first.http, "POST", f"{first.url}{LISTEN_KEY}", headers=headers
        )
    assert status == 200
    return headers, body["listenKey"]


async def test_keys_and_deadlines_survive_a_restart(tmp_path: Path) -> None:
    clock = ManualClock(START_MS)
    headers, key = await _issue_then_stop(tmp_path / "data", clock)
    await clock.advance(30 * MINUTE)
    async with running_harness(tmp_path / "data", clock) as second:
        assert second.server.demo_account is None  # not a fresh data dir
        url = f"{second.url}{LISTEN_KEY}"
        # The deadline came back too: 30 min after issue, 29 min 59.999 s more is fine...
        await second.advance(30 * MINUTE - 1)
        status, body, _ = await call(second.http, "POST", url, headers=headers)
        assert (status, body) == (200, {"listenKey": key})
        # ...and that POST extended it again (persisted): 60 min later it is gone.
        await second.advance(60 * MINUTE)
        status, body, _ = await call(second.http, "PUT", url, headers=headers)
        assert (status, body) == (400, NOT_EXIST)
        status, body, _ = await call(second.http, "POST", url, headers=headers)
        assert status == 200
        assert body["listenKey"] != key


async def test_put_after_restart_returns_the_same_key_then_expires(tmp_path: Path) -> None:
    clock = ManualClock(START_MS)
    headers, key = await _issue_then_stop(tmp_path / "data", clock)
    async with running_harness(tmp_path / "data", clock) as second:
        url = f"{second.url}{LISTEN_KEY}"
        status, body, _ = await call(second.http, "PUT", url, headers=headers)
        assert (status, body) == (200, {"listenKey": key})
        await second.advance(60 * MINUTE)
        status, body, _ = await call(second.http, "PUT", url, headers=headers)
        assert (status, body) == (400, NOT_EXIST)


async def test_key_that_expired_while_the_server_was_down_is_gone(tmp_path: Path) -> None:
    clock = ManualClock(START_MS)
    headers, key = await _issue_then_stop(tmp_path / "data", clock)
    await clock.advance(61 * MINUTE)  # the server is down while the deadline passes
    async with running_harness(tmp_path / "data", clock) as second:
        url = f"{second.url}{LISTEN_KEY}"
        status, body, _ = await call(second.http, "PUT", url, headers=headers)
        assert (status, body) == (400, NOT_EXIST)
        status, body, _ = await call(second.http, "POST", url, headers=headers)
        assert status == 200
        assert body["listenKey"] != key


# --- supporting REST (spec §6.6) -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/fapi/v1/ping", "/api/v3/ping"])
async def test_ping(server: Harness, path: str) -> None:
    async with server.http.get(f"{server.url}{path}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == JSON
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        assert await response.read() == b"{}"


@pytest.mark.parametrize("path", ["/fapi/v1/time", "/api/v3/time"])
async def test_time_is_the_virtual_clock(server: Harness, path: str) -> None:
    status, body, _ = await call(server.http, "GET", f"{server.url}{path}")
    assert (status, body) == (200, {"serverTime": START_MS})
    await server.advance(12_345)
    status, body, _ = await call(server.http, "GET", f"{server.url}{path}")
    assert (status, body) == (200, {"serverTime": START_MS + 12_345})


async def test_exchange_info_shape(server: Harness) -> None:
    status, body, headers = await call(server.http, "GET", f"{server.url}/fapi/v1/exchangeInfo")
    assert status == 200
    assert headers["Content-Type"] == JSON
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert body["timezone"] == "UTC"
    assert body["serverTime"] == START_MS
    assert body["exchangeFilters"] == []
    assert body["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 2400,
    }
    assert {(r["rateLimitType"], r["interval"]) for r in body["rateLimits"]} == {
        ("REQUEST_WEIGHT", "MINUTE"),
        ("ORDERS", "MINUTE"),
        ("ORDERS", "SECOND"),
    }
    assert body["assets"]
    symbols = body["symbols"]
    assert symbols
    names = [s["symbol"] for s in symbols]
    assert "BTCUSDT" in names
    assert len(set(names)) == len(names)
    for sym in symbols:
        for key in ("symbol", "pair", "contractType", "status", "baseAsset", "quoteAsset"):
            assert isinstance(sym[key], str), (sym["symbol"], key)
            assert sym[key], (sym["symbol"], key)
        for key in ("deliveryDate", "onboardDate", "pricePrecision", "quantityPrecision"):
            assert isinstance(sym[key], int), (sym["symbol"], key)
        filters = {f["filterType"]: f for f in sym["filters"]}
        assert {"PRICE_FILTER", "LOT_SIZE"} <= set(filters)
        for field in ("minPrice", "maxPrice", "tickSize"):
            assert isinstance(filters["PRICE_FILTER"][field], str)
        for field in ("minQty", "maxQty", "stepSize"):
            assert isinstance(filters["LOT_SIZE"][field], str)


async def test_exchange_info_rate_limit_follows_the_configured_limit(tmp_path: Path) -> None:
    limits = WeightLimits(per_minute=77)
    async with running_harness(tmp_path / "data", weight_limits=limits) as h:
        status, body, _ = await call(h.http, "GET", f"{h.url}/fapi/v1/exchangeInfo")
    assert status == 200
    weight = [r for r in body["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT"]
    assert weight == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 77}
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/fapi/v1/nope",
        "/fapi/v2/listenKey",
        "/fapi/v1/listenkey",
        "/fapi/v1/ping/",
        "/api/v3/order",
        "/sapi/v1/capital/config/getalls",
        "/favicon.ico",
    ],
)
async def test_unknown_path_is_404_1099(server: Harness, path: str) -> None:
    status, body, headers = await call(server.http, "GET", f"{server.url}{path}")
    assert status == 404
    assert body == {"code": -1099, "msg": "Not found, unauthenticated, or unauthorized."}
    assert headers["Content-Type"] == JSON
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", LISTEN_KEY),
        ("PATCH", LISTEN_KEY),
        ("POST", "/fapi/v1/ping"),
        ("DELETE", "/fapi/v1/time"),
        ("PUT", "/fapi/v1/exchangeInfo"),
        ("POST", "/api/v3/time"),
    ],
)
async def test_wrong_method_on_a_known_path_is_405(server: Harness, method: str, path: str) -> None:
    account = server.account()
    status, body, headers = await call(
        server.http, method, f"{server.url}{path}", headers={"X-MBX-APIKEY": account.api_key}
    )
    assert status == 405
    assert body == {"code": -1099, "msg": f"Method {method} is not allowed here."}
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"
    # No key was issued by a GET on the listenKey path.
    assert server.server.key_store.active(account.id, server.clock.now_ms()) is None
