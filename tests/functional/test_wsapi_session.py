"""`session.logon` / `.status` / `.logout` on `/ws-fapi/v1` (trading spec §3): Ed25519 keys
registered through the admin API only; a logged-on session needs no apiKey afterwards."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import Harness
from tests.functional.test_wsapi import WS_API, call
from tests.functional.wsclient import ws_connect
from userstream.accounts import Account
from userstream.protocol.signing import hmac_signature, ws_payload


async def register(server: Harness, account: Account) -> tuple[Ed25519PrivateKey, str]:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    status, body = await server.admin(
        "POST", f"accounts/{account.id}/apiKeys", {"publicKey": pem.decode()}
    )
    assert status == 200, body
    return private, str(body["apiKey"])


def ed25519_params(private: Ed25519PrivateKey, api_key: str, now: int) -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": api_key, "timestamp": now}
    params["signature"] = base64.b64encode(private.sign(ws_payload(params))).decode()
    return params


async def test_logon_then_user_data_stream_without_api_key(server: Harness) -> None:
    account = server.account()
    private, api_key = await register(server, account)
    now = server.clock.now_ms()
    async with ws_connect(server.ws + WS_API) as ws:
        status = await call(ws, "session.status")
        assert status["result"]["apiKey"] is None
        logon = await call(ws, "session.logon", ed25519_params(private, api_key, now))
        assert logon["status"] == 200, logon
        result = logon["result"]
        assert result["apiKey"] == api_key
        assert result["authorizedSince"] == now
        assert isinstance(result["connectedSince"], int)
        assert result["serverTime"] == now
        started = await call(ws, "userDataStream.start", {})
        assert started["status"] == 200, started
        assert started["result"]["listenKey"] == await server.listen_key(account)
        logout = await call(ws, "session.logout")
        assert logout["result"]["apiKey"] is None
        again = await call(ws, "userDataStream.ping", {})
        assert again["error"]["code"] == -1102


async def test_logon_refuses_hmac_keys_and_bad_signatures(server: Harness) -> None:
    account = server.account()
    private, api_key = await register(server, account)
    now = server.clock.now_ms()
    hmac_params: dict[str, Any] = {"apiKey": account.api_key, "timestamp": now}
    hmac_params["signature"] = hmac_signature(account.secret_key.encode(), ws_payload(hmac_params))
    async with ws_connect(server.ws + WS_API) as ws:
        refused = await call(ws, "session.logon", hmac_params)
        assert (refused["status"], refused["error"]["code"]) == (401, -2015)
        forged = ed25519_params(Ed25519PrivateKey.generate(), api_key, now)
        bad = await call(ws, "session.logon", forged)
        assert (bad["status"], bad["error"]["code"]) == (400, -1022)
        stale = await call(ws, "session.logon", ed25519_params(private, api_key, now - 6000))
        assert stale["error"]["code"] == -1021
        status = await call(ws, "session.status")
        assert status["result"]["apiKey"] is None


async def test_rest_listen_key_with_an_ed25519_api_key(server: Harness) -> None:
    account = server.account()
    _, api_key = await register(server, account)
    headers = {"X-MBX-APIKEY": api_key}
    async with server.http.post(f"{server.url}/fapi/v1/listenKey", headers=headers) as response:
        assert response.status == 200
        assert (await response.json())["listenKey"] == await server.listen_key(account)
