"""Liveness over real sockets on the virtual clock (spec §3.1, §4.5; issue #2 item 7).

Server ping every 3 minutes, disconnect when a ping stays unanswered for 10 minutes, close
every connection at 24 hours. Pong handling is the point here, so most tests use the raw
client, which answers pings only when told to.
"""

from __future__ import annotations

import json

from tests.conftest import START_MS, Harness
from tests.functional.wsclient import (
    MINUTE,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    PING_INTERVAL,
    RawWebSocket,
    advance_with_pongs,
    pings,
    raw_connect,
    recv_json,
    wait_closed,
    ws_connect,
)

PONG_TIMEOUT = 10 * MINUTE
DAY = 24 * 60 * MINUTE


async def _stream(server: Harness) -> RawWebSocket:
    account = server.account()
    key = await server.listen_key(account)
    return await raw_connect(server, f"/private/ws?listenKey={key}")


async def test_first_ping_at_three_minutes_not_before(server: Harness) -> None:
    ws = await _stream(server)
    await server.advance(PING_INTERVAL - 1)
    assert await ws.sync() == []
    await server.advance(1)
    frames = await ws.sync()
    assert pings(frames) == [str(START_MS + PING_INTERVAL).encode()]
    await ws.aclose()


async def test_ping_every_three_minutes_for_ws_api_too(server: Harness) -> None:
    ws = await raw_connect(server, "/ws-fapi/v1")
    received: list[bytes] = []
    for _ in range(3):
        await server.advance(PING_INTERVAL)
        frames = await ws.sync()
        received += pings(frames)
        for payload in pings(frames):
            await ws.send(OP_PONG, payload)
    assert received == [str(START_MS + n * PING_INTERVAL).encode() for n in (1, 2, 3)]
    await ws.aclose()


async def test_answering_client_survives_many_cycles(server: Harness) -> None:
    ws = await _stream(server)
    answered = 0
    for _ in range(40):  # two hours: many times the pong deadline
        await server.advance(PING_INTERVAL)
        for payload in pings(await ws.sync()):
            await ws.send(OP_PONG, payload)
            answered += 1
    assert answered == 40
    # Still open and serving control messages.
    await ws.send_text('{"method":"LIST_SUBSCRIPTIONS","id":7}')
    opcode, payload = (await ws.sync())[-1]
    assert opcode == 0x1
    assert b'"id":7' in payload
    await ws.aclose()


async def test_websockets_client_survives_many_cycles(server: Harness) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/private/ws?listenKey={key}") as ws:
        await advance_with_pongs(server, 2 * 60 * MINUTE, ws)
        # The key expired at 60 minutes (nobody kept it alive); the connection did not.
        assert (await recv_json(ws))["e"] == "listenKeyExpired"
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        assert await recv_json(ws) == {"result": [key], "id": 1}


async def test_silent_client_closed_ten_minutes_after_first_unanswered_ping(
    server: Harness,
) -> None:
    ws = await _stream(server)
    await server.advance(PING_INTERVAL)  # first ping, never answered
    await server.advance(PONG_TIMEOUT - 1)
    frames = await ws.sync()  # still open: it answers our ping
    assert len(pings(frames)) == 4  # pings at 3, 6, 9 and 12 minutes
    await server.advance(1)
    code, reason = await ws.recv_close()
    assert code == 1008
    assert "pong" in reason
    await ws.aclose()


async def test_late_but_valid_pong_keeps_connection(server: Harness) -> None:
    """Answering the second ping (not the first) still counts: a ping was echoed in time."""
    ws = await _stream(server)
    await server.advance(PING_INTERVAL)
    await ws.sync()  # ping at 3 min left unanswered
    await server.advance(PING_INTERVAL)
    for payload in pings(await ws.sync()):
        await ws.send(OP_PONG, payload)
    await server.advance(PONG_TIMEOUT)  # past 13 min; next deadline is 10 min after 9 min
    frames = await ws.sync()
    assert all(opcode != OP_CLOSE for opcode, _ in frames)
    await ws.aclose()


async def test_unsolicited_pongs_do_not_keep_silent_client_alive(server: Harness) -> None:
    ws = await _stream(server)
    elapsed = 0
    while elapsed < PING_INTERVAL + PONG_TIMEOUT - MINUTE:
        await server.advance(MINUTE)
        elapsed += MINUTE
        await ws.send(OP_PONG, b"")
        await ws.send(OP_PONG, b"unsolicited")
        frames = await ws.sync()
        assert all(opcode != OP_CLOSE for opcode, _ in frames)
    await server.advance(MINUTE)  # 13 minutes: 10 after the first unanswered ping
    code, reason = await ws.recv_close()
    assert code == 1008
    assert "pong" in reason
    await ws.aclose()


async def test_pong_with_wrong_payload_does_not_count(server: Harness) -> None:
    ws = await _stream(server)
    for _ in range(4):
        await server.advance(PING_INTERVAL)
        for payload in pings(await ws.sync()):
            await ws.send(OP_PONG, payload + b"x")
    await server.advance(PING_INTERVAL + PONG_TIMEOUT - 4 * PING_INTERVAL)
    code, _ = await ws.recv_close()
    assert code == 1008
    await ws.aclose()


async def test_every_connection_closed_at_24_hours(server: Harness) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with (
        ws_connect(f"{server.ws}/private/ws?listenKey={key}") as stream,
        ws_connect(f"{server.ws}/stream?streams={key}") as combined,
        ws_connect(f"{server.ws}/ws-fapi/v1") as wsapi,
    ):
        await advance_with_pongs(server, DAY - 1, stream, combined, wsapi)
        # Still serving one millisecond before the cap.
        await wsapi.send(
            json.dumps(
                {"id": 1, "method": "userDataStream.ping", "params": {"apiKey": account.api_key}}
            )
        )
        reply = await recv_json(wsapi)
        assert reply["status"] == 400  # the key itself expired long ago
        await server.advance(1)
        for ws in (stream, combined, wsapi):
            code, reason = await wait_closed(ws)
            assert code == 1000
            assert reason is not None
            assert "24-hour" in reason


async def test_24_hours_counts_from_each_connection_open(server: Harness) -> None:
    first = await raw_connect(server, "/ws-fapi/v1")
    await server.advance(PING_INTERVAL)
    for payload in pings(await first.sync()):
        await first.send(OP_PONG, payload)
    second = await raw_connect(server, "/ws-fapi/v1")
    for _ in range(DAY // PING_INTERVAL - 2):  # to 3 minutes before the first's cap
        await server.advance(PING_INTERVAL)
        for client in (first, second):
            for opcode, payload in await client.sync():
                assert opcode == OP_PING
                await client.send(OP_PONG, payload)
    await server.advance(PING_INTERVAL)  # the first connection's 24 hours are up
    code, reason = await first.recv_close()
    assert code == 1000
    assert "24-hour" in reason
    # The second opened 3 minutes later and is still open.
    for opcode, payload in await second.sync():
        assert opcode == OP_PING
        await second.send(OP_PONG, payload)
    await server.advance(PING_INTERVAL)
    code, reason = await second.recv_close()
    assert code == 1000
    assert "24-hour" in reason
    await first.aclose()
    await second.aclose()
