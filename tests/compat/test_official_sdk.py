"""Binance's official SDK, unmodified, against the server (real-clients.md, "Official SDK").

`binance-sdk-derivatives-trading-usds-futures` 18.x with `binance-common` 4.x. Its REST client
is synchronous `requests`, so these tests use the subprocess server (`server_process`) and
run REST calls in a worker thread; its WebSocket API and stream clients are aiohttp on the
test's loop. Every user-data event the stream client delivers must parse into the SDK's own
model for that event: the SDK falls back to a raw wrapper when validation fails, so the type
of `actual_instance` is what tells success from silent failure.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from binance_common.configuration import (
    ConfigurationRestAPI,
    ConfigurationWebSocketAPI,
    ConfigurationWebSocketStreams,
)
from binance_common.errors import BadRequestError
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)

from tests.conftest import ADMIN_TOKEN, ServerProcess

pytestmark = pytest.mark.compat

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
TIMEOUT_S = 5.0

# The SDK's model class for each event type (`websocket_streams/models/*.py`).
SDK_MODEL_NAMES = {
    "ACCOUNT_UPDATE": "AccountUpdate",
    "ORDER_TRADE_UPDATE": "OrderTradeUpdate",
    "TRADE_LITE": "TradeLite",
    "MARGIN_CALL": "MarginCall",
    "ACCOUNT_CONFIG_UPDATE": "AccountConfigUpdate",
    "STRATEGY_UPDATE": "StrategyUpdate",
    "GRID_UPDATE": "GridUpdate",
    "CONDITIONAL_ORDER_TRIGGER_REJECT": "ConditionalOrderTriggerReject",
    "ALGO_UPDATE": "AlgoUpdate",
    "listenKeyExpired": "ListenKeyExpired",
}


def _publishable_fixtures() -> list[dict[str, Any]]:
    """Every golden event except `listenKeyExpired`, which only the server may emit."""
    events = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]
    return [e for e in events if e["e"] != "listenKeyExpired"]


def _client(proc: ServerProcess) -> Any:
    return DerivativesTradingUsdsFutures(
        config_rest_api=ConfigurationRestAPI(
            api_key=proc.api_key,
            api_secret=proc.secret_key,
            base_path=proc.url,
            timeout=int(TIMEOUT_S * 1000),
            retries=0,
        ),
        config_ws_api=ConfigurationWebSocketAPI(
            api_key=proc.api_key,
            api_secret=proc.secret_key,
            stream_url=f"{proc.ws}/ws-fapi/v1",
            timeout=int(TIMEOUT_S * 1000),
        ),
        config_ws_streams=ConfigurationWebSocketStreams(stream_url=proc.ws, reconnect_delay=500),
    )


@pytest.fixture
async def admin(server_process: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(
        f"{server_process.url}/", headers=headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
    ) as session:
        yield session


async def _publish(
    admin: aiohttp.ClientSession, proc: ServerProcess, events: list[dict[str, Any]]
) -> None:
    account_id = proc.demo["accountId"]
    async with admin.post(f"admin/v1/accounts/{account_id}/events", json=events) as response:
        body = await response.json()
        assert response.status == 200, body
        assert body["accepted"] == len(events)


def test_rest_listen_key_lifecycle(server_process: ServerProcess) -> None:
    rest = _client(server_process).rest_api

    key = rest.start_user_data_stream().data().listen_key  # POST, no params
    assert isinstance(key, str)
    assert len(key) == 64
    assert key.isalnum()
    # POST with a live key returns the same key (spec §2.3).
    assert rest.start_user_data_stream().data().listen_key == key
    assert rest.keepalive_user_data_stream().data().listen_key == key  # PUT, no params
    rest.close_user_data_stream()  # DELETE, no params

    # After DELETE: PUT is 400 -1125, and the next POST issues a new key (spec §2.3).
    with pytest.raises(BadRequestError) as excinfo:
        rest.keepalive_user_data_stream()
    assert excinfo.value.status_code == -1125
    assert "listenKey does not exist" in str(excinfo.value)
    assert rest.start_user_data_stream().data().listen_key != key


async def test_websocket_api_start_ping_stop(server_process: ServerProcess) -> None:
    ws_api = _client(server_process).websocket_api
    conn = await asyncio.wait_for(ws_api.create_connection(), TIMEOUT_S)
    assert conn is not None, "the SDK could not connect to /ws-fapi/v1"
    try:
        started = (await conn.start_user_data_stream()).data()
        assert started.status == 200
        key = started.result.listen_key
        assert isinstance(key, str)
        assert len(key) == 64

        pinged = await conn.keepalive_user_data_stream()
        assert pinged.data().status == 200
        assert pinged.data().result.listen_key == key
        assert pinged.rate_limits, "rateLimits are returned by default (spec §3.1)"
        assert pinged.rate_limits[0].rateLimitType == "REQUEST_WEIGHT"

        # A ping frame from the client is answered with a pong (spec §3.1).
        pongs: asyncio.Queue[bytes] = asyncio.Queue()
        conn.on_connection("pong", pongs.put_nowait)
        await conn.ping_server(conn.connections[0])
        assert await asyncio.wait_for(pongs.get(), TIMEOUT_S) == b""

        stopped = (await conn.close_user_data_stream()).data()
        assert stopped.status == 200

        # With the key gone, a ping fails; the SDK hands back the error it received.
        failed = (await conn.keepalive_user_data_stream()).data()
        assert failed["error"]["code"] == -1125
        # ... and the next start issues a new key on the same connection.
        restarted = (await conn.start_user_data_stream()).data()
        assert restarted.result.listen_key != key
    finally:
        await conn.close_connection()


async def _wait_subscribed(streams: Any) -> None:
    """Wait for the server's `{"result":null,"id":...}` to every SUBSCRIBE sent so far.

    `user_data()` returns once SUBSCRIBE is written, not acknowledged; the server answers
    after the subscription is in place, so an empty pending-request map means events
    published now will reach the stream.
    """
    for _ in range(int(TIMEOUT_S / 0.01)):
        if not any(c.pending_request for c in streams.connections):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("SUBSCRIBE was never acknowledged")


async def test_streams_deliver_all_ten_events_as_sdk_models(
    server_process: ServerProcess, admin: aiohttp.ClientSession
) -> None:
    client = _client(server_process)
    rest = client.rest_api
    start = await asyncio.to_thread(rest.start_user_data_stream)
    key = start.data().listen_key

    streams = await asyncio.wait_for(client.websocket_streams.create_connection(), TIMEOUT_S)
    assert streams is not None, "the SDK could not open its stream connections"
    try:
        # create_connection() opens one connection per route: /market, /public, /private.
        assert sorted(c.url_path for c in streams.connections) == ["market", "private", "public"]
        assert all(not c.websocket.closed for c in streams.connections)

        received: asyncio.Queue[Any] = asyncio.Queue()
        handle = await asyncio.wait_for(streams.user_data(listenKey=key), TIMEOUT_S)
        handle.on("message", received.put_nowait)
        await _wait_subscribed(streams)

        published = _publishable_fixtures()
        by_type: dict[str, list[Any]] = {}
        await _publish(admin, server_process, published)
        for sent in published:
            event = await asyncio.wait_for(received.get(), TIMEOUT_S)
            instance = event.actual_instance
            assert type(instance).__name__ == SDK_MODEL_NAMES[sent["e"]], (sent["e"], event)
            assert sent["E"] == instance.E
            # What arrived parses to exactly what the published payload parses to. (The
            # stream path uses `model_validate`, which drops fields the SDK does not model,
            # such as `ma` in a 2026 ACCOUNT_UPDATE, so compare models, not dicts.)
            assert instance == type(instance).model_validate(sent)
            by_type.setdefault(sent["e"], []).append(instance)

        order = by_type["ORDER_TRADE_UPDATE"][0].o  # order_trade_update_doc.json
        assert (order.i, order.c, order.s, order.q, order.X) == (
            8886774,
            "TEST",
            "BTCUSDT",
            "0.001",
            "NEW",
        )
        balance = by_type["ACCOUNT_UPDATE"][0].a.B[0]  # account_update_doc.json
        assert (balance.a, balance.wb, balance.cw) == ("USDT", "122624.12345678", "100.12345678")
        configs = by_type["ACCOUNT_CONFIG_UPDATE"]
        assert {(c.ac is None, c.ai is None) for c in configs} == {(False, True), (True, False)}

        # Closing the key over REST sends listenKeyExpired to the stream (spec §2.3).
        await asyncio.to_thread(rest.close_user_data_stream)
        expired = (await asyncio.wait_for(received.get(), TIMEOUT_S)).actual_instance
        assert type(expired).__name__ == "ListenKeyExpired"
        assert expired.listen_key == key
        assert isinstance(expired.E, int)

        assert {e["e"] for e in published} | {"listenKeyExpired"} == set(SDK_MODEL_NAMES)
        assert received.empty()
    finally:
        await streams.close_connection()
