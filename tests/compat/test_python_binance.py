"""python-binance 1.0.37, unmodified, against the server (real-clients.md, "python-binance").

`AsyncClient` and `BinanceSocketManager` take their base URLs from class attributes, so a
subclass points them at 127.0.0.1. The client is pure asyncio (aiohttp + websockets), so it
runs on the test's loop against the in-process `server` fixture. `futures_user_socket()`
POSTs `/fapi/v1/listenKey` and connects to `/private/ws?listenKey=K`; events arrive as dicts.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

from tests.conftest import Harness, event_fixture
from userstream.accounts import Account

with warnings.catch_warnings():
    # python-binance imports `websockets.legacy` (WebSocketClientProtocol), which warns on
    # import with websockets >= 14; that is the library's code, not ours.
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from binance import AsyncClient, BinanceSocketManager

pytestmark = pytest.mark.compat

RECV_TIMEOUT_S = 5.0


def _local_client(server: Harness) -> type[Any]:
    class LocalAsyncClient(AsyncClient):  # type: ignore[misc]
        API_URL = f"{server.url}/api"
        FUTURES_URL = f"{server.url}/fapi"

    return LocalAsyncClient


def _local_bsm(server: Harness) -> type[Any]:
    class LocalBSM(BinanceSocketManager):  # type: ignore[misc]
        FSTREAM_URL = f"{server.ws}/"

    return LocalBSM


async def _recv(socket: Any) -> dict[str, Any]:
    message: dict[str, Any] = await asyncio.wait_for(socket.recv(), RECV_TIMEOUT_S)
    assert message.get("e") != "error", message
    return message


async def _wait_connected(server: Harness, key: str) -> None:
    """Publish only once the socket is subscribed: events are not replayed."""
    for _ in range(200):
        if server.server.gateway.subscribers(key):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no stream connection subscribed to {key}")


async def _close_socket(server: Harness, socket: Any) -> None:
    """Leave `futures_user_socket()` without waiting out python-binance's 10 s read timeout.

    Its read loop only notices the exit request after `ws.recv()` returns, i.e. on the next
    frame or after `ReconnectingWebsocket.TIMEOUT` (10 s). Once the exit has begun, a normal
    server-side close (admin fault injection, code 1000) wakes it at once.
    """
    exiting = asyncio.create_task(socket.__aexit__(None, None, None))
    await asyncio.sleep(0)  # __aexit__ marks the socket EXITING before its first await
    status, body = await server.admin("POST", "connections/drop", {"code": 1000})
    assert status == 200, body
    await asyncio.wait_for(exiting, RECV_TIMEOUT_S)


async def _client(server: Harness, account: Account) -> Any:
    return await asyncio.wait_for(
        _local_client(server).create(account.api_key, account.secret_key), RECV_TIMEOUT_S
    )


async def test_futures_user_socket_receives_published_events(server: Harness) -> None:
    account = server.account()
    client = await _client(server, account)
    try:
        key = await client.futures_stream_get_listen_key()
        assert isinstance(key, str)
        assert len(key) == 64
        assert key.isalnum()
        # POST on an account with an active key returns the same key (spec §2.3).
        assert await client.futures_stream_get_listen_key() == key
        # PUT with a form body `listenKey=K`: the server ignores the param, answers the key.
        assert await client.futures_stream_keepalive(key) == {"listenKey": key}

        bsm = _local_bsm(server)(client, user_timeout=300)
        socket = await asyncio.wait_for(bsm.futures_user_socket().__aenter__(), RECV_TIMEOUT_S)
        try:
            assert socket._listen_key == key  # it reused the account's live key
            await _wait_connected(server, key)
            order = event_fixture("order_trade_update_doc.json")
            update = event_fixture("account_update_doc.json")
            assert await server.publish(account, [order, update]) == 2
            assert await _recv(socket) == order
            assert await _recv(socket) == update

            # DELETE (form body listenKey=K) -> the open socket gets listenKeyExpired.
            assert await client.futures_stream_close(key) == {}
            expired = await _recv(socket)
            assert expired["e"] == "listenKeyExpired"
            assert expired["listenKey"] == key
            assert isinstance(expired["E"], int)
        finally:
            await _close_socket(server, socket)
    finally:
        await client.close_connection()


async def test_futures_user_socket_admin_expire(server: Harness) -> None:
    account = server.account()
    client = await _client(server, account)
    try:
        bsm = _local_bsm(server)(client, user_timeout=300)
        socket = await asyncio.wait_for(bsm.futures_user_socket().__aenter__(), RECV_TIMEOUT_S)
        try:
            key = socket._listen_key
            assert isinstance(key, str)
            assert len(key) == 64
            await _wait_connected(server, key)
            lite = event_fixture("trade_lite_doc.json")
            assert await server.publish(account, lite) == 1
            assert await _recv(socket) == lite

            status, body = await server.admin("POST", f"listenKeys/{key}/expire")
            assert status == 200, body
            expired = await _recv(socket)
            assert expired["e"] == "listenKeyExpired"
            assert expired["listenKey"] == key

            # Nothing more for that key (spec §2.3): a later event is not delivered.
            await server.publish(account, event_fixture("order_trade_update_doc.json"))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(socket.recv(), 0.3)
        finally:
            await _close_socket(server, socket)

        # The next POST issues a new key.
        assert await client.futures_stream_get_listen_key() != key
    finally:
        await client.close_connection()
