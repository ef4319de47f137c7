"""Live subscription control messages over the wire (spec §4.4, §4.5; issue #2 item 6).

Replies are compared as exact text: clients match on them byte for byte less often than on
parsed JSON, but the server must send Binance's shape, key order included.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.conftest import Harness, event_fixture
from tests.functional.stream_helpers import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    RawClient,
    assert_quiet,
    frame,
    new_account,
    open_ws,
    recv_json,
    recv_text,
    request,
)

ORDER = event_fixture("order_trade_update_doc")
ACCOUNT = event_fixture("account_update_doc")
SDK_ID = "0f3c5b6e9a8d4c2b8e1f7a6d5c4b3a29"  # the official SDKs send 32-hex string ids


async def delivers(server: Harness, ws: ClientConnection, account: Any, key: str) -> None:
    """The connection still works: the next published event arrives."""
    await server.publish(account, ORDER)
    frame = await recv_json(ws)
    assert frame in (ORDER, {"stream": key, "data": ORDER})


@pytest.mark.parametrize(
    ("request_id", "echoed"),
    [(1, "1"), (18446744073709551615, "18446744073709551615"), (SDK_ID, f'"{SDK_ID}"')],
    ids=["int", "u64-max", "string"],
)
async def test_replies_echo_the_id_with_its_type(
    server: Harness, request_id: int | str, echoed: str
) -> None:
    account, key = await new_account(server)
    async with open_ws(server, "/ws") as ws:
        rid = request_id
        sub = {"method": "SUBSCRIBE", "params": [key], "id": rid}
        assert await request(ws, sub) == f'{{"result":null,"id":{echoed}}}'
        listing = {"method": "LIST_SUBSCRIPTIONS", "id": rid}
        assert await request(ws, listing) == f'{{"result":["{key}"],"id":{echoed}}}'
        get = {"method": "GET_PROPERTY", "params": ["combined"], "id": rid}
        assert await request(ws, get) == f'{{"result":false,"id":{echoed}}}'
        put = {"method": "SET_PROPERTY", "params": ["combined", False], "id": rid}
        assert await request(ws, put) == f'{{"result":null,"id":{echoed}}}'
        await delivers(server, ws, account, key)
        unsub = {"method": "UNSUBSCRIBE", "params": [key], "id": rid}
        assert await request(ws, unsub) == f'{{"result":null,"id":{echoed}}}'
        assert await request(ws, listing) == f'{{"result":[],"id":{echoed}}}'


async def test_list_subscriptions_reports_route_streams_sorted(server: Harness) -> None:
    _, key = await new_account(server)
    target = f"/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE/MARGIN_CALL/listenKeyExpired"
    async with open_ws(server, target + "/ACCOUNT_UPDATE") as ws:
        reply = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
        names = ["ACCOUNT_UPDATE", "MARGIN_CALL", "ORDER_TRADE_UPDATE", "listenKeyExpired"]
        items = ",".join(f'"{key}@{name}"' for name in names)
        assert reply == f'{{"result":[{items}],"id":3}}'


async def test_set_property_combined_switches_the_envelope(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as ws:
        await server.publish(account, ORDER)
        assert await recv_json(ws) == ORDER
        put = {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}
        assert await request(ws, put) == '{"result":null,"id":5}'
        get = {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}
        assert await request(ws, get) == '{"result":true,"id":2}'
        await server.publish(account, ACCOUNT)
        assert await recv_json(ws) == {"stream": key, "data": ACCOUNT}
        put_back = {"method": "SET_PROPERTY", "params": ["combined", False], "id": 6}
        assert await request(ws, put_back) == '{"result":null,"id":6}'
        await server.publish(account, ORDER)
        assert await recv_json(ws) == ORDER


async def test_set_property_combined_false_on_stream_sends_raw(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/private/stream?streams={key}") as ws:
        put = {"method": "SET_PROPERTY", "params": ["combined", False], "id": 1}
        assert await request(ws, put) == '{"result":null,"id":1}'
        await server.publish(account, ORDER)
        assert await recv_json(ws) == ORDER


EXPECTED_METHODS = (
    "expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, "
    "`GET_PROPERTY`"
)

ERRORS = [
    pytest.param(
        '{"method":"GET_PROPERTY","params":["speed"],"id":11}',
        '{"error":{"code":0,"msg":"Unknown property"},"id":11}',
        id="0-unknown-property",
    ),
    pytest.param(
        '{"method":"SET_PROPERTY","params":["combined","yes"],"id":12}',
        '{"error":{"code":1,"msg":"Invalid value type: expected Boolean"},"id":12}',
        id="1-not-boolean",
    ),
    pytest.param(
        '{"method":"SET_PROPERTY","params":[5,true],"id":"s13"}',
        '{"error":{"code":2,"msg":"Invalid request: property name must be a string"},"id":"s13"}',
        id="2-property-name",
    ),
    pytest.param(
        '{"method":"SUBSCRIBE","params":["x"]}',
        '{"error":{"code":2,"msg":"Invalid request: request ID must be an unsigned integer"},'
        '"id":null}',
        id="2-missing-id",
    ),
    pytest.param(
        '{"method":"SUBSCRIBE","params":["x"],"id":-1}',
        '{"error":{"code":2,"msg":"Invalid request: request ID must be an unsigned integer"},'
        '"id":null}',
        id="2-negative-id",
    ),
    pytest.param(
        '{"method":"SUBSCRIBE","params":["x"],"id":1.5}',
        '{"error":{"code":2,"msg":"Invalid request: request ID must be an unsigned integer"},'
        '"id":null}',
        id="2-float-id",
    ),
    pytest.param(
        '{"method":"FOO","id":1}',
        '{"error":{"code":2,"msg":"Invalid request: unknown variant `FOO`, '
        + EXPECTED_METHODS
        + ' at line 1 column 15"},"id":null}',
        id="2-unknown-method",
    ),
    pytest.param(
        '{"params":[],"id":1}',
        '{"error":{"code":2,"msg":"Invalid request: missing field `method` at line 1 column 20"},'
        '"id":null}',
        id="2-missing-method",
    ),
    pytest.param(
        '{"method":"GET_PROPERTY","params":["combined","x"],"id":14}',
        '{"error":{"code":2,"msg":"Invalid request: too many parameters"},"id":14}',
        id="2-too-many-params",
    ),
    pytest.param(
        '{"method":"SUBSCRIBE","params":["bad name"],"id":15}',
        '{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":15}',
        id="2-invalid-stream",
    ),
    pytest.param(
        "[1,2]",
        '{"error":{"code":2,"msg":"Invalid request: invalid type: sequence, expected a map"},'
        '"id":null}',
        id="2-not-an-object",
    ),
]


@pytest.mark.parametrize(("message", "reply"), ERRORS)
async def test_error_reply_then_connection_keeps_working(
    server: Harness, message: str, reply: str
) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as ws:
        await ws.send(message)
        assert await recv_text(ws) == reply
        await delivers(server, ws, account, key)
        assert await assert_quiet(ws) == [key]


async def test_more_than_1024_streams_is_refused_as_a_whole(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as ws:
        fill = [f"btcusdt{i}@aggTrade" for i in range(1023)]
        assert await request(ws, {"method": "SUBSCRIBE", "params": fill, "id": 1}) == (
            '{"result":null,"id":1}'
        )
        over = ["ethusdt@aggTrade", "bnbusdt@aggTrade"]
        assert await request(ws, {"method": "SUBSCRIBE", "params": over, "id": 2}) == (
            '{"error":{"code":4,"msg":"Too many subscriptions"},"id":2}'
        )
        assert len(await assert_quiet(ws)) == 1024
        await delivers(server, ws, account, key)
        # Resubscribing a name already held does not count against the limit.
        assert await request(ws, {"method": "SUBSCRIBE", "params": [key], "id": 3}) == (
            '{"result":null,"id":3}'
        )
        assert await request(ws, {"method": "SUBSCRIBE", "params": over[:1], "id": 4}) == (
            '{"error":{"code":4,"msg":"Too many subscriptions"},"id":4}'
        )
        unsub = {"method": "UNSUBSCRIBE", "params": fill[:1], "id": 5}
        assert await request(ws, unsub) == '{"result":null,"id":5}'
        assert await request(ws, {"method": "SUBSCRIBE", "params": over[:1], "id": 6}) == (
            '{"result":null,"id":6}'
        )


async def test_1025_streams_in_one_subscribe_is_refused(server: Harness) -> None:
    async with open_ws(server, "/ws") as ws:
        names = [f"s{i}@aggTrade" for i in range(1025)]
        assert await request(ws, {"method": "SUBSCRIBE", "params": names, "id": 9}) == (
            '{"error":{"code":4,"msg":"Too many subscriptions"},"id":9}'
        )
        assert await assert_quiet(ws) == []


def fatal(msg: str) -> str:
    """The code-3 reply to malformed JSON: no `id` (spec §4.4)."""
    return f'{{"error":{{"code":3,"msg":"Invalid JSON: {msg}"}}}}'


@pytest.mark.parametrize(
    ("message", "reply"),
    [
        ("not json", fatal("expected ident at line 1 column 2")),
        ("", fatal("EOF while parsing a value at line 1 column 0")),
        ('{"method":"SUBSCRIBE","id":1', fatal("EOF while parsing an object at line 1 column 28")),
    ],
    ids=["garbage", "empty", "truncated"],
)
async def test_invalid_json_replies_code_3_then_disconnects(
    server: Harness, message: str, reply: str
) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as bad, open_ws(server, f"/ws/{key}") as good:
        await bad.send(message)
        assert await recv_text(bad) == reply
        with pytest.raises(ConnectionClosed) as info:
            await recv_text(bad)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        await delivers(server, good, account, key)


async def test_more_than_ten_messages_in_a_second_disconnects(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as ws, open_ws(server, f"/ws/{key}") as other:
        for i in range(10):
            await ws.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
        for i in range(10):
            assert await recv_text(ws) == f'{{"result":["{key}"],"id":{i}}}'
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":10}')
        with pytest.raises(ConnectionClosed) as info:
            await recv_text(ws)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        assert "too many messages" in info.value.rcvd.reason
        await delivers(server, other, account, key)


async def test_rate_limit_window_slides_with_the_server_clock(server: Harness) -> None:
    _, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as ws:
        for round_ in range(3):
            for i in range(10):
                await ws.send(f'{{"method":"GET_PROPERTY","params":["combined"],"id":{i}}}')
            for i in range(10):
                assert await recv_text(ws) == f'{{"result":false,"id":{i}}}'
            await server.advance(1000)
            del round_
        assert await assert_quiet(ws) == [key]


async def test_unsubscribe_stops_delivery(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as ws:
        await delivers(server, ws, account, key)
        unsub = {"method": "UNSUBSCRIBE", "params": [key], "id": 312}
        assert await request(ws, unsub) == '{"result":null,"id":312}'
        await server.publish(account, [ORDER, ACCOUNT])
        assert await assert_quiet(ws) == []
        # Unsubscribing what is not subscribed is acknowledged too.
        assert await request(ws, unsub) == '{"result":null,"id":312}'
        sub = {"method": "SUBSCRIBE", "params": [key], "id": 313}
        assert await request(ws, sub) == '{"result":null,"id":313}'
        await delivers(server, ws, account, key)


async def test_unsubscribe_one_event_keeps_the_others(server: Harness) -> None:
    account, key = await new_account(server)
    target = f"/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"
    async with open_ws(server, target) as ws:
        unsub = {"method": "UNSUBSCRIBE", "params": [f"{key}@ORDER_TRADE_UPDATE"], "id": 1}
        assert await request(ws, unsub) == '{"result":null,"id":1}'
        await server.publish(account, [ORDER, ACCOUNT])
        assert await recv_json(ws) == ACCOUNT
        assert await assert_quiet(ws) == [f"{key}@ACCOUNT_UPDATE"]


async def test_subscribe_on_ws_uses_the_raw_envelope_until_set_property(server: Harness) -> None:
    """Binance-futures-connector's flow: `/ws`, then SUBSCRIBE the bare key (spec §4.2)."""
    account, key = await new_account(server)
    async with open_ws(server, "/ws") as ws:
        sub = {"method": "SUBSCRIBE", "params": [key], "id": 1}
        assert await request(ws, sub) == '{"result":null,"id":1}'
        await server.publish(account, ORDER)
        assert await recv_json(ws) == ORDER


