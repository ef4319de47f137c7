"""`HttpProtocol` answers pipelined requests together, once per loop turn, and never lets a
later error or handshake overtake answers still waiting for that turn to end."""

from __future__ import annotations

import asyncio
import time

from userstream.server.http import TURN_BUDGET_S, HttpProtocol, Request, Response
from userstream.server.websocket import Flusher, WebSocketHandler

PING = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
HEAVY = b"GET /heavy HTTP/1.1\r\nHost: x\r\n\r\n"
WAIT = b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"


def _busy(seconds: float) -> None:
    """Hold the loop as a CPU-bound handler does."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


class _Outbox:
    """Stands in for a stream connection: records how many requests were served each time
    the flusher writes it."""

    def __init__(self, app: _App) -> None:
        self.app = app
        self.flushed_at: list[int] = []

    def flush(self) -> None:
        self.flushed_at.append(len(self.app.served))


class _App:
    def __init__(self) -> None:
        self.served: list[str] = []
        self.flusher = Flusher()
        self.outbox = _Outbox(self)
        self.gate: asyncio.Future[None] | None = None
        self.cancelled = 0

    async def handle_http(self, request: Request) -> Response:
        if request.path == "/wait":
            self.gate = asyncio.get_running_loop().create_future()
            try:
                await self.gate  # e.g. a listenKey written through to the bus
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if request.path == "/heavy":
            _busy(2 * TURN_BUDGET_S)  # CPU-bound work (an intake) longer than a turn's
        self.served.append(request.path)
        self.flusher.mark(self.outbox)  # type: ignore[arg-type]  # an event for a stream
        return Response(200, b'{"n":%d}' % len(self.served))

    def accept_websocket(self, request: Request) -> WebSocketHandler | Response:
        return Response(404, b"{}")

    def error_response(self, status: int, msg: str) -> Response:
        return Response(status, b'{"msg":"bad"}')


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


def _protocol(app: _App | None = None) -> tuple[HttpProtocol, _Transport, _App]:
    app = app or _App()
    protocol = HttpProtocol(app, app.flusher, max_body=1024, max_message=1024)
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport, app


async def test_a_pipeline_is_answered_in_one_write() -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(PING * 5)
    for _ in range(3):
        await asyncio.sleep(0)
    assert app.served == ["/ping"] * 5
    assert len(transport.writes) == 1
    assert [transport.writes[0].count(b'{"n":%d}' % n) for n in range(1, 6)] == [1] * 5
    protocol.connection_lost(None)


async def test_an_error_right_after_a_pipeline_waits_for_its_answers() -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(PING * 3)
    # The pipeline is served (in `data_received`, or by a worker when answers wait for the
    # turn's end); then garbage arrives.
    await asyncio.sleep(0)
    assert app.served == ["/ping"] * 3
    protocol.data_received(b"\x00\x01GARBAGE\r\n\r\n")
    out = b"".join(transport.writes)
    assert out.count(b"HTTP/1.1 200") == 3
    assert out.index(b"HTTP/1.1 400") > out.rindex(b"HTTP/1.1 200")
    assert transport.closed
    protocol.connection_lost(None)


async def test_each_requests_events_leave_before_the_next_request_is_served() -> None:
    protocol, _transport, app = _protocol()
    protocol.data_received(PING * 3)
    for _ in range(3):
        await asyncio.sleep(0)
    assert app.outbox.flushed_at == [1, 2, 3]
    protocol.connection_lost(None)


async def test_a_deep_pipeline_takes_turns_with_a_bystander() -> None:
    """Requests that each outlast a turn's budget are served one per loop turn, so another
    connection's request waits for about one of them, not for the whole pipeline."""
    pipeline, _, app = _protocol()
    bystander, answers, _ = _protocol(app)
    pipeline.data_received(HEAVY * 20)
    bystander.data_received(PING)
    for _ in range(100):  # each heavy request takes one loop turn
        await asyncio.sleep(0)
    assert app.served.index("/ping") <= 2
    assert app.served.count("/heavy") == 20
    await asyncio.sleep(0)
    assert b"".join(answers.writes).count(b"HTTP/1.1 200") == 1
    pipeline.connection_lost(None)
    bystander.connection_lost(None)


async def test_a_handler_that_waits_holds_the_requests_behind_it() -> None:
    """Requests are served in `data_received` until one has to wait; a task carries on from
    there, in order, and the next request after the queue ran empty is served again."""
    protocol, transport, app = _protocol()
    protocol.data_received(WAIT + PING)
    assert app.served == []
    assert app.gate is not None
    app.gate.set_result(None)
    for _ in range(5):  # the wake-up, and a turn after the wait outlasted the budget
        await asyncio.sleep(0)
    assert app.served == ["/wait", "/ping"]
    protocol.data_received(PING)
    assert app.served == ["/wait", "/ping", "/ping"]
    await asyncio.sleep(0)
    out = b"".join(transport.writes)
    assert [out.index(b'{"n":%d}' % n) for n in (1, 2, 3)] == sorted(
        out.index(b'{"n":%d}' % n) for n in (1, 2, 3)
    )
    protocol.connection_lost(None)


async def test_a_waiting_handler_gets_an_error_it_awaited() -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(WAIT + PING)
    assert app.gate is not None
    app.gate.set_exception(RuntimeError("the store failed"))
    for _ in range(5):  # the wake-up, and a turn after the wait outlasted the budget
        await asyncio.sleep(0)
    out = b"".join(transport.writes)
    assert out.startswith(b"HTTP/1.1 500 ")  # the handler's error, answered as before
    assert out.count(b"HTTP/1.1 200") == 1
    assert app.served == ["/ping"]
    protocol.connection_lost(None)


async def test_a_lost_connection_cancels_a_waiting_handler() -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(WAIT + PING)
    protocol.connection_lost(None)  # before its task has taken a step
    await asyncio.sleep(0)
    assert app.cancelled == 1
    assert app.served == []
    assert transport.writes == []


async def test_a_lost_connection_cancels_the_wait_of_a_running_handler() -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(WAIT + PING)
    await asyncio.sleep(0)  # the task waits on the gate now
    gate = app.gate
    assert gate is not None
    protocol.connection_lost(None)
    await asyncio.sleep(0)
    assert gate.cancelled()
    assert app.cancelled == 1
    assert app.served == []
    assert transport.writes == []
