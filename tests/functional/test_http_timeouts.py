"""Socket hygiene: a request must arrive whole in time; idle keep-alive connections close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from tests.conftest import running_harness
from userstream.server.app import UserStreamServer


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[UserStreamServer]:
    async with running_harness(tmp_path / "data", request_timeout_s=0.2) as harness:
        yield harness.server


async def test_a_request_that_never_finishes_gets_408(quick: UserStreamServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", quick.port)
    writer.write(b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
    answer = await asyncio.wait_for(reader.read(), 2)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b'"msg":"Request not received in time."}')
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed_quietly(quick: UserStreamServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", quick.port)
    writer.write(b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 2)  # the answer, then EOF after the idle time
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\n{}")
    writer.close()


async def test_the_idle_time_runs_from_the_last_answer(quick: UserStreamServer) -> None:
    """Requests 0.1 s apart keep a connection open past the 0.2 s timeout (each answer starts
    it again); once they stop, it closes after the timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", quick.port)
    loop = asyncio.get_running_loop()
    for _ in range(5):
        writer.write(b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n{}"), 2)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        await asyncio.sleep(0.1)
    idle_from = loop.time() - 0.1
    assert await asyncio.wait_for(reader.read(), 2) == b""
    assert 0.15 <= loop.time() - idle_from <= 1.0
    writer.close()


async def test_a_websocket_is_not_subject_to_the_request_timeout(quick: UserStreamServer) -> None:
    async with websockets.connect(f"{quick.ws_url}/ws", ping_interval=None) as ws:
        await asyncio.sleep(0.4)
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        assert await asyncio.wait_for(ws.recv(), 2) == '{"result":[],"id":1}'


async def test_shutdown_closes_idle_keep_alive_connections(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "data") as harness:
        reader, writer = await asyncio.open_connection("127.0.0.1", harness.server.port)
        writer.write(b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n{}"), 2)
        assert head.startswith(b"HTTP/1.1 200 OK")
    # The server is closed: its idle keep-alive connection must not answer any more.
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
