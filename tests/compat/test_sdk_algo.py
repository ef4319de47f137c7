"""The official SDK's Algo Order API methods, unmodified, against the server (issue 13 item 1):
each answer must validate into the SDK's own pydantic model."""

from __future__ import annotations

import pytest
from binance_common.errors import BadRequestError

from tests.compat.test_official_sdk import _client
from tests.conftest import ServerProcess

pytestmark = pytest.mark.compat


def test_place_query_list_cancel(server_process: ServerProcess) -> None:
    rest = _client(server_process).rest_api
    placed = rest.new_algo_order(
        algo_type="CONDITIONAL",
        symbol="BTCUSDT",
        side="BUY",
        type="STOP_MARKET",
        quantity=0.01,
        trigger_price=1_000_000,
        working_type="MARK_PRICE",
        client_algo_id="sdk-1",
    ).data()
    assert placed.algo_status == "NEW"
    assert placed.client_algo_id == "sdk-1"
    assert isinstance(placed.algo_id, int)
    queried = rest.query_algo_order(algo_id=placed.algo_id).data()
    assert (queried.algo_status, queried.actual_order_id) == ("NEW", "")
    listed = rest.current_all_algo_open_orders(symbol="BTCUSDT").data()
    assert [row.algo_id for row in listed] == [placed.algo_id]
    cancelled = rest.cancel_algo_order(algo_id=placed.algo_id).data()
    assert (cancelled.algo_id, cancelled.code) == (placed.algo_id, "200")
    with pytest.raises(BadRequestError, match="Order would immediately trigger"):
        rest.new_algo_order(
            algo_type="CONDITIONAL",
            symbol="BTCUSDT",
            side="BUY",
            type="STOP_MARKET",
            quantity=0.01,
            trigger_price=1,
        )
