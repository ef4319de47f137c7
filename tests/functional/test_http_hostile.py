"""Hostile HTTP over raw sockets, and the admin API's token check.

Each hostile request gets an exact answer; afterwards the server must still answer a normal
request on a new connection, and a stream connection opened before the attack must still
receive, in order and with nothing lost, an event published after it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN_TOKEN, START_MS, Harness, running_harness
from userstream.accounts import Account
from userstream.protocol.limits import WeightLimits
from userstream.server.http import MAX_QUEUED_REQUESTS, MAX_UNSENT_ANSWER_BYTES

MAX_BODY = 256
WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3 sample
JSON = "application/json"
MALFORMED = "Malformed HTTP request: "
NOT_FOUND = {"code": -1099, "msg": "Not found, unauthenticated, or unauthorized."}
UNAUTHORIZED = {"code": -1002, "msg": "You are not authorized to execute this request."}
BAD_UPGRADE = {"code": -1130, "msg": "Invalid WebSocket upgrade request."}
BAD_VERSION = {"code": -1130, "msg": "Unsupported WebSocket version."}


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        values = self.headers[name.lower()]
        assert len(values) == 1, (name, values)
        return values[0]

    def json(self) -> Any:
        return json.loads(self.body)


def parse_responses(raw: bytes, *, bodies: bool = True) -> list[RawResponse]:
    """Split a byte stream into HTTP/1.1 responses framed by Content-Length."""
    responses = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {raw!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, status, reason = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers: dict[str, list[str]] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            assert colon, line
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        length = int(headers["content-length"][0]) if bodies else 0
        assert len(rest) >= length, f"short body: {raw!r}"
        responses.append(RawResponse(int(status), reason, headers, rest[:length]))
        raw = rest[length:]
    return responses


async def exchange(port: int, *chunks: bytes, pause: float = 0.0) -> bytes:
    """Send `chunks` on a new connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


async def one_response(port: int, request: bytes) -> RawResponse:
    responses = parse_responses(await exchange(port, request))
    assert len(responses) == 1, responses
    return responses[0]


def assert_error_shape(response: RawResponse, *, closes: bool = True) -> None:
    assert response.header("Content-Type") == JSON
    assert int(response.header("Content-Length")) == len(response.body)
    if closes:
        assert response.header("Connection") == "close"


@dataclass
class Watcher:
    """A stream connection opened before the attack, and the event count it has seen."""

    h: Harness
    account: Account
    ws: aiohttp.ClientWebSocketResponse
    sent: int = 0

    async def publish_and_receive(self) -> None:
        self.sent += 1
        leverage = self.sent
        await self.h.publish(
            self.account, {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "BTCUSDT", "l": leverage}}
        )
        message = await self.ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        event = json.loads(message.data)
        assert event == {
            "e": "ACCOUNT_CONFIG_UPDATE",
            "E": self.h.clock.now_ms(),
            "T": self.h.clock.now_ms(),
            "ac": {"s": "BTCUSDT", "l": leverage},
        }


