"""binance-futures-connector 4.2.0, unmodified, against the server (real-clients.md).

The deprecated legacy connector: `UMFutures` is synchronous `requests` and sends
`listenKey=K` with PUT and DELETE; `UMFuturesWebsocketClient` connects to `<stream_url>/ws`
on its own thread and subscribes with `{"method":"SUBSCRIBE","params":[K],"id":1}`; raw
strings reach `on_message`. So this runs against the subprocess server and collects frames
through a thread-safe queue with timeouts.
"""

from __future__ import annotations

import json
import queue
import threading
import urllib.request
import warnings
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess, event_fixture

with warnings.catch_warnings():
    # `binance` is shared with python-binance, whose package __init__ imports
    # `websockets.legacy`, which warns on import with websockets >= 14 (not our code).
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from binance.error import ClientError
    from binance.um_futures import UMFutures
    from binance.websocket.um_futures.websocket_client import UMFuturesWebsocketClient

pytestmark = pytest.mark.compat

TIMEOUT_S = 5.0


def _publish(proc: ServerProcess, events: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{proc.url}/admin/v1/accounts/{proc.demo['accountId']}/events",
        data=json.dumps(events).encode(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        assert json.loads(response.read())["accepted"] == len(events)


def _next(messages: queue.Queue[str]) -> Any:
    return json.loads(messages.get(timeout=TIMEOUT_S))


def _stop(ws: Any) -> None:
    """`ws.stop()` with a bound, and without leaking the socket.

    `stop()` sends a close frame and joins the reader thread with no timeout; the reader ends
    on the server's close frame but never closes its socket (a ResourceWarning later), so
    send the close frame, join with a bound, then `shutdown()` the websocket-client socket.
    """
    manager = ws.socket_manager
    manager.close()
    manager.join(TIMEOUT_S)
    answered = not manager.is_alive()
    manager.ws.shutdown()
    manager.join(TIMEOUT_S)
    assert answered, "the server did not answer the client's close frame"


def test_listen_key_rest_and_ws_subscribe(server_process: ServerProcess) -> None:
    rest = UMFutures(
        key=server_process.api_key,
        secret=server_process.secret_key,
        base_url=server_process.url,
        timeout=TIMEOUT_S,
    )
    key = rest.new_listen_key()["listenKey"]  # POST /fapi/v1/listenKey
    assert isinstance(key, str)
    assert len(key) == 64
    assert rest.renew_listen_key(key) == {"listenKey": key}  # PUT ?listenKey=K

    messages: queue.Queue[str] = queue.Queue()
    closed = threading.Event()
    ws = UMFuturesWebsocketClient(
        stream_url=server_process.ws,  # the client appends "/ws"
        on_message=lambda _, message: messages.put(message),
        on_close=lambda _: closed.set(),
    )
    try:
        assert ws.socket_manager.stream_url == f"{server_process.ws}/ws"
        ws.user_data(listen_key=key, id=1)  # {"method":"SUBSCRIBE","params":[K],"id":1}
        assert _next(messages) == {"result": None, "id": 1}

        events = [
            event_fixture("order_trade_update_real_2026.json"),
            event_fixture("account_update_real_2026.json"),
            event_fixture("account_config_update_leverage.json"),
        ]
        _publish(server_process, events)
        received = [_next(messages) for _ in events]
        assert received == events  # raw mode: the event object itself, no envelope
        assert received[0]["o"]["i"] == events[0]["o"]["i"]

        # LIST_SUBSCRIPTIONS names the listenKey it subscribed.
        ws.list_subscribe(id=2)
        assert _next(messages) == {"result": [key], "id": 2}

        assert rest.close_listen_key(key) == {}  # DELETE ?listenKey=K
        expired = _next(messages)
        assert expired["e"] == "listenKeyExpired"
        assert expired["listenKey"] == key
        assert isinstance(expired["E"], int)
        with pytest.raises(queue.Empty):
            messages.get(timeout=0.2)
    finally:
        _stop(ws)
    assert closed.wait(TIMEOUT_S), "on_close was not called"

    # The key is gone: PUT answers 400 -1125 (spec §2.3).
    with pytest.raises(ClientError) as excinfo:
        rest.renew_listen_key(key)
    assert excinfo.value.status_code == 400
    assert excinfo.value.error_code == -1125
    assert excinfo.value.error_message == "This listenKey does not exist."
