"""HTTP/1.1 on one port, with the upgrade to WebSocket; parsing by httptools (llhttp).

Each TCP connection gets an `HttpProtocol`. Plain requests are answered in order by the
application's `handle_http`; an upgrade request is handed to `accept_websocket`, which returns
either a handler (the connection becomes a `WebSocketConnection`) or an HTTP response (e.g. 404
for an unknown stream path, 429 when the IP is over its weight).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Final, Protocol, cast

import httptools

from userstream.protocol import wsframes
from userstream.server.websocket import Flusher, WebSocketConnection, WebSocketHandler

log = logging.getLogger(__name__)

MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
# A request must arrive whole within this many seconds of the connection opening or of the
# previous answer; otherwise the connection is closed (408 if a request had begun). This is
# socket hygiene against slow-loris clients, not a protocol deadline, so it runs on the event
# loop's real clock rather than the injectable one.
REQUEST_TIMEOUT_S = 60.0
# Answers a connection has not read are bounded: past this many unsent bytes the server stops
# reading (and so stops parsing and answering) that connection's requests until the transport
# has drained below its low-water mark, so a client that pipelines requests and never reads
# costs a bounded amount of memory and CPU. One that stays stuck for the request timeout is
# aborted: like the request timeout, that is socket hygiene on the loop's real clock.
MAX_UNSENT_ANSWER_BYTES = 64 * 1024
# Likewise parsed requests waiting for their answers: past this many the server stops reading
# until they are answered (what one read already delivered is still parsed, so the bound is
# this plus one read's worth).
MAX_QUEUED_REQUESTS = 64
# A connection's queued requests are served for at most about this long (plus the request
# under way) before its worker yields the loop: other connections' requests, the timers
# (pings, market ticks) and new reads wait that long at most for one deep pipeline, and
# requests from several connections are served close to the order they arrived in.
TURN_BUDGET_S = 0.0005

# Header names as sent, lower-cased once: a client sends the same few names on every request
# (a publisher's Host, Content-Length, Authorization, Content-Type). Bounded, so a client
# inventing names cannot grow it; names past the bound are lower-cased each time.
MAX_KNOWN_HEADER_NAMES = 256
_HEADER_NAMES: dict[bytes, str] = {}

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    414: "URI Too Long",
    418: "I'm a teapot",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    client_ip: str


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b"{}"
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"

    def encode(self, keep_alive: bool) -> bytes:
        head = _status_head(self.status, self.content_type) + b"%d" % len(self.body) + date_line()
        if self.headers:
            head += "".join(f"\r\n{name}: {value}" for name, value in self.headers).encode(
                "latin-1"
            )
        if not keep_alive:
            head += b"\r\nConnection: close"
        return head + b"\r\n\r\n" + self.body


_date_second = -1
_date_line = b""


def date_line() -> bytes:
    """`\r\nDate: <IMF-fixdate>` for the current second, formatted once per second.

    Every answer carries Date (RFC 9110 §6.6.1: an origin server with a clock must send it;
    Binance sends it on every answer, trading spec §7). It is the real time the answer was
    made, as RFC 9110 defines it, also under `--clock virtual`, whose time is the venue's
    business time and is what `serverTime` reports.
    """
    global _date_second, _date_line
    second = int(time.time())
    if second != _date_second:
        _date_second = second
        _date_line = b"\r\nDate: " + formatdate(second, usegmt=True).encode("ascii")
    return _date_line


@functools.cache
def _status_head(status: int, content_type: str) -> bytes:
    """The status line and headers up to the Content-Length value, made once per pair (every
    published batch is answered: this runs once per admin request)."""
    reason = _REASONS.get(status, "Unknown")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: "
    ).encode("latin-1")


class HttpApp(Protocol):
    async def handle_http(self, request: Request) -> Response:
        """The answer to `request`. It runs in the `data_received` that parsed the request,
        outside any task, until it first waits (`HttpProtocol._serve`), so what needs a
        current task there (`asyncio.timeout`, `TaskGroup`, `current_task()`) must come
        after a wait or in a task of its own."""
        ...

    def accept_websocket(self, request: Request) -> WebSocketHandler | Response: ...

    def error_response(self, status: int, msg: str) -> Response: ...


class _CarriedOn(Coroutine[Any, Any, None]):
    """The rest of a coroutine whose first step ran outside any task, as a coroutine a task
    can run: its first step hands the task what the coroutine stopped at (a future, or None
    to yield the loop), and from then on it is the coroutine. A cancellation before that
    first step is thrown in where the coroutine waits, as it would be in its own task."""

    __slots__ = ("_coroutine", "_waiting_on")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on: Any = waiting_on

    def send(self, value: Any) -> Any:
        waiting_on = self._waiting_on
        if waiting_on is not _STEPPED:
            self._waiting_on = _STEPPED
            return waiting_on
        return self._coroutine.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._waiting_on = _STEPPED
        if val is None and tb is None:
            return self._coroutine.throw(typ)
        return self._coroutine.throw(typ, val, tb)  # pragma: no cover  (tasks throw one)

    def close(self) -> None:
        self._coroutine.close()

    def __await__(self) -> Generator[Any, Any, None]:
        raise TypeError("run it as a task's coroutine")


_STEPPED: Final = object()


class _RequestTooLarge(Exception):
    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


class HttpProtocol(asyncio.Protocol):
    def __init__(
        self,
        app: HttpApp,
        flusher: Flusher,
        max_body: int,
        max_message: int,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        connections: set[HttpProtocol] | None = None,
    ) -> None:
        self._app = app
        # The server's registry of open connections, so shutdown can close idle keep-alive
        # ones too (asyncio.Server.close() only stops listening).
        self._connections = connections if connections is not None else set()
        self._request_timeout_s = request_timeout_s
        self._flusher = flusher
        self._max_body = max_body
        self._max_message = max_message
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._client_ip = "?"
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._queue: deque[tuple[Request, bool]] = deque()
        # From the request that finds the queue idle until the queue is answered. The queue is
        # served in the `data_received` that parsed that request (a task per request would
        # cost a few µs each at half load, where requests arrive one at a time); only a
        # handler that has to wait hands the rest to `_worker`.
        self._serving = False
        self._serve_parsed = False
        self._inline = False  # while `_serve` answers outside any task
        self._worker: asyncio.Task[None] | None = None
        self._upgrade: Request | None = None
        self._websocket: WebSocketConnection | None = None
        self._closing = False
        self._rejection: bytes | None = None  # an error answer waiting behind queued requests
        # Answers to pipelined requests go out together, once per loop turn (`_answer`).
        self._answers: list[bytes] = []
        self._answers_size = 0
        # The request timeout runs from `_idle_since` (None while requests are being
        # answered). Its timer is not cancelled and re-armed per request: when it fires early
        # it is set again for the time left, so a busy connection pays for it once a period.
        self._timeout: asyncio.TimerHandle | None = None
        self._idle_since: float | None = None
        self._request_begun = False
        # Set while the transport's unsent answers are over its high-water mark.
        self._writing_paused = False
        self._reading_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._stuck: asyncio.TimerHandle | None = None
        # The loop this connection runs on, looked up once: on Python 3.11
        # `asyncio.get_running_loop()` is a `getpid` system call, and a keep-alive publisher
        # would pay it several times per request.
        self._loop: asyncio.AbstractEventLoop | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        self._transport.set_write_buffer_limits(high=MAX_UNSENT_ANSWER_BYTES)
        self._connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self._client_ip = str(peer[0])
        self._arm_timeout()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _arm_timeout(self) -> None:
        loop = self._running_loop()
        self._idle_since = loop.time()
        if self._timeout is None:
            self._timeout = loop.call_later(self._request_timeout_s, self._timed_out)

    def _disarm_timeout(self) -> None:
        self._idle_since = None

    def _timed_out(self) -> None:
        self._timeout = None
        idle_since = self._idle_since
        if self._transport is None or self._websocket is not None or idle_since is None:
            return  # (with requests being answered, the next `_arm_timeout` sets a timer)
        loop = self._running_loop()
        left = idle_since + self._request_timeout_s - loop.time()
        if left > 0:
            self._timeout = loop.call_later(left, self._timed_out)
            return
        if self._request_begun:
            self._reject(408, "Request not received in time.")
        else:
            self._closing = True
            self._write_answers()
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._websocket is not None:
            self._websocket.data_received(data)
            return
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            offset = int(upgrade.args[0]) if upgrade.args else len(data)
            self._begin_websocket(data[offset:])
        except httptools.HttpParserError as exc:
            # httptools never lets a callback's exception through: it raises
            # HttpParserCallbackError with the original as __context__. Our size limits
            # (414/431/413) are raised from callbacks, so look for them there.
            too_large = exc.__context__
            if isinstance(too_large, _RequestTooLarge):
                self._reject(too_large.status, too_large.msg)
            else:
                self._reject(400, f"Malformed HTTP request: {exc}")
        if self._serve_parsed:
            self._serve_parsed = False
            self._serve()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._disarm_timeout()
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self._unstick()
        if self._websocket is not None:
            self._websocket.connection_lost(exc)
        if self._worker is not None:
            self._worker.cancel()
        self._transport = None

    def shutdown(self) -> None:
        """Close an HTTP connection at server shutdown (WebSockets close through their
        sessions, with 1001); a request being answered is cut short."""
        if self._websocket is None and self._transport is not None:
            self._closing = True
            self._write_answers()
            self._transport.close()

    def pause_writing(self) -> None:
        if self._websocket is not None:
            self._websocket.pause_writing()
            return
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._writing_paused = True
        self._pace_reading()
        self._stuck = self._running_loop().call_later(self._request_timeout_s, self._stayed_stuck)

    def resume_writing(self) -> None:
        if self._websocket is not None:
            self._websocket.resume_writing()
            return
        self._unstick()
        self._pace_reading()

    def _pace_reading(self) -> None:
        """Read only while the client's answers leave and its queued requests are few."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        backlogged = self._writing_paused or len(self._queue) >= MAX_QUEUED_REQUESTS
        if backlogged != self._reading_paused:
            self._reading_paused = backlogged
            if backlogged:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _unstick(self) -> None:
        self._writing_paused = False
        if self._stuck is not None:
            self._stuck.cancel()
            self._stuck = None
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _stayed_stuck(self) -> None:
        """The client has not read its answers for the request timeout: drop them."""
        self._stuck = None
        if self._transport is not None:
            self._closing = True
            self._transport.abort()

    def queued_requests(self) -> int:
        """Requests parsed and waiting for their answers."""
        return len(self._queue)

    def buffered_bytes(self) -> int:
        """Bytes of answers this connection holds that the client has not read yet."""
        transport = self._transport
        unsent = transport.get_write_buffer_size() if transport is not None else 0
        return unsent + self._answers_size

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._request_begun = True
        self._url = b""
        self._headers = {}
        self._header_bytes = 0
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_URL_BYTES:
            raise _RequestTooLarge(414, f"URL longer than {MAX_URL_BYTES} bytes.")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES or len(self._headers) >= MAX_HEADERS:
            raise _RequestTooLarge(431, "Request headers too large.")
        key = _HEADER_NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
            if len(_HEADER_NAMES) < MAX_KNOWN_HEADER_NAMES:
                _HEADER_NAMES[name] = key
        self._headers[key] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._max_body:
            raise _RequestTooLarge(413, f"Request body larger than {self._max_body} bytes.")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._request_begun = False
        self._disarm_timeout()
        url = httptools.parse_url(self._url)
        path = url.path.decode("latin-1") if url.path else "/"
        query = url.query.decode("latin-1") if url.query else ""
        method = self._parser.get_method().decode("latin-1")
        request = Request(method, path, query, self._headers, b"".join(self._body), self._client_ip)
        if self._parser.should_upgrade():
            self._upgrade = request
            return
        self._queue.append((request, self._parser.should_keep_alive()))
        if len(self._queue) >= MAX_QUEUED_REQUESTS:
            self._pace_reading()
        if not self._serving:
            self._serving = self._serve_parsed = True

    # request handling

    def _serve(self) -> None:
        """Answer the queued requests now, as far as they go without waiting; a task carries
        on from where a handler has to wait."""
        serving = self._serve_queue()
        self._inline = True
        # Each request's events are flushed as it is answered (`_answer_queue`), and what is
        # left when this returns to the loop below: no flush needs scheduling meanwhile.
        self._flusher.hold()
        try:
            waiting_on = serving.send(None)
        except StopIteration:
            return
        except Exception:
            log.exception("serving the requests of %s failed", self._client_ip)
            return
        finally:
            self._flusher.release()
            self._inline = False
            # This read's answers leave in one write now: the end of the loop turn, which
            # `_answer` would otherwise wait for, brings nothing more for this connection.
            self._write_answers()
        self._worker = self._running_loop().create_task(_CarriedOn(serving, waiting_on))

    async def _serve_queue(self) -> None:
        try:
            await self._answer_queue()
        finally:
            self._serving = False

    async def _answer_queue(self) -> None:
        clock = time.perf_counter
        turn_ends = clock() + TURN_BUDGET_S
        while self._queue and self._transport is not None:
            if self._writing_paused:
                # Answer nothing more until the client has read what it was sent.
                self._drained = self._running_loop().create_future()
                await self._drained
                turn_ends = clock() + TURN_BUDGET_S
                continue
            request, keep_alive = self._queue.popleft()
            if self._reading_paused:
                self._pace_reading()
            try:
                response = await self._app.handle_http(request)
            except Exception:
                log.exception("unhandled error serving %s %s", request.method, request.path)
                response = self._app.error_response(500, "Internal error.")
            if self._transport is None:
                return
            data = response.encode(keep_alive)
            if request.method == "HEAD":
                # No body after a HEAD answer, or a keep-alive client reads it as the start
                # of the next response (RFC 9110 §9.3.2); Content-Length stays as it is.
                data = data[: len(data) - len(response.body)]
            self._answer(data)
            # The events this request published leave now, not after every request queued
            # behind it (or on other connections) in this loop turn has been served: at 50%
            # load that halves publish-to-receive latency (docs/benchmarks.md). A connection
            # still gets one write per request, however many events the request carried.
            self._flusher.flush_now()
            if not keep_alive:
                self._closing = True
                self._write_answers()
                self._transport.close()
                return
            if self._queue and clock() >= turn_ends:
                await asyncio.sleep(0)
                turn_ends = clock() + TURN_BUDGET_S
        if self._rejection is None and self._transport is not None and self._idle_since is None:
            self._arm_timeout()
        if self._rejection is not None and self._transport is not None:
            self._write_answers()
            self._transport.write(self._rejection)
            self._transport.close()

    def _answer(self, data: bytes) -> None:
        """Queue an answer; the loop writes this turn's answers in one `write` (or `_serve`
        does, once it has answered what one read brought). A pipelining client (a publisher,
        the benchmarks) saves a system call per request, and an answer still leaves as soon
        as its handler has to wait on something (the loop turn ends)."""
        if not self._answers and not self._inline:
            self._running_loop().call_soon(self._write_answers)
        self._answers.append(data)
        self._answers_size += len(data)
        if self._answers_size >= MAX_UNSENT_ANSWER_BYTES:
            # Hand them to the transport now, so its high-water mark can pause this
            # connection before the loop turn ends.
            self._write_answers()

    def _write_answers(self) -> None:
        answers, self._answers = self._answers, []
        self._answers_size = 0
        if answers and self._transport is not None:
            self._transport.write(answers[0] if len(answers) == 1 else b"".join(answers))

    def _reject(self, status: int, msg: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        log.info("rejected a request from %s: %d %s", self._client_ip, status, msg)
        self._closing = True
        response = self._app.error_response(status, msg)
        response.headers.extend(headers)
        rejection = response.encode(keep_alive=False)
        if self._serving:
            # Requests pipelined before the bad one are still being answered: answer them
            # first, in order, then this (RFC 9112 §9.3.2); `_serve_queue` writes it last.
            self._rejection = rejection
            return
        if self._transport is not None:
            self._write_answers()  # answers of this loop turn go first
            self._transport.write(rejection)
            self._transport.close()

    def _begin_websocket(self, rest: bytes) -> None:
        self._write_answers()  # answers of this loop turn go before the handshake's
        request, self._upgrade = self._upgrade, None
        transport = self._transport
        if request is None or transport is None:
            self._reject(400, "Malformed upgrade request.")
            return
        if self._queue or self._serving:
            self._reject(400, "Upgrade pipelined behind other requests.")
            return
        rejection = wsframes.check_handshake(request.method, request.headers)
        if rejection is not None:
            self._reject(rejection.status, rejection.msg, rejection.headers)
            return
        key = request.headers["sec-websocket-key"]
        if self._timeout is not None:  # a WebSocket has no request timeout
            self._timeout.cancel()
            self._timeout = None
        accepted = self._app.accept_websocket(request)
        if isinstance(accepted, Response):
            self._closing = True
            transport.write(accepted.encode(keep_alive=False))
            transport.close()
            return
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: "
            + wsframes.accept_key(key).encode("ascii")
            + date_line()
            + b"\r\n\r\n"
        )
        self._websocket = WebSocketConnection(
            transport, accepted, self._flusher, self._max_message, self._client_ip
        )
        self._websocket.open()
        if rest:
            self._websocket.data_received(rest)