async def assert_still_serving(w: Watcher) -> None:
    """A normal request on a new connection works, and the open stream gets the next event."""
    response = await one_response(
        w.h.server.port, b"GET /fapi/v1/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert response.status == 200
    assert response.json() == {"serverTime": w.h.clock.now_ms()}
    assert await w.h.server.accounts.by_id(w.account.id) == w.account
    await w.publish_and_receive()
    assert w.ws.closed is False


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    """The conftest `server`, with a small body limit."""
    async with running_harness(tmp_path / "data", max_body_bytes=MAX_BODY) as harness:
        yield harness


@pytest.fixture
async def watcher(h: Harness) -> AsyncIterator[Watcher]:
    account = h.account("watcher")
    key = await h.listen_key(account)
    ws = await h.http.ws_connect(f"{h.ws}/ws/{key}", autoping=False)
    w = Watcher(h, account, ws)
    await w.publish_and_receive()
    yield w
    await ws.close()


def _get(target: bytes, *headers: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in headers)


def _upgrade(target: bytes, *, key: bytes = WS_KEY, version: bytes = b"13") -> bytes:
    lines = [
        b"GET " + target + b" HTTP/1.1",
        b"Host: x",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Version: " + version,
    ]
    if key:
        lines.append(b"Sec-WebSocket-Key: " + key)
    return b"\r\n".join(lines) + b"\r\n\r\n"


# (request, status, exact body or a message prefix for parser errors)
HOSTILE: dict[str, tuple[bytes, int, dict[str, object] | str]] = {
    "no-target": (b"GET\r\n\r\n", 400, MALFORMED),
    "bad-version": (b"GET /fapi/v1/ping HTTP/9.9\r\n\r\n", 400, MALFORMED),
    "lowercase-method": (b"get /fapi/v1/ping HTTP/1.1\r\n\r\n", 400, MALFORMED),
    "unknown-method": (b"BREW /fapi/v1/ping HTTP/1.1\r\n\r\n", 400, MALFORMED),
    "lf-only": (b"GET /fapi/v1/ping HTTP/1.1\nHost: x\n\n", 400, MALFORMED),
    "tls-client-hello": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),
        400,
        MALFORMED,
    ),
    "garbage": (bytes(range(255, -1, -1)) * 4, 400, MALFORMED),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, MALFORMED),
    "nul-in-path": (b"GET /fapi/v1/ping\x00 HTTP/1.1\r\n\r\n", 400, MALFORMED),
    "nul-in-header-value": (_get(b"/fapi/v1/ping", b"X-A: a\x00b") + b"\r\n", 400, MALFORMED),
    "nul-in-header-name": (_get(b"/fapi/v1/ping", b"X-\x00A: b") + b"\r\n", 400, MALFORMED),
    "space-in-header-name": (_get(b"/fapi/v1/ping", b"X Bad: 1") + b"\r\n", 400, MALFORMED),
    "obs-fold": (_get(b"/fapi/v1/ping", b"X-A: 1", b"  folded") + b"\r\n", 400, MALFORMED),
    "utf8-in-path": (_get("/fapi/v1/pïng".encode()) + b"\r\n", 400, MALFORMED),
    "header-too-large": (
        _get(b"/fapi/v1/ping", b"X-Big: " + b"a" * 40_000) + b"\r\n",
        431,
        {"code": -1130, "msg": "Request headers too large."},
    ),
    "too-many-headers": (
        _get(b"/fapi/v1/ping", *(b"X-%d: 1" % i for i in range(150))) + b"\r\n",
        431,
        {"code": -1130, "msg": "Request headers too large."},
    ),
    "url-too-long": (
        _get(b"/fapi/v1/ping?" + b"a" * 9_000) + b"\r\n",
        414,
        {"code": -1130, "msg": "URL longer than 8192 bytes."},
    ),
    "path-too-long": (
        _get(b"/fapi/" + b"v" * 9_000) + b"\r\n",
        414,
        {"code": -1130, "msg": "URL longer than 8192 bytes."},
    ),
    "body-too-large": (
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n"
        + b"a" * 1024,
        413,
        {"code": -1130, "msg": f"Request body larger than {MAX_BODY} bytes."},
    ),
    "chunked-body-too-large": (
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"40\r\n" + b"b" * 64 + b"\r\n" for _ in range(8))
        + b"0\r\n\r\n",
        413,
        {"code": -1130, "msg": f"Request body larger than {MAX_BODY} bytes."},
    ),
    "bad-chunk-size": (
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nhello\r\n0\r\n\r\n",
        400,
        MALFORMED,
    ),
    "content-length-and-chunked": (
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        MALFORMED,
    ),
    "duplicate-content-length": (
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Content-Length: 6\r\n\r\nhello!",
        400,
        MALFORMED,
    ),
    "negative-content-length": (
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        400,
        MALFORMED,
    ),
    "ws-short-key": (_upgrade(b"/ws/abc", key=b"c2hvcnQ="), 400, BAD_UPGRADE),
    "ws-key-not-base64": (_upgrade(b"/ws/abc", key=b"!!!!!!!!!!!!!!!!!!!!!!!="), 400, BAD_UPGRADE),
    "ws-no-key": (_upgrade(b"/ws/abc", key=b""), 400, BAD_UPGRADE),
    "ws-version-8": (_upgrade(b"/ws/abc", version=b"8"), 426, BAD_VERSION),
    "ws-version-list": (_upgrade(b"/private/ws", version=b"13, 8"), 426, BAD_VERSION),
    "ws-api-bad-key": (_upgrade(b"/ws-fapi/v1", key=b"x"), 400, BAD_UPGRADE),
    "ws-post": (
        _upgrade(b"/ws/abc").replace(b"GET ", b"POST ", 1),
        400,
        BAD_UPGRADE,
    ),
    "ws-unknown-route": (_upgrade(b"/ws/a/b/c"), 404, NOT_FOUND),
    "ws-nul-in-route": (_upgrade(b"/ws/%00"), 404, NOT_FOUND),
    "ws-traversal-to-admin": (_upgrade(b"/ws/../admin/v1/stats"), 404, NOT_FOUND),
    "ws-upgrade-on-admin": (_upgrade(b"/admin/v1/stats"), 404, NOT_FOUND),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_request_gets_an_exact_answer_and_nothing_else_breaks(
    h: Harness, watcher: Watcher, case: str
) -> None:
    request, status, expected = HOSTILE[case]
    response = await one_response(h.server.port, request)
    assert response.status == status, response
    assert_error_shape(response)
    if isinstance(expected, str):
        body = response.json()
        assert body["code"] == -1130
        assert body["msg"].startswith(expected), body
        assert set(body) == {"code", "msg"}
    else:
        assert response.json() == expected
    assert "x-mbx-used-weight-1m" not in response.headers  # refused before any route
    await assert_still_serving(watcher)


