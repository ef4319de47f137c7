"""Stream connections on the wire: ping and pong frames count toward the 10 incoming messages
per second (issue #9 item 4), and RFC 6455 details of the handshake and framing (item 10)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from tests.conftest import Harness
from tests.functional.stream_helpers import (
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    RawClient,
    frame,
    new_account,
)

TOO_MANY = "too many messages: over 10 per second"


async def _pongs_then_close(client: RawClient) -> tuple[int, int, str]:
    """Read pongs up to the server's close frame: (pongs, close code, reason)."""
    pongs = 0
    while True:
        opcode, payload = await client.read_frame()
        if opcode == OPCODE_CLOSE:
            return pongs, struct.unpack("!H", payload[:2])[0], payload[2:].decode()
        assert opcode == OPCODE_PONG
        pongs += 1


async def test_a_burst_of_200_pings_is_disconnected_after_10(server: Harness) -> None:
    _, key = await new_account(server)
    client = await RawClient.connect(server, f"/ws/{key}")
    client.send(b"".join(frame(OPCODE_PING, b"%d" % i) for i in range(200)))
    assert await _pongs_then_close(client) == (10, 1008, TOO_MANY)
    await client.aclose()


async def test_pongs_count_too(server: Harness) -> None:
    _, key = await new_account(server)
    client = await RawClient.connect(server, f"/ws/{key}")
    client.send(b"".join(frame(OPCODE_PONG, b"") for _ in range(10)) + frame(OPCODE_PING, b"x"))
    assert await _pongs_then_close(client) == (0, 1008, TOO_MANY)
    await client.aclose()


@pytest.mark.parametrize("pings", [5, 9])
async def test_pings_and_messages_share_the_budget(server: Harness, pings: int) -> None:
    """Nine frames and a message are within the limit; ten frames and a message are not."""
    _, key = await new_account(server)
    client = await RawClient.connect(server, f"/ws/{key}")
    client.send(
        b"".join(frame(OPCODE_PING, b"") for _ in range(pings))
        + frame(OPCODE_TEXT, b'{"method":"LIST_SUBSCRIPTIONS","id":1}')
    )
    for _ in range(pings):
        assert await client.read_frame() == (OPCODE_PONG, b"")
    assert await client.read_frame() == (OPCODE_TEXT, f'{{"result":["{key}"],"id":1}}'.encode())
    client.send(frame(OPCODE_PING, b"after"))
    if pings + 2 <= 10:
        assert await client.read_frame() == (OPCODE_PONG, b"after")
    else:
        assert await _pongs_then_close(client) == (0, 1008, TOO_MANY)
    await client.aclose()


async def test_the_budget_refills_as_the_server_clock_moves(server: Harness) -> None:
    _, key = await new_account(server)
    client = await RawClient.connect(server, f"/ws/{key}")
    for round_ in range(3):
        client.send(b"".join(frame(OPCODE_PING, b"%d" % i) for i in range(10)))
        for i in range(10):
            assert await client.read_frame() == (OPCODE_PONG, b"%d" % i)
        await server.advance(1000)
        del round_
    await client.aclose()


async def test_a_standing_virtual_clock_does_not_pile_a_sessions_pings_into_one_second(
    server: Harness,
) -> None:
    """The harness's clock is virtual and does not move here: 10 pings, a real second, 10
    more must all be answered, as they would be on a real clock (the limit guards against
    floods, which happen in real time)."""
    _, key = await new_account(server)
    client = await RawClient.connect(server, f"/ws/{key}")
    for burst in range(2):
        client.send(b"".join(frame(OPCODE_PING, b"%d-%d" % (burst, i)) for i in range(10)))
        for i in range(10):
            assert await client.read_frame() == (OPCODE_PONG, b"%d-%d" % (burst, i))
        if burst == 0:
            await asyncio.sleep(1.05)  # real time is the subject of this test
    await client.aclose()


async def test_unsupported_version_is_426_naming_version_13(server: Harness) -> None:
    _, key = await new_account(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.server.port)
    writer.write(
        f"GET /ws/{key} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n".encode()
    )
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode("latin-1")
    lines = head.split("\r\n")
    assert lines[0] == "HTTP/1.1 426 Upgrade Required"
    assert "Sec-WebSocket-Version: 13" in lines
    writer.close()


async def test_64_bit_length_with_the_top_bit_set_is_a_protocol_error(server: Harness) -> None:
    _, key = await new_account(server)
    client = await RawClient.connect(server, f"/ws/{key}")
    client.send(bytes((0x81, 0x80 | 127)) + struct.pack("!Q", 1 << 63) + b"mask")
    assert await _pongs_then_close(client) == (0, 1002, "64-bit length with the top bit set")
    await client.expect_eof()
    await client.aclose()
