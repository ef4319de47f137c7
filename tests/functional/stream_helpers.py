"""Helpers for the stream-connection functional tests (test_stream_*.py).

Two kinds of client:

- `open_ws` returns a `websockets` client connection (asyncio API), for everything a
  well-behaved client does.
- `RawClient` does the HTTP upgrade by hand over `asyncio.open_connection` and then writes
  whatever bytes a test wants (unmasked frames, fragmented pings, bad close codes), or never
  reads at all (slow consumer).

Silence is proven without sleeping where possible: `assert_quiet` sends `LIST_SUBSCRIPTIONS`
after the events were published and expects its reply to be the very next frame, since the
server writes a connection's frames in order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import struct
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from tests.conftest import Harness, event_fixture
from userstream.accounts import Account

RECV_TIMEOUT_S = 5.0
SILENCE_S = 0.1

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA

# Every publishable fixture (listenKeyExpired is emitted by the server, never published).
PUBLISHABLE_FIXTURES = (
    "account_update_doc",
    "account_update_real_2026",
    "margin_call",
    "order_trade_update_doc",
    "order_trade_update_real_2026",
    "trade_lite_doc",
    "trade_lite_real_2026",
    "account_config_update_leverage",
    "account_config_update_multi_assets",
    "strategy_update",
    "grid_update",
    "conditional_order_trigger_reject",
    "algo_update",
)


def numbered(n: int, symbol: str = "BTCUSDT") -> dict[str, Any]:
    """A TRADE_LITE whose trade id `t` is `n`, so a receiver can check order and gaps."""
    event = event_fixture("trade_lite_doc")
    event.update({"E": 1_767_225_600_000 + n, "T": 1_767_225_600_000 + n, "t": n, "s": symbol})
    return event


async def new_account(server: Harness, name: str = "trader") -> tuple[Account, str]:
    """A fresh account and its active listenKey."""
    account = server.account(name)
    return account, await server.listen_key(account)


def open_ws(server: Harness, target: str) -> connect:
    """`async with open_ws(server, "/ws/<K>") as ws:` a websockets client on `target`."""
    return connect(server.ws + target, ping_interval=None, max_size=None, open_timeout=5)


async def recv_text(ws: ClientConnection) -> str:
    message = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    assert isinstance(message, str), f"expected a text frame, got {message!r}"
    return message


async def recv_json(ws: ClientConnection) -> Any:
    return json.loads(await recv_text(ws))


async def send_json(ws: ClientConnection, message: Any) -> None:
    await ws.send(json.dumps(message, separators=(",", ":")))


async def request(ws: ClientConnection, message: Any) -> str:
    """Send one control message; return the next text frame, verbatim."""
    await send_json(ws, message)
    return await recv_text(ws)


async def assert_quiet(ws: ClientConnection, request_id: int = 999_999) -> list[str]:
    """Nothing is queued on `ws`: a `LIST_SUBSCRIPTIONS` reply is the very next frame.

    Returns the subscription list from that reply.
    """
    await send_json(ws, {"method": "LIST_SUBSCRIPTIONS", "id": request_id})
    reply = json.loads(await recv_text(ws))
    assert reply.get("id") == request_id, f"a frame arrived before the reply: {reply!r}"
    result: list[str] = reply["result"]
    return result


async def assert_silent(ws: ClientConnection) -> None:
    """No frame within `SILENCE_S` and the connection is still open."""
    try:
        message = await asyncio.wait_for(ws.recv(), SILENCE_S)
    except TimeoutError:
        pass
    else:
        raise AssertionError(f"unexpected frame {message!r}")
    assert ws.state is State.OPEN


# --- a hand-rolled client for frames `websockets` will not send ------------------------------

_HANDSHAKE_KEY = base64.b64encode(b"userstream-tests").decode("ascii")
_MASK = b"\x5a\x13\xc7\x02"


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    masked: bool = True,
    declared_length: int | None = None,
) -> bytes:
    """One client frame; `declared_length` overrides the length field (payload not padded)."""
    length = len(payload) if declared_length is None else declared_length
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = bytes((first, mask_bit | length))
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return header + payload
    body = bytes(b ^ _MASK[i % 4] for i, b in enumerate(payload))
    return header + _MASK + body


class RawClient:
    """A WebSocket client made of an asyncio stream pair and hand-built frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, server: Harness, target: str, *, receive_buffer: int | None = None
    ) -> RawClient:
        """Connect and complete the upgrade; `receive_buffer` shrinks SO_RCVBUF first."""
        host, port = server.server.config.host, server.server.port
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(
            (
                f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {_HANDSHAKE_KEY}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode("ascii")
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), RECV_TIMEOUT_S)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_frame(self) -> tuple[int, bytes]:
        """The next server frame as (opcode, payload); server frames are never masked."""

        async def read() -> tuple[int, bytes]:
            first, second = await self.reader.readexactly(2)
            assert first & 0x80, "the server sent a fragment"
            assert not second & 0x80, "the server masked a frame"
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)

        return await asyncio.wait_for(read(), RECV_TIMEOUT_S)

    async def read_close(self) -> tuple[int, str, int]:
        """Read up to the server's close frame: (code, reason, data frames skipped)."""
        skipped = 0
        while True:
            opcode, payload = await self.read_frame()
            if opcode == OPCODE_CLOSE:
                code = struct.unpack("!H", payload[:2])[0]
                return code, payload[2:].decode("utf-8"), skipped
            skipped += 1

    async def expect_eof(self) -> None:
        """The server closes the TCP connection (after its close frame, if any)."""
        rest = await asyncio.wait_for(self.reader.read(), RECV_TIMEOUT_S)
        assert rest == b"", rest

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