async def test_every_hostile_request_in_a_row_on_one_server(h: Harness, watcher: Watcher) -> None:
    for request, status, _ in HOSTILE.values():
        assert (await one_response(h.server.port, request)).status == status
    await assert_still_serving(watcher)
    stats = await h.admin("GET", "stats")
    assert stats[1]["connections"]["streams"] == 1


# --- pipelining, keep-alive, chunked --------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order(h: Harness, watcher: Watcher) -> None:
    account = h.account()
    raw = await exchange(
        h.server.port,
        b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: "
        + account.api_key.encode()
        + b"\r\nContent-Length: 0\r\n\r\n"
        b"GET /fapi/v1/nope HTTP/1.1\r\nHost: x\r\n\r\n"
        b"PUT /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: "
        + account.api_key.encode()
        + b"\r\nContent-Length: 0\r\n\r\n"
        b"GET /fapi/v1/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [200, 200, 404, 200, 200]
    # The watcher's POST cost 1 before this connection.
    assert [r.header("X-MBX-USED-WEIGHT-1M") for r in responses] == ["2", "3", "4", "5", "6"]
    assert responses[0].body == b"{}"
    key = responses[1].json()["listenKey"]
    assert responses[2].json() == NOT_FOUND
    assert responses[3].json() == {"listenKey": key}
    assert responses[4].json() == {"serverTime": START_MS}
    assert [("connection" in r.headers) for r in responses] == [False] * 4 + [True]
    await assert_still_serving(watcher)


async def test_pipelined_good_request_then_garbage(h: Harness, watcher: Watcher) -> None:
    """The valid request is answered before the 400 for the garbage behind it."""
    raw = await exchange(
        h.server.port,
        b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /fapi/v1/time HTTP/1.1\r\nHost: x\r\n\r\n"
        b"\x00\x01GARBAGE\r\n\r\n",
    )
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [200, 200, 400]
    assert responses[0].body == b"{}"
    assert responses[1].json() == {"serverTime": START_MS}
    assert responses[2].json()["msg"].startswith(MALFORMED)
    assert responses[2].header("Connection") == "close"
    await assert_still_serving(watcher)


async def test_pipelined_answers_leave_before_an_error_sent_right_after_them(
    h: Harness, watcher: Watcher
) -> None:
    """Answers to a pipeline leave together at the end of the loop turn; garbage arriving in
    the next segment, possibly before that, is still answered after all of them."""
    raw = await exchange(
        h.server.port,
        b"GET /fapi/v1/time HTTP/1.1\r\nHost: x\r\n\r\n" * 40,
        b"\x00\x01GARBAGE\r\n\r\n",
    )
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [200] * 40 + [400]
    assert all(r.json() == {"serverTime": START_MS} for r in responses[:40])
    await assert_still_serving(watcher)


async def test_pipelined_good_request_then_oversized_body(h: Harness, watcher: Watcher) -> None:
    raw = await exchange(
        h.server.port,
        b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n" + b"z" * 300,
    )
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [200, 413]
    await assert_still_serving(watcher)


async def test_upgrade_pipelined_behind_a_request_is_refused_after_it(
    h: Harness, watcher: Watcher
) -> None:
    raw = await exchange(
        h.server.port,
        b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n" + _upgrade(b"/ws/abc"),
    )
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [200, 400]
    assert responses[1].json() == {
        "code": -1130,
        "msg": "Upgrade pipelined behind other requests.",
    }
    await assert_still_serving(watcher)


async def test_connection_close_is_honoured(h: Harness, watcher: Watcher) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", h.server.port)
    try:
        # Keep-alive by default: two requests, one at a time, on one connection.
        for expected_weight in (b"2", b"3"):
            writer.write(b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"\r\nX-MBX-USED-WEIGHT-1M: " + expected_weight + b"\r\n" in head
            assert b"Connection:" not in head
            assert await asyncio.wait_for(reader.readexactly(2), 5) == b"{}"
        # Then Connection: close: answered, then the server closes, with the socket left
        # open on our side and a request after it ignored.
        writer.write(
            b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            b"GET /fapi/v1/time HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        rest = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    (response,) = parse_responses(rest)
    assert response.status == 200
    assert response.header("Connection") == "close"
    assert response.body == b"{}"
    await assert_still_serving(watcher)


async def test_http_1_0_closes_unless_keep_alive(h: Harness, watcher: Watcher) -> None:
    response = await one_response(h.server.port, b"GET /fapi/v1/ping HTTP/1.0\r\n\r\n")
    assert response.status == 200
    assert response.header("Connection") == "close"
    await assert_still_serving(watcher)


async def test_chunked_body_is_accepted(h: Harness, watcher: Watcher) -> None:
    account = h.account()
    body = f"listenKey={'k' * 64}&timestamp={START_MS}&recvWindow=5000&signature=abc".encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7)
    )
    head = (
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: "
        + account.api_key.encode()
        + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    # Sent in pieces, split inside chunk headers, as a slow client would.
    payload = head + chunks + b"0\r\n\r\n"
    pieces = [payload[i : i + 11] for i in range(0, len(payload), 11)]
    responses = parse_responses(await exchange(h.server.port, *pieces, pause=0.001))
    assert len(responses) == 1
    assert responses[0].status == 200
    key = responses[0].json()["listenKey"]
    record = h.server.key_store.active(account.id, START_MS)
    assert record is not None
    assert key == record.key
    await assert_still_serving(watcher)


async def test_request_split_byte_by_byte(h: Harness, watcher: Watcher) -> None:
    request = b"GET /fapi/v1/time?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw = await exchange(h.server.port, *(request[i : i + 1] for i in range(len(request))))
    (response,) = parse_responses(raw)
    assert response.json() == {"serverTime": START_MS}
    await assert_still_serving(watcher)


async def test_head_answer_has_no_body(h: Harness, watcher: Watcher) -> None:
    raw = await exchange(
        h.server.port,
        b"HEAD /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep
    assert head.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    (after,) = parse_responses(rest)
    assert (after.status, after.body) == (200, b"{}")
    await assert_still_serving(watcher)


async def test_non_utf8_form_body_is_ignored(h: Harness, watcher: Watcher) -> None:
    account = h.account()
    body = b"listenKey=\xff\xfe&timestamp=\xc3\x28&\x00=\x80"
    response = await one_response(
        h.server.port,
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: "
        + account.api_key.encode()
        + b"\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body,
    )
    assert response.status == 200
    assert len(response.json()["listenKey"]) == 64
    await assert_still_serving(watcher)


async def test_body_exactly_at_the_limit_is_accepted(h: Harness, watcher: Watcher) -> None:
    account = h.account()
    body = b"a" * MAX_BODY
    response = await one_response(
        h.server.port,
        b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: "
        + account.api_key.encode()
        + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        + body,
    )
    assert response.status == 200
    await assert_still_serving(watcher)


@pytest.mark.parametrize(
    "target",
    [
        b"/fapi/v1/../admin/v1/stats",
        b"/fapi/v1/../../admin/v1/stats",
        b"/fapi/v1/%2e%2e/%2e%2e/admin/v1/stats",
        b"/fapi/v1/..%2f..%2fadmin/v1/stats",
        b"//admin/v1/stats",
        b"/./admin/v1/stats",
        b"/%61dmin/v1/stats",
        b"/ADMIN/v1/stats",
    ],
)
async def test_path_traversal_does_not_reach_admin(
    h: Harness, watcher: Watcher, target: bytes
) -> None:
    # Even with a valid token: these paths are not admin paths.
    response = await one_response(
        h.server.port,
        _get(target, b"Authorization: Bearer " + ADMIN_TOKEN.encode(), b"Connection: close")
        + b"\r\n",
    )
    assert response.status == 404
    assert response.json() == NOT_FOUND
    assert response.header("X-MBX-USED-WEIGHT-1M").isdigit()  # answered by the REST side
    await assert_still_serving(watcher)


async def test_percent_encoded_nul_in_rest_path_is_404(h: Harness, watcher: Watcher) -> None:
    response = await one_response(
        h.server.port, _get(b"/fapi/v1/ping%00", b"Connection: close") + b"\r\n"
    )
    assert response.status == 404
    assert response.json() == NOT_FOUND
    await assert_still_serving(watcher)


# --- admin token ----------------------------------------------------------------------------

ADMIN_ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "accounts", {"name": "intruder"}),
    ("POST", "accounts/{account}/events", {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "X", "l": 1}}),
    ("GET", "clock", None),
    ("POST", "clock/advance", {"ms": 3_600_000}),
    ("POST", "connections/drop", {}),
    ("POST", "listenKeys/{key}/expire", None),
    ("GET", "stats", None),
    ("GET", "no/such/route", None),
    ("DELETE", "stats", None),
]

