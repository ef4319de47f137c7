"""A WebSocket connection over a real socket pair: dispatch, answers, the close handshake and
its single close state."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.unit.protocol.test_wsframes import client_frame
from userstream.protocol.wsframes import CloseCode, Opcode
from userstream.server.websocket import CloseState, Flusher, WebSocketConnection


@dataclass
class Handler:
    """Records what the connection tells its session; can close on a ping."""

    close_on_ping: bool = False
    conn: WebSocketConnection | None = None
    messages: list[tuple[Opcode, bytes]] = field(default_factory=list)
    pings: list[bytes] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    closed: list[tuple[int, str]] = field(default_factory=list)

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn

    def on_message(self, opcode: Opcode, payload: bytes) -> None:
        self.messages.append((opcode, payload))

    def on_ping(self, payload: bytes) -> None:
        self.pings.append(payload)
        if self.close_on_ping and self.conn is not None:
            self.conn.close(CloseCode.POLICY_VIOLATION, "enough")

    def on_pong(self, payload: bytes) -> None:
        self.pongs.append(payload)

    def on_close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


class _Adapter(asyncio.Protocol):
    def __init__(self) -> None:
        self.conn: WebSocketConnection | None = None
        self.lost = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.conn.connection_lost(exc)
        self.lost.set()


@dataclass
class Pair:
    conn: WebSocketConnection
    handler: Handler
    adapter: _Adapter
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def read_frame(self) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 2)
        assert first & 0x80
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def read_close(self) -> tuple[int, str]:
        opcode, payload = await self.read_frame()
        assert opcode == Opcode.CLOSE
        return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    async def expect_eof(self) -> None:
        assert await asyncio.wait_for(self.reader.read(), 2) == b""

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


async def open_pair(handler: Handler, max_message: int = 65536) -> Pair:
    loop = asyncio.get_running_loop()
    server_sock, client_sock = socket.socketpair()
    transport, adapter = await loop.connect_accepted_socket(_Adapter, server_sock)
    conn = WebSocketConnection(transport, handler, Flusher(), max_message, "127.0.0.1")
    adapter.conn = conn
    conn.open()
    reader, writer = await asyncio.open_connection(sock=client_sock)
    return Pair(conn, handler, adapter, reader, writer)


@contextlib.asynccontextmanager
async def opened(handler: Handler) -> AsyncIterator[Pair]:
    pair = await open_pair(handler)
    try:
        yield pair
    finally:
        pair.writer.close()
        pair.conn.abort()
        await asyncio.wait_for(pair.adapter.lost.wait(), 2)


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    async with opened(Handler()) as pair:
        yield pair


async def test_frames_queued_in_one_turn_leave_in_order(pair: Pair) -> None:
    pair.conn.send_text(b"one")
    pair.conn.send_frames([b"\x81\x03", b"two"])
    pair.conn.ping(b"p")
    assert pair.conn.state is CloseState.OPEN
    assert await pair.read_frame() == (Opcode.TEXT, b"one")
    assert await pair.read_frame() == (Opcode.TEXT, b"two")
    assert await pair.read_frame() == (Opcode.PING, b"p")
    assert pair.conn.bytes_sent == 5 + 5 + 3


async def test_messages_pings_and_pongs_reach_the_handler(pair: Pair) -> None:
    await pair.send(
        client_frame(Opcode.TEXT, b'{"id":1}')
        + client_frame(Opcode.PING, b"hi")
        + client_frame(Opcode.PONG, b"123")
    )
    assert await pair.read_frame() == (Opcode.PONG, b"hi")
    assert pair.handler.messages == [(Opcode.TEXT, b'{"id":1}')]
    assert pair.handler.pings == [b"hi"]
    assert pair.handler.pongs == [b"123"]


async def test_a_ping_the_handler_refuses_gets_no_pong() -> None:
    async with opened(Handler(close_on_ping=True)) as pair:
        await _refused_ping(pair)


async def _refused_ping(pair: Pair) -> None:
    await pair.send(client_frame(Opcode.PING, b"x") + client_frame(Opcode.TEXT, b"late"))
    assert await pair.read_close() == (CloseCode.POLICY_VIOLATION, "enough")
    assert not pair.conn.open_
    assert pair.handler.messages == []  # nothing is dispatched after the close frame
    await pair.send(client_frame(Opcode.CLOSE, struct.pack("!H", 1000)))
    await pair.expect_eof()
    await asyncio.wait_for(pair.adapter.lost.wait(), 2)
    assert pair.conn.state is CloseState.CLOSED
    assert pair.handler.closed == [(CloseCode.POLICY_VIOLATION, "enough")]


async def test_server_close_flushes_first_and_drops_later_sends(pair: Pair) -> None:
    pair.conn.send_text(b"before")
    pair.conn.close(CloseCode.GOING_AWAY, "bye")
    pair.conn.send_text(b"after")
    pair.conn.close(CloseCode.NORMAL, "again")  # already closing: ignored
    assert not pair.conn.open_
    assert await pair.read_frame() == (Opcode.TEXT, b"before")
    assert await pair.read_close() == (CloseCode.GOING_AWAY, "bye")
    await pair.send(client_frame(Opcode.CLOSE, struct.pack("!H", 1001)))
    await pair.expect_eof()
    await asyncio.wait_for(pair.adapter.lost.wait(), 2)
    assert pair.handler.closed == [(CloseCode.GOING_AWAY, "bye")]


async def test_peer_close_is_echoed_and_reported(pair: Pair) -> None:
    await pair.send(client_frame(Opcode.CLOSE, struct.pack("!H", 4001) + b"done"))
    assert await pair.read_close() == (4001, "")
    await pair.expect_eof()
    await asyncio.wait_for(pair.adapter.lost.wait(), 2)
    assert pair.conn.state is CloseState.CLOSED
    assert pair.handler.closed == [(4001, "done")]


async def test_framing_error_closes_with_its_code_and_drops_tcp(pair: Pair) -> None:
    await pair.send(client_frame(Opcode.TEXT, b"\xff"))
    assert await pair.read_close() == (CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
    await pair.expect_eof()
    await asyncio.wait_for(pair.adapter.lost.wait(), 2)
    assert pair.handler.closed == [(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")]


async def test_abort_sends_no_close_frame(pair: Pair) -> None:
    pair.conn.close(CloseCode.ABNORMAL, "gone")
    await pair.expect_eof()
    await asyncio.wait_for(pair.adapter.lost.wait(), 2)
    assert pair.handler.closed == [(CloseCode.ABNORMAL, "gone")]


async def test_peer_hang_up_reports_1006_once(pair: Pair) -> None:
    pair.writer.close()
    await asyncio.wait_for(pair.adapter.lost.wait(), 2)
    pair.conn.connection_lost(None)
    assert pair.conn.state is CloseState.CLOSED
    assert pair.handler.closed == [(CloseCode.ABNORMAL, "")]
    pair.conn.data_received(client_frame(Opcode.TEXT, b"x"))  # after the end: ignored
    assert pair.handler.messages == []
