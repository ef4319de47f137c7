"""A dropped connection comes back before the key check, which still runs and still decides.

After an abnormal close (1006) on a key believed live, every request that delays the new
socket costs the events published meanwhile: the socket is reopened first, and the listenKey
is checked with a keepalive once it is open. A key that died while no socket listened is
still found and replaced, and a Retry-After or an IP ban the server announced still holds
back the redial.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tests.conftest import Harness, running_harness
from tests.functional.client.helpers import (
    MINUTE,
    RECV_TIMEOUT_S,
    advance,
    endpoints,
    leverage,
    make_stream,
    next_gap,
    next_item,
    number,
    settle,
    wait_for,
)
from tests.functional.client.relay import Relay
from userstream import (
    ConnectionState,
    Delivery,
    Endpoints,
    GapReason,
    Keepalive,
    StreamGap,
    UserDataStream,
)
from userstream.client.buffer import Item
from userstream.protocol.limits import WeightLimits

SERVER_LOGS = "userstream.server"
OPENED = "stream opened"
KEPT_ALIVE = "kept alive"


def via_relay(server: Harness, relay: Relay) -> Endpoints:
    """REST straight to the server, stream connections through `relay`."""
    direct = endpoints(server)
    return Endpoints(direct.rest_url, direct.ws_api_url, f"ws://127.0.0.1:{relay.port}")


def server_requests(caplog: pytest.LogCaptureFixture, since: int) -> list[str]:
    """What the server saw after record `since`, in order: stream openings and keepalives."""
    seen = []
    for record in caplog.records[since:]:
        message = record.getMessage()
        if record.name.startswith(SERVER_LOGS) and (OPENED in message or KEPT_ALIVE in message):
            seen.append(OPENED if OPENED in message else KEPT_ALIVE)
    return seen


def unannounced_losses(items: list[Item], published: int) -> list[int]:
    """Numbers missing from `items` with no StreamGap between their neighbours."""
    silent: list[int] = []
    last = 0
    gap_since_last = False
    for item in items:
        if isinstance(item, StreamGap):
            gap_since_last = True
            continue
        n = number(item)
        if not gap_since_last:
            silent.extend(range(last + 1, n))
        last, gap_since_last = n, False
    if not gap_since_last:
        silent.extend(range(last + 1, published + 1))
    return silent


async def reconnected_and_checked(
    stream: UserDataStream, caplog: pytest.LogCaptureFixture, reconnects: int, mark: int
) -> list[str]:
    """Wait for the reconnect and for the key check that still follows it; return what the
    server saw since record `mark`."""
    await wait_for(lambda: stream.health.reconnects == reconnects)
    await wait_for(lambda: KEPT_ALIVE in server_requests(caplog, mark))
    return server_requests(caplog, mark)


async def test_a_1006_drop_reopens_the_socket_before_the_key_check_and_announces_any_loss(
    server: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SERVER_LOGS)
    account = server.account()
    items: list[Item] = []
    published = 0
    async with make_stream(server, account) as stream:
        key = stream.listen_key
        for round_ in range(1, 4):
            # Events go out back to back; the drop lands in the middle of them.
            for _ in range(10):
                published += 1
                await server.publish(account, [leverage(published)])
            mark = len(caplog.records)
            status, body = await server.admin(
                "POST", "connections/drop", {"accountId": account.id, "code": 1006}
            )
            assert (status, body) == (200, {"dropped": 1})
            for _ in range(10):
                published += 1
                await server.publish(account, [leverage(published)])
            seen = await reconnected_and_checked(stream, caplog, round_, mark)
            assert seen.index(OPENED) < seen.index(KEPT_ALIVE), seen
        await settle()
        while stream.health.buffered:
            items.append(await next_item(stream))
        assert unannounced_losses(items, published) == []
        assert stream.listen_key == key
        health = stream.health
        assert (health.keys_issued, health.reconnects) == (1, 3)
        assert health.last_keepalive_ok is True


async def streams_open(server: Harness) -> int:
    _, stats = await server.admin("GET", "stats")
    return int(stats["connections"]["streams"])


async def test_a_drop_is_redialled_at_once_even_while_the_reader_waits_for_the_consumer(
    server: Harness,
) -> None:
    account = server.account()
    delivery = Delivery(reorder_window_ms=0, max_buffered=2)  # overflow="block"
    async with make_stream(server, account, delivery=delivery) as stream:
        await server.publish(account, [leverage(1), leverage(2), leverage(3)])
        await wait_for(lambda: stream.health.buffered == 2)  # full: the reader is parked
        status, body = await server.admin(
            "POST", "connections/drop", {"accountId": account.id, "code": 1006}
        )
        assert (status, body) == (200, {"dropped": 1})
        # The lost transport starts the redial, not the reader that will notice it only
        # once the consumer makes room: the new socket is up while nobody reads.
        async with asyncio.timeout(RECV_TIMEOUT_S):
            while await streams_open(server) != 1:
                await settle(1)
        assert stream.health.buffered == 2
        # Published while the consumer is still behind: they wait on the new socket.
        await server.publish(account, [leverage(4), leverage(5)])
        items: list[Item] = []
        while not items or isinstance(items[-1], StreamGap) or number(items[-1]) != 5:
            items.append(await next_item(stream))
        assert [number(i) for i in items if not isinstance(i, StreamGap)][-2:] == [4, 5]
        assert any(isinstance(i, StreamGap) for i in items)  # the drop is still announced
        assert unannounced_losses(items, 5) == []
        assert stream.health.reconnects == 1


class HalfCloser:
    """A WebSocket endpoint on 127.0.0.1 whose `close_first()` sends a close frame on the
    first connection and then never closes its TCP connection (the client's close timeout
    ends it). It records, for each handshake, whether that TCP connection was still open."""

    def __init__(self) -> None:
        self.first_open = False
        self.handshakes: list[bool] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def aclose(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def close_first(self) -> None:
        self._writers[0].write(b"\x88\x02\x03\xe8")  # close 1000; no TCP close after it

    def end_first(self) -> None:
        self._writers[0].close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        first = not self.handshakes
        self.handshakes.append(self.first_open)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        if first:
            self.first_open = True
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass  # the client's close frame, pings: never answered
        if first:
            self.first_open = False


WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


async def test_a_close_frame_starts_the_redial_before_the_tcp_connection_ends(
    server: Harness,
) -> None:
    account = server.account()
    half = HalfCloser()
    await half.start()
    direct = endpoints(server)
    ends = Endpoints(direct.rest_url, direct.ws_api_url, f"ws://127.0.0.1:{half.port}")
    try:
        async with make_stream(server, account, endpoints=ends) as stream:
            half.close_first()
            # The redial reaches the server while the closed connection's TCP is still up:
            # it starts from the close frame, not from the end of the closing handshake
            # (which a server that never closes its side would put off indefinitely).
            await wait_for(lambda: len(half.handshakes) == 2)
            assert half.handshakes == [False, True]
            half.end_first()
            assert (await next_gap(stream)).reason is GapReason.DISCONNECTED
            await wait_for(lambda: stream.health.reconnects == 1)
            assert len(half.handshakes) == 2  # the supervisor took the redial over
    finally:
        await half.aclose()


async def test_a_key_deleted_while_disconnected_is_found_and_replaced(
    server: Harness, relay: Relay
) -> None:
    account = server.account()
    async with make_stream(server, account, endpoints=via_relay(server, relay)) as stream:
        old = stream.listen_key
        await relay.cut()  # the socket is reset; new ones are refused for now
        assert (await next_gap(stream)).reason is GapReason.DISCONNECTED
        # Deleted while no socket listened for the listenKeyExpired that says so.
        async with server.http.delete(
            f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
        ) as response:
            assert response.status == 200
        relay.restore()
        async with asyncio.timeout(RECV_TIMEOUT_S):
            while stream.listen_key == old or stream.health.state is not ConnectionState.CONNECTED:
                await advance(server, 250)
        # The socket on the dead key was silent; the check that found it says so.
        assert (await next_gap(stream)).reason is GapReason.KEY_REJECTED
        await server.publish(account, [leverage(7)])
        assert number(await next_item(stream)) == 7
        health = stream.health
        assert health.keys_issued == 2
        assert health.last_reason is not None
        assert health.last_reason.startswith("key_rejected")


async def put_key(harness: Harness, api_key: str) -> int:
    async with harness.http.put(
        f"{harness.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}
    ) as response:
        return response.status


async def test_an_ip_ban_announced_to_the_keepalive_holds_back_the_redial(
    tmp_path: Path,
) -> None:
    limits = WeightLimits(per_minute=5)  # 1st-6th over-limit request: 429; 7th: 418
    async with running_harness(tmp_path / "data", weight_limits=limits) as harness:
        account = harness.account()
        interval = 30 * MINUTE
        options = {"keepalive": Keepalive(interval, ping_interval_s=None)}
        async with make_stream(harness, account, **options) as stream:
            await advance(harness, interval - 10_000)
            statuses = [await put_key(harness, account.api_key) for _ in range(12)]
            assert statuses[-1] == 418  # this IP is banned for 2 minutes
            await advance(harness, 10_000, step_ms=1_000)  # the keepalive: 418
            await wait_for(lambda: stream.health.last_keepalive_ok is False)
            error = stream.health.last_keepalive_error
            assert error is not None
            assert "banned" in error
            status, _ = await harness.admin("POST", "connections/drop", {"accountId": account.id})
            assert status == 200
            assert (await next_gap(stream)).reason is GapReason.DISCONNECTED
            await advance(harness, 100_000, step_ms=5_000)  # the ban has ~110 s left
            _, stats = await harness.admin("GET", "stats")
            assert stats["connections"]["streams"] == 0
            async with asyncio.timeout(RECV_TIMEOUT_S):
                while stream.health.state is not ConnectionState.CONNECTED:
                    await advance(harness, 5_000)
            await harness.publish(account, [leverage(3)])
            assert number(await next_item(stream)) == 3


# --- a stream handshake refused with 429 and Retry-After ----------------------------------


class Refuser:
    """A WebSocket server on 127.0.0.1 that answers every handshake 429 Retry-After: 30."""

    def __init__(self) -> None:
        self.attempts = 0
        self._server: Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _refuse(self, connection: ServerConnection, request: Request) -> Response:
        self.attempts += 1
        headers = Headers([("Retry-After", "30"), ("Content-Type", "application/json")])
        body = b'{"code":-1003,"msg":"Too many requests."}'
        return Response(429, "Too Many Requests", headers, body)

    async def _handler(self, connection: ServerConnection) -> None:
        raise AssertionError("no handshake is accepted")


@asynccontextmanager
async def refuser() -> AsyncIterator[Refuser]:
    refusing = Refuser()
    async with serve(refusing._handler, "127.0.0.1", 0, process_request=refusing._refuse) as srv:
        refusing._server = srv
        yield refusing


async def test_a_handshake_refused_with_retry_after_is_not_retried_sooner(
    server: Harness, relay: Relay
) -> None:
    account = server.account()
    stream = make_stream(server, account, endpoints=via_relay(server, relay))
    async with refuser() as busy, stream:
        await relay.retarget(busy.port)  # drops the socket; redials reach the refuser
        assert (await next_gap(stream)).reason is GapReason.DISCONNECTED
        await wait_for(lambda: busy.attempts == 1)
        await advance(server, 29_000, step_ms=1_000)
        assert busy.attempts == 1  # Retry-After: 30 s
        await relay.retarget(server.server.port)
        async with asyncio.timeout(RECV_TIMEOUT_S):
            while stream.health.state is not ConnectionState.CONNECTED:
                await advance(server, 1_000)
        await server.publish(account, [leverage(4)])
        assert number(await next_item(stream)) == 4
