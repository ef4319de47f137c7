"""Signed REST on a real server: security types, signatures, timestamps (trading spec §1)."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import Harness
from tests.functional.venue_helpers import signed, signed_query

GETALL = "/sapi/v1/capital/config/getall"


async def test_signed_request_in_query_or_form_body(server: Harness) -> None:
    account = server.account()
    for in_body in (False, True):
        status, body, headers = await signed(server, account, "GET", GETALL, in_body=in_body)
        assert (status, body) == (200, [])
        assert headers["Content-Type"] == "application/json"
        assert int(headers["X-MBX-USED-WEIGHT-1M"]) > 0


async def test_json_content_type_over_form_text_is_read_as_form(server: Harness) -> None:
    # python-binance and nautilus label form text `application/json` (§1.5).
    account = server.account()
    body = signed_query(account.secret_key, {}, server.clock.now_ms())
    headers = {"X-MBX-APIKEY": account.api_key, "Content-Type": "application/json"}
    async with server.http.get(f"{server.url}{GETALL}", data=body, headers=headers) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no key", 401, -2014),
        ("malformed key", 401, -2014),
        ("unknown key", 401, -2015),
        ("bad signature", 400, -1022),
        ("stale", 400, -1021),
        ("ahead", 400, -1021),
    ],
)
async def test_auth_errors(server: Harness, case: str, status: int, code: int) -> None:
    account = server.account()
    other = server.account("other")
    now = server.clock.now_ms()
    api_key: str | None = None
    timestamp = now
    if case == "no key":
        api_key = ""
    elif case == "malformed key":
        api_key = "short"
    elif case == "unknown key":
        api_key = "A" * 64
    elif case == "bad signature":
        api_key = other.api_key  # signed with account's secret, sent with other's key
    elif case == "stale":
        timestamp = now - 5001
    elif case == "ahead":
        timestamp = now + 1000
    got, body, headers = await signed(
        server, account, "GET", GETALL, api_key=api_key, timestamp=timestamp
    )
    assert (got, body["code"]) == (status, code)
    assert headers["Content-Type"] == "application/json"


async def test_missing_timestamp_and_signature(server: Harness) -> None:
    account = server.account()
    headers = {"X-MBX-APIKEY": account.api_key}
    async with server.http.get(f"{server.url}{GETALL}", headers=headers) as response:
        body = await response.json()
        assert (response.status, body["code"]) == (400, -1102)
        assert "'signature'" in body["msg"]


async def test_futures_only_market_routes(server: Harness) -> None:
    account = server.account()
    for path in ("/api/v3/exchangeInfo", "/dapi/v1/exchangeInfo"):
        async with server.http.get(f"{server.url}{path}") as response:
            body = await response.json()
            assert response.status == 200
            assert body["symbols"] == []
            assert body["serverTime"] == server.clock.now_ms()
    async with server.http.get(
        f"{server.url}/sapi/v1/margin/allPairs", headers={"X-MBX-APIKEY": account.api_key}
    ) as response:
        assert (response.status, await response.json()) == (200, [])
    status, body, _ = await signed(server, account, "GET", "/sapi/v1/margin/isolated/allPairs")
    assert (status, body) == (200, [])


async def test_ed25519_key_registered_through_admin_signs_requests(server: Harness) -> None:
    account = server.account()
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    status, body = await server.admin(
        "POST", f"accounts/{account.id}/apiKeys", {"publicKey": pem.decode()}
    )
    assert status == 200, body
    assert body["keyType"] == "ED25519"
    api_key = body["apiKey"]
    payload = urlencode({"timestamp": server.clock.now_ms()})
    signature = quote(base64.b64encode(private.sign(payload.encode())).decode(), safe="")
    headers = {"X-MBX-APIKEY": api_key}
    url = f"{server.url}{GETALL}?{payload}&signature={signature}"
    async with server.http.get(url, headers=headers) as response:
        assert response.status == 200
    forged = quote(base64.b64encode(b"\0" * 64).decode(), safe="")
    url = f"{server.url}{GETALL}?{payload}&signature={forged}"
    async with server.http.get(url, headers=headers) as response:
        assert (response.status, (await response.json())["code"]) == (400, -1022)
    status, body = await server.admin(
        "POST", f"accounts/{account.id}/apiKeys", {"publicKey": "nope"}
    )
    assert status == 400
    status, _ = await server.admin("POST", "accounts/999/apiKeys", {"publicKey": pem.decode()})
    assert status == 404
