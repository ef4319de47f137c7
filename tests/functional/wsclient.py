"""Client-side helpers for the liveness, expiry, WebSocket API, admin and process tests.

`RawWebSocket` is a hand-written RFC 6455 client over `asyncio.open_connection`: it never
answers a ping by itself, so a test decides whether (and with what payload) the server's
pings get their pong. `sync()` and `sync_raw()` are round trips that prove the server has
read everything sent before them and the client has received everything the server queued
before answering, so "nothing arrived" is checked without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import Harness

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

MINUTE = 60 * 1000
PING_INTERVAL = 3 * MINUTE
RECV_TIMEOUT_S = 2.0
_MAGIC_SYNC = b"sync"


def ws_connect(url: str) -> connect:
    """A `websockets` client with its own keepalive off; it still answers server pings."""
    return connect(url, ping_interval=None, open_timeout=5, close_timeout=2)


async def sync(ws: ClientConnection) -> None:
    """Two ping round trips from the client.

    After the first, every frame the server queued earlier (its own pings, events) has been
    received and auto-answered; after the second, the server has read those answers too.
    """
    for _ in range(2):
        pong = await ws.ping()
        await asyncio.wait_for(pong, RECV_TIMEOUT_S)


async def recv_json(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))


async def assert_nothing_received(ws: ClientConnection) -> None:
    """After `sync`, any frame the server had queued would already be buffered here."""
    await sync(ws)
    try:
        message = await asyncio.wait_for(ws.recv(), 0.02)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message: {message!r}")


async def advance_with_pongs(server: Harness, ms: int, *conns: ClientConnection) -> None:
    """Move the virtual clock in steps of at most one ping interval, letting every
    connection answer each server ping before the next step (so no pong deadline passes)."""
    while ms > 0:
        step = min(ms, PING_INTERVAL)
        await server.advance(step)
        ms -= step
        for ws in conns:
            await sync(ws)


async def wait_closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Wait for the connection to close; returns the code and reason the client saw."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    except ConnectionClosed:
        pass
    return ws.close_code, ws.close_reason


class RawWebSocket:
    """A minimal client: masked frames out, unmasked frames in, no automatic pongs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str) -> RawWebSocket:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), RECV_TIMEOUT_S)
        status_line = head.split(b"\r\n", 1)[0]
        assert b" 101 " in status_line, head
        return cls(reader, writer)

    async def send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._writer.write(header + mask + masked)
        await self._writer.drain()

    async def send_text(self, text: str) -> None:
        await self.send(OP_TEXT, text.encode())

    async def recv(self) -> tuple[int, bytes]:
        """The next frame as (opcode, payload); raises `EOFError` if TCP closed first."""
        try:
            head = await asyncio.wait_for(self._reader.readexactly(2), RECV_TIMEOUT_S)
            length = head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self._reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
            payload = await self._reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise EOFError("connection closed without a frame") from exc
        return head[0] & 0x0F, payload

    async def sync(self) -> list[tuple[int, bytes]]:
        """Ping the server and wait for its pong; returns the frames that came before it.

        The server answers pings in order, so when the pong arrives it has read everything
        sent before, and any frame it had queued earlier is in the returned list.
        """
        await self.send(OP_PING, _MAGIC_SYNC)
        before: list[tuple[int, bytes]] = []
        while True:
            opcode, payload = await self.recv()
            if opcode == OP_PONG and payload == _MAGIC_SYNC:
                return before
            before.append((opcode, payload))

    async def recv_close(self) -> tuple[int, str]:
        """Skip frames up to the server's close frame; return its code and reason."""
        while True:
            opcode, payload = await self.recv()
            if opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return code, payload[2:].decode()

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


async def raw_connect(server: Harness, path: str) -> RawWebSocket:
    return await RawWebSocket.connect(server.server.config.host, server.server.port, path)


def pings(frames: list[tuple[int, bytes]]) -> list[bytes]:
    return [payload for opcode, payload in frames if opcode == OP_PING]