BAD_AUTH: dict[str, dict[str, str]] = {
    "missing": {},
    "empty": {"Authorization": ""},
    "basic-scheme": {"Authorization": f"Basic {ADMIN_TOKEN}"},
    "token-scheme": {"Authorization": f"Token {ADMIN_TOKEN}"},
    "no-scheme": {"Authorization": ADMIN_TOKEN},
    "bearer-only": {"Authorization": "Bearer"},
    "bearer-empty": {"Authorization": "Bearer "},
    "wrong-token": {"Authorization": "Bearer not-the-token"},
    "token-prefix": {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    "token-extended": {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    "token-uppercase": {"Authorization": f"Bearer {ADMIN_TOKEN.upper()}"},
    "token-in-other-header": {"X-Admin-Token": ADMIN_TOKEN, "X-MBX-APIKEY": ADMIN_TOKEN},
}


@pytest.mark.parametrize("auth", list(BAD_AUTH))
async def test_admin_routes_refuse_a_bad_token(h: Harness, watcher: Watcher, auth: str) -> None:
    key = await h.listen_key(watcher.account)
    clock_before = h.clock.now_ms()
    accounts_before = len(h.server.accounts)
    for method, path, body in ADMIN_ROUTES:
        url = f"{h.url}/admin/v1/" + path.format(account=watcher.account.id, key=key)
        async with h.http.request(method, url, json=body, headers=BAD_AUTH[auth]) as response:
            assert response.status == 401, (method, path)
            assert response.headers["Content-Type"] == JSON
            assert await response.json() == UNAUTHORIZED, (method, path)
    # Nothing happened: no account, no time travel, key alive, stream still connected.
    assert len(h.server.accounts) == accounts_before
    assert h.clock.now_ms() == clock_before
    assert h.server.key_store.active(watcher.account.id, h.clock.now_ms()) is not None
    await assert_still_serving(watcher)


async def test_admin_token_in_query_does_not_authenticate(h: Harness, watcher: Watcher) -> None:
    async with h.http.get(f"{h.url}/admin/v1/stats?token={ADMIN_TOKEN}") as response:
        assert response.status == 401
        assert await response.json() == UNAUTHORIZED
    await assert_still_serving(watcher)


async def test_admin_prefix_itself_requires_the_token(h: Harness) -> None:
    async with h.http.get(f"{h.url}/admin/v1") as response:
        assert response.status == 401
        assert await response.json() == UNAUTHORIZED


async def test_admin_routes_accept_the_right_token(h: Harness, watcher: Watcher) -> None:
    """The positive control for the refusals above: same routes, right token."""
    assert (await h.admin("GET", "stats"))[0] == 200
    assert (await h.admin("GET", "clock"))[0] == 200
    status, body = await h.admin("POST", "accounts", {"name": "ok"})
    assert status == 200
    assert set(body) == {"accountId", "apiKey", "secretKey"}
    headers = {"Authorization": f"bearer {ADMIN_TOKEN}"}  # the scheme is case-insensitive
    async with h.http.get(f"{h.url}/admin/v1/stats", headers=headers) as response:
        assert response.status == 200
    await assert_still_serving(watcher)


@pytest.mark.parametrize(
    "account_id", ["99999999999999999999999", "9223372036854775808", "-1", "1e3"]
)
async def test_admin_events_for_an_impossible_account_id_is_404(
    h: Harness, watcher: Watcher, account_id: str
) -> None:
    status, body = await h.admin(
        "POST",
        f"accounts/{account_id}/events",
        {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "BTCUSDT", "l": 1}},
    )
    assert (status, body) == (404, {"code": -1099, "msg": f"No account {account_id!r}."})
    await assert_still_serving(watcher)


PING = b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
PING_ANSWERED = b"\r\n\r\n{}"


async def _non_reading_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client whose receive buffer is small, so the answers it never reads stay on the
    server's side instead of in the kernel's."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock)


@pytest.fixture
async def bounded(tmp_path: Path) -> AsyncIterator[Harness]:
    """A server whose IP weight does not stop a flood, and that gives a stuck client 1 s."""
    async with running_harness(
        tmp_path / "data",
        weight_limits=WeightLimits(per_minute=10**9),
        request_timeout_s=1.0,
    ) as harness:
        yield harness


async def test_a_pipelining_client_that_never_reads_is_bounded_and_others_stay_fast(
    bounded: Harness,
) -> None:
    """50,000 pipelined pings, never read: the server holds a bounded amount of unsent
    answers and queued requests for that connection, a bystander's pings are all answered
    while it lasts, and the stuck connection is closed after the request timeout."""
    port = bounded.server.port
    connections = bounded.server._http_connections
    _, attacker = await _non_reading_connection(port)
    attacker.write(PING * 50_000)
    for _ in range(500):  # until the server has accepted it
        if connections:
            break
        await asyncio.sleep(0.01)
    (stuck,) = connections
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    worst_buffered = worst_queued = 0
    try:
        for _ in range(200):
            writer.write(PING)
            async with asyncio.timeout(1.0):  # generous: each answer, while the attack runs
                await reader.readuntil(PING_ANSWERED)
            for connection in connections:
                worst_buffered = max(worst_buffered, connection.buffered_bytes())
                worst_queued = max(worst_queued, connection.queued_requests())
        # Bounds: the transport's high-water mark plus one batch of answers, and one read's
        # worth of pings (256 KiB / 39 bytes) on top of the queue bound.
        assert worst_buffered <= 4 * MAX_UNSENT_ANSWER_BYTES
        assert worst_queued <= MAX_QUEUED_REQUESTS + 256 * 1024 // len(PING)
        async with asyncio.timeout(5):
            while stuck in connections:  # aborted after the 1 s request timeout
                writer.write(PING)  # while the bystander, answered each time, stays
                async with asyncio.timeout(1.0):
                    await reader.readuntil(PING_ANSWERED)
                await asyncio.sleep(0.05)
    finally:
        attacker.transport.abort()
        writer.close()


async def test_a_pipelining_client_that_reads_slowly_gets_every_answer(bounded: Harness) -> None:
    """Paused reading resumes as the client drains its answers: nothing is lost or reordered."""
    count = 20_000
    reader, writer = await _non_reading_connection(bounded.server.port)
    writer.write(PING * (count - 1) + b"GET /fapi/v1/time HTTP/1.1\r\nHost: x\r\n\r\n")
    received = b""
    try:
        async with asyncio.timeout(20):
            while not received.endswith(b"}") or b"serverTime" not in received[-64:]:
                chunk = await reader.read(4096)
                assert chunk, "closed before every answer arrived"
                received += chunk
                await asyncio.sleep(0)  # a slow reader
    finally:
        writer.close()
    assert received.count(PING_ANSWERED) == count - 1
    assert received.count(b"HTTP/1.1 200 OK") == count


def _assert_dated(response: RawResponse) -> None:
    sent = parsedate_to_datetime(response.header("Date"))
    assert response.header("Date").endswith(" GMT")  # IMF-fixdate, RFC 9110 §5.6.7
    assert abs(sent.timestamp() - time.time()) < 5


@pytest.mark.parametrize(
    ("method", "path", "status", "spot"),
    [
        ("GET", "/fapi/v1/ping", 200, False),
        ("GET", "/fapi/v1/time", 200, False),
        ("GET", "/fapi/v1/exchangeInfo", 200, False),
        ("POST", "/fapi/v1/listenKey", 200, False),
        ("PUT", "/fapi/v1/listenKey", 200, False),
        ("DELETE", "/fapi/v1/listenKey", 200, False),
        ("PUT", "/fapi/v1/listenKey?nokey", 401, False),
        ("GET", "/fapi/v1/nothing", 404, False),
        ("PATCH", "/fapi/v1/ping", 405, False),
        ("GET", "/api/v3/ping", 200, True),
        ("GET", "/api/v3/time", 200, True),
    ],
)
async def test_rest_answers_carry_binance_headers(
    h: Harness, method: str, path: str, status: int, spot: bool
) -> None:
    """Content-Type, Date and the used weight on every REST answer; spot routes also carry
    the weight without the interval suffix (trading spec §7)."""
    account = h.account()
    await h.listen_key(account)
    key = "" if path.endswith("?nokey") else f"X-MBX-APIKEY: {account.api_key}\r\n"
    request = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{key}Connection: close\r\n\r\n"
    response = await one_response(h.server.port, request.encode())
    assert response.status == status
    assert response.header("Content-Type") == JSON
    _assert_dated(response)
    used = response.header("X-MBX-USED-WEIGHT-1M")
    assert int(used) >= 1
    if spot:
        assert response.header("X-MBX-USED-WEIGHT") == used
    else:
        assert "x-mbx-used-weight" not in response.headers


async def test_rate_limited_answers_carry_retry_after_and_date(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "data", weight_limits=WeightLimits(per_minute=1)) as h:
        ping = b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert (await one_response(h.server.port, ping)).status == 200
        limited = await one_response(h.server.port, ping)
    assert limited.status == 429
    assert limited.header("X-MBX-USED-WEIGHT-1M") == "2"
    assert int(limited.header("Retry-After")) >= 1
    _assert_dated(limited)


async def test_admin_errors_and_handshakes_carry_date(h: Harness) -> None:
    admin = await one_response(
        h.server.port, b"GET /admin/v1/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert admin.status == 401
    _assert_dated(admin)
    malformed = await one_response(h.server.port, b"NOT HTTP\r\n\r\n")
    assert malformed.status == 400
    _assert_dated(malformed)
    reader, writer = await asyncio.open_connection("127.0.0.1", h.server.port)
    try:
        writer.write(
            b"GET /private/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + WS_KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
    (switching,) = parse_responses(head, bodies=False)
    assert switching.status == 101
    _assert_dated(switching)
