"""`POST /admin/v1/clock/advance` moves virtual time the way real time would pass.

It steps through time (1 minute by default) and gives clients a moment of real time to answer
each ping, so one call can cross a key's expiry or the 24-hour cap with live clients, while a
client that never answers is still dropped at its pong deadline.
"""

from __future__ import annotations

import json

from tests.conftest import Harness
from tests.functional.wsclient import raw_connect, recv_json, wait_closed, ws_connect

HOUR = 60 * 60 * 1000


async def test_one_advance_of_an_hour_expires_the_key_and_keeps_live_clients(
    server: Harness,
) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/private/ws?listenKey={key}") as ws:
        status, body = await server.admin("POST", "clock/advance", {"ms": HOUR})
        assert status == 200, body
        expired = await recv_json(ws)
        assert expired == {"e": "listenKeyExpired", "E": expired["E"], "listenKey": key}
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert await recv_json(ws) == {"result": [key], "id": 1}


async def test_one_advance_of_a_day_closes_at_the_cap_not_for_a_missing_pong(
    server: Harness,
) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/ws-fapi/v1") as ws:
        status, _ = await server.admin("POST", "clock/advance", {"ms": 24 * HOUR})
        assert status == 200
        code, reason = await wait_closed(ws)
        assert code == 1000
        assert reason is not None
        assert "24-hour" in reason
    del key


async def test_a_client_that_never_answers_is_still_dropped_at_its_deadline(
    server: Harness,
) -> None:
    account = server.account()
    key = await server.listen_key(account)
    raw = await raw_connect(server, f"/ws/{key}")
    status, _ = await server.admin("POST", "clock/advance", {"ms": 20 * 60 * 1000})
    assert status == 200
    code, reason = await raw.recv_close()
    assert code == 1008
    assert "pong" in reason
    await raw.aclose()


async def test_step_size_is_validated(server: Harness) -> None:
    status, body = await server.admin("POST", "clock/advance", {"ms": 1000, "stepMs": 10})
    assert status == 400
    assert "stepMs" in body["msg"]
