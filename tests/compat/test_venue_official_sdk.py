"""Binance's official SDK, unmodified, trading against a real `userstream serve` process
(`--initial-balance`, the default synthetic market): REST `new_order` (every param in the
query string, empty body), `account_information_v3`, `position_information_v3`, the WebSocket
API's `new_order`, and its user data stream, where every event must parse into the SDK's own
model; the events agree with the REST state read afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from binance_common.errors import BadRequestError
from binance_sdk_derivatives_trading_usds_futures.rest_api.models import (
    NewOrderNewOrderRespTypeEnum,
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_api.models import (
    NewOrderSideEnum as WsSide,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_api.models import (
    NewOrderTimeInForceEnum as WsTimeInForce,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_api.models import (
    NewOrderTypeEnum as WsType,
)

from tests.compat.test_official_sdk import (
    SDK_MODEL_NAMES,
    TIMEOUT_S,
    _client,
    _wait_subscribed,
)
from tests.conftest import ServerProcess, start_server_process, stop_server_process

pytestmark = pytest.mark.compat


@pytest.fixture
def venue_process(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_server_process(tmp_path / "data", "--initial-balance", "10000")
    yield proc
    stop_server_process(proc)


async def _events_until(received: asyncio.Queue[Any], done: Any) -> list[Any]:
    seen: list[Any] = []
    while not seen or not done(seen[-1]):
        event = await asyncio.wait_for(received.get(), TIMEOUT_S)
        instance = event.actual_instance
        # The SDK falls back to a raw wrapper when its model refuses the payload.
        assert type(instance).__name__ in SDK_MODEL_NAMES.values(), event
        seen.append(instance)
    return seen


def _is_fill_update(instance: Any) -> bool:
    return type(instance).__name__ == "AccountUpdate" and instance.a.m == "ORDER"


async def test_sdk_trades_over_rest_and_ws_api(venue_process: ServerProcess) -> None:
    client = _client(venue_process)
    rest = client.rest_api
    key = (await asyncio.to_thread(rest.start_user_data_stream)).data().listen_key
    streams = await asyncio.wait_for(client.websocket_streams.create_connection(), TIMEOUT_S)
    ws_api = await asyncio.wait_for(client.websocket_api.create_connection(), TIMEOUT_S)
    try:
        received: asyncio.Queue[Any] = asyncio.Queue()
        handle = await asyncio.wait_for(streams.user_data(listenKey=key), TIMEOUT_S)
        handle.on("message", received.put_nowait)
        await _wait_subscribed(streams)

        response = await asyncio.to_thread(
            rest.new_order,
            symbol="BTCUSDT",
            side=NewOrderSideEnum.BUY,
            type=NewOrderTypeEnum.MARKET,
            quantity=0.01,
            new_order_resp_type=NewOrderNewOrderRespTypeEnum.RESULT,
        )
        order = response.data()
        assert order.status == "FILLED"
        assert order.executed_qty == "0.010"
        seen = await _events_until(received, _is_fill_update)
        names = [type(i).__name__ for i in seen]
        assert "TradeLite" in names
        assert "OrderTradeUpdate" in names
        trade_updates = [i.o for i in seen if type(i).__name__ == "OrderTradeUpdate"]
        assert trade_updates[-1].i == order.order_id
        assert trade_updates[-1].X == "FILLED"
        fill = seen[-1].a

        account = (await asyncio.to_thread(rest.account_information_v3)).data()
        (usdt,) = [a for a in account.assets if a.asset == "USDT"]
        assert Decimal(usdt.wallet_balance) == Decimal(fill.B[0].wb)
        (position,) = (
            await asyncio.to_thread(rest.position_information_v3, symbol="BTCUSDT")
        ).data()
        assert Decimal(position.position_amt) == Decimal(fill.P[0].pa) == Decimal("0.01")
        assert Decimal(position.entry_price) == Decimal(fill.P[0].ep)

        # The WebSocket API's order.place (HMAC-signed by the SDK), resting 3 % below.
        below = float(round(Decimal(fill.P[0].ep) * Decimal("0.97")))
        placed = await ws_api.new_order(
            symbol="BTCUSDT",
            side=WsSide.BUY,
            type=WsType.LIMIT,
            time_in_force=WsTimeInForce.GTC,
            quantity=0.01,
            price=below,
        )
        data = placed.data()
        assert not isinstance(data, dict), data
        placed_order = data.result
        assert placed_order.status == "NEW"
        new_event = await _events_until(received, lambda i: type(i).__name__ == "OrderTradeUpdate")
        assert new_event[-1].o.i == placed_order.order_id
        assert new_event[-1].o.x == "NEW"

        with pytest.raises(BadRequestError) as refused:
            await asyncio.to_thread(
                rest.new_order,
                symbol="BTCUSDT",
                side=NewOrderSideEnum.BUY,
                type=NewOrderTypeEnum.LIMIT,
                time_in_force=NewOrderTimeInForceEnum.GTC,
                quantity=0.00001,  # sent as "1e-05": exponent notation is -1100 (§1.1)
                price=1000.0,
            )
        assert refused.value.status_code == -1100
    finally:
        await ws_api.close_connection()
        await streams.close_connection()