# --- hostile frames -------------------------------------------------------------------------

LIST_1 = b'{"method":"LIST_SUBSCRIPTIONS","id":1}'
INVALID_JSON_CLOSE = ("close", 1008, "invalid JSON")


def code3(msg: str) -> tuple[str, str]:
    return ("text", fatal(msg))


HOSTILE = [
    pytest.param(
        frame(OPCODE_TEXT, LIST_1, masked=False),
        [("close", 1002, "client frames must be masked")],
        id="unmasked",
    ),
    pytest.param(
        frame(OPCODE_TEXT, b"", declared_length=64 * 1024 + 1),
        [("close", 1009, "frame over 65536 bytes")],
        id="over-max-size",
    ),
    pytest.param(
        frame(OPCODE_TEXT, b"[" * 40_000, fin=False) + frame(0, b"]" * 40_000),
        [("close", 1009, "message over 65536 bytes")],
        id="fragments-over-max-size",
    ),
    pytest.param(
        frame(OPCODE_PING, b"hi", fin=False),
        [("close", 1002, "invalid control frame")],
        id="fragmented-ping",
    ),
    pytest.param(
        frame(OPCODE_TEXT, LIST_1[:10], fin=False)
        + frame(OPCODE_CLOSE, b"", fin=False)
        + frame(0, LIST_1[10:]),
        [("close", 1002, "invalid control frame")],
        id="fragmented-close-inside-message",
    ),
    pytest.param(
        frame(OPCODE_PING, b"x" * 126),
        [("close", 1002, "invalid control frame")],
        id="ping-over-125-bytes",
    ),
    pytest.param(
        bytes([0xC1]) + frame(OPCODE_TEXT, b"{}")[1:],
        [("close", 1002, "reserved bits set (no extension agreed)")],
        id="reserved-bit",
    ),
    pytest.param(
        frame(0x3, b"x"), [("close", 1002, "unknown data opcode 3")], id="reserved-opcode"
    ),
    # Binary frames are read as control messages, like text (Binance documents neither).
    pytest.param(frame(OPCODE_BINARY, LIST_1), [("text", "LIST")], id="binary-control"),
    pytest.param(
        frame(OPCODE_BINARY, b"\x00\x01\xff"),
        [code3("expected value at line 1 column 1"), INVALID_JSON_CLOSE],
        id="binary-garbage",
    ),
    pytest.param(
        frame(OPCODE_TEXT, b"[" * 200 + b"]" * 200),
        [code3("recursion limit exceeded at line 1 column 128"), INVALID_JSON_CLOSE],
        id="nested-200",
    ),
    pytest.param(
        frame(OPCODE_TEXT, b"\xff\xfe"),
        [("close", 1007, "invalid UTF-8 in a text message")],
        id="non-utf8",
    ),
    pytest.param(
        frame(OPCODE_TEXT, b'{"method":"SUBSCRIBE","params":["\xc3"],"id":1}'),
        [("close", 1007, "invalid UTF-8 in a text message")],
        id="non-utf8-in-string",
    ),
    # A binary frame need not be UTF-8: it is read as JSON, and serde's error is the answer.
    pytest.param(
        frame(OPCODE_BINARY, b'{"method":"SUBSCRIBE","params":["\xc3"],"id":1}'),
        [code3("invalid unicode code point at line 1 column 35"), INVALID_JSON_CLOSE],
        id="non-utf8-in-string-binary",
    ),
    pytest.param(
        frame(OPCODE_CLOSE, struct.pack("!H", 999)), [("close", 1002, "")], id="close-999"
    ),
    pytest.param(
        frame(OPCODE_CLOSE, struct.pack("!H", 1005)), [("close", 1002, "")], id="close-1005"
    ),
    pytest.param(
        frame(OPCODE_CLOSE, struct.pack("!H", 2999)), [("close", 1002, "")], id="close-2999"
    ),
    pytest.param(
        frame(OPCODE_CLOSE, struct.pack("!H", 5000)), [("close", 1002, "")], id="close-5000"
    ),
    pytest.param(frame(OPCODE_CLOSE, b"\x03"), [("close", 1002, "")], id="close-one-byte"),
    pytest.param(
        frame(OPCODE_CLOSE, struct.pack("!H", 1000) + b"\xff"),
        [("close", 1007, "")],
        id="close-reason-not-utf8",
    ),
    pytest.param(
        frame(OPCODE_CLOSE, struct.pack("!H", 4321) + b"bye"),
        [("close", 4321, "")],
        id="close-valid-code-echoed",
    ),
    pytest.param(frame(OPCODE_CLOSE, b""), [("close", 1000, "")], id="close-empty"),
]


@pytest.mark.parametrize(("data", "expected"), HOSTILE)
async def test_hostile_frame_is_handled_and_others_keep_receiving(
    server: Harness, data: bytes, expected: list[tuple[Any, ...]]
) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as bystander:
        hostile = await RawClient.connect(server, f"/ws/{key}")
        hostile.send(data)
        for kind, *rest in expected:
            opcode, payload = await hostile.read_frame()
            if kind == "text":
                assert opcode == OPCODE_TEXT
                text = f'{{"result":["{key}"],"id":1}}' if rest == ["LIST"] else rest[0]
                assert payload.decode() == text
            else:
                assert opcode == OPCODE_CLOSE
                code, reason = rest
                assert struct.unpack("!H", payload[:2])[0] == code
                assert payload[2:].decode() == reason
        if expected[-1][0] == "close":
            if expected[-1][2]:  # the server started the close: finish the handshake
                hostile.send(frame(OPCODE_CLOSE, struct.pack("!H", 1000)))
            await hostile.expect_eof()
        await hostile.aclose()
        await delivers(server, bystander, account, key)
        assert await assert_quiet(bystander) == [key]


async def test_fragmented_text_message_is_reassembled(server: Harness) -> None:
    account, key = await new_account(server)
    client = await RawClient.connect(server, f"/ws/{key}")
    client.send(
        frame(OPCODE_TEXT, LIST_1[:5], fin=False)
        + frame(OPCODE_PING, b"mid")
        + frame(0, LIST_1[5:20], fin=False)
        + frame(0, LIST_1[20:])
    )
    assert await client.read_frame() == (OPCODE_PONG, b"mid")
    assert await client.read_frame() == (OPCODE_TEXT, f'{{"result":["{key}"],"id":1}}'.encode())
    await server.publish(account, ORDER)
    opcode, payload = await client.read_frame()
    assert (opcode, json.loads(payload)) == (OPCODE_TEXT, ORDER)
    await client.aclose()
