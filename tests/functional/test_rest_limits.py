"""REQUEST_WEIGHT over real sockets: the header, UTC-minute windows, 429, escalating 418 bans,
and the budget shared between REST and the WebSocket API (spec §3.1, §6.2, §6.3).

Policy under test (src/userstream/protocol/limits.py): every evaluated request costs its weight,
429s included; the first `ban_after_violations + 1` over-limit requests of a minute get 429 and
the next one starts a ban (418); the n-th ban lasts `first_ban_ms * 2**n`; requests during a
ban get 418 with the same `until` and are not counted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN_TOKEN, START_MS, running_harness
from userstream.clock import ManualClock
from userstream.protocol.limits import WeightLimits
from userstream.server.app import UserStreamServer

MINUTE = 60_000
HEADER = "X-MBX-USED-WEIGHT-1M"
PING = "/fapi/v1/ping"
WS_API = "/ws-fapi/v1"


def too_many(limit: int) -> dict[str, object]:
    return {
        "code": -1003,
        "msg": f"Too many requests; current limit is {limit} requests per minute. Please use "
        "the websocket for live updates to avoid polling the API.",
    }


def banned(until_ms: int) -> dict[str, object]:
    return {
        "code": -1003,
        "msg": f"Way too many requests; IP banned until {until_ms}. Please use the websocket "
        "for live updates to avoid bans.",
    }


class Limited:
    """A real server with small limits, its virtual clock and an HTTP session."""

    def __init__(self, app: UserStreamServer, clock: ManualClock, http: aiohttp.ClientSession):
        self.app = app
        self.clock = clock
        self.http = http

    @property
    def url(self) -> str:
        return self.app.http_url

    async def advance(self, ms: int) -> None:
        await self.clock.advance(ms)
        self.app.scheduler.run_due()

    async def advance_to(self, at_ms: int) -> None:
        await self.advance(at_ms - self.clock.now_ms())

    async def get(
        self, path: str = PING, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Mapping[str, str]]:
        async with self.http.request(method, f"{self.url}{path}", headers=headers) as response:
            assert response.headers["Content-Type"] == "application/json"
            return response.status, json.loads(await response.read()), response.headers

    async def used(self, path: str = PING) -> int:
        status, _, headers = await self.get(path)
        assert status == 200
        return int(headers[HEADER])

    async def ws_api(self, query: str = "") -> aiohttp.ClientWebSocketResponse:
        return await self.http.ws_connect(f"{self.app.ws_url}{WS_API}{query}", autoping=False)


@asynccontextmanager
async def limited_server(tmp_path: Path, limits: WeightLimits) -> AsyncIterator[Limited]:
    async with running_harness(tmp_path / "data", weight_limits=limits) as h:
        yield Limited(h.server, h.clock, h.http)


async def ws_call(
    ws: aiohttp.ClientWebSocketResponse, request_id: object, method: str, **params: object
) -> dict[str, Any]:
    message: dict[str, object] = {"id": request_id, "method": method}
    if params:
        message["params"] = params
    await ws.send_str(json.dumps(message))
    reply = await asyncio.wait_for(ws.receive_json(), 5)
    assert isinstance(reply, dict)
    return reply


def weight_item(limit: int, count: int) -> dict[str, object]:
    return {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": limit,
        "count": count,
    }


# --- the header -----------------------------------------------------------------------------


async def test_header_counts_every_rest_request_including_errors(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits()) as s:
        account = await s.app.accounts.create("w", s.clock.now_ms())
        auth = {"X-MBX-APIKEY": account.api_key}
        seen: list[tuple[int, str]] = []
        for method, path, headers in [
            ("GET", PING, None),
            ("GET", "/fapi/v1/time", None),
            ("GET", "/fapi/v1/exchangeInfo", None),
            ("GET", "/api/v3/ping", None),
            ("GET", "/api/v3/time", None),
            ("POST", "/fapi/v1/listenKey", auth),  # 200
            ("PUT", "/fapi/v1/listenKey", auth),  # 200
            ("DELETE", "/fapi/v1/listenKey", auth),  # 200
            ("PUT", "/fapi/v1/listenKey", auth),  # 400 -1125
            ("POST", "/fapi/v1/listenKey", None),  # 401 -2014
            ("POST", "/fapi/v1/listenKey", {"X-MBX-APIKEY": "x" * 64}),  # 401 -2015
            ("GET", "/fapi/v1/nope", None),  # 404
            ("GET", "/nowhere/at/all", None),  # 404 outside /fapi
            ("POST", PING, None),  # 405
        ]:
            status, _, response_headers = await s.get(path, method, headers)
            seen.append((status, response_headers[HEADER]))
        assert seen == [
            (200, "1"),
            (200, "2"),
            (200, "3"),
            (200, "4"),
            (200, "5"),
            (200, "6"),
            (200, "7"),
            (200, "8"),
            (400, "9"),
            (401, "10"),
            (401, "11"),
            (404, "12"),
            (404, "13"),
            (405, "14"),
        ]


async def test_header_appears_exactly_once(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits()) as s:
        async with s.http.get(f"{s.url}/fapi/v1/nope") as response:
            assert response.headers.getall(HEADER) == ["1"]
        async with s.http.get(f"{s.url}{PING}") as response:
            assert response.headers.getall(HEADER) == ["2"]


async def test_admin_routes_do_not_cost_weight(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits(per_minute=3)) as s:
        assert await s.used() == 1
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        for _ in range(5):
            async with s.http.get(f"{s.url}/admin/v1/clock", headers=auth) as response:
                assert response.status == 200
                assert HEADER not in response.headers
        assert await s.used() == 2


async def test_weight_is_per_utc_minute_and_resets_at_00(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits(per_minute=100)) as s:
        await s.advance(30_000)  # :30 of the first minute
        assert [await s.used() for _ in range(3)] == [1, 2, 3]
        await s.advance_to(START_MS + MINUTE - 1)  # :59.999, same minute
        assert await s.used() == 4
        await s.advance(1)  # the next :00
        assert await s.used() == 1
        # Not a sliding window: 59.999 s later it is still the same minute's count...
        await s.advance(MINUTE - 1)
        assert await s.used() == 2
        # ...and a quiet minute in between resets it too.
        await s.advance(2 * MINUTE)
        assert await s.used() == 1


async def test_a_new_minute_restores_the_budget_after_a_429(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits(per_minute=2)) as s:
        assert [await s.used() for _ in range(2)] == [1, 2]
        status, body, headers = await s.get()
        assert (status, body, headers[HEADER]) == (429, too_many(2), "3")
        await s.advance_to(START_MS + MINUTE)
        assert await s.used() == 1


# --- 429 and 418 ----------------------------------------------------------------------------


async def test_over_the_limit_is_429_with_binance_message(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits(per_minute=5)) as s:
        await s.advance(15_000)
        for expected in range(1, 6):
            assert await s.used() == expected
        async with s.http.get(f"{s.url}{PING}") as response:
            assert response.status == 429
            assert response.headers["Content-Type"] == "application/json"
            assert response.headers[HEADER] == "6"  # a refused request still costs its weight
            assert response.headers["Retry-After"] == "45"  # until the next :00
            assert json.loads(await response.read()) == too_many(5)
        # Every route is refused the same way, errors and 404s included.
        for path in ("/fapi/v1/listenKey", "/fapi/v1/nope", "/fapi/v1/exchangeInfo"):
            status, body, headers = await s.get(path)
            assert (status, body) == (429, too_many(5))
            assert headers[HEADER].isdigit()


async def test_continuing_after_429_is_418_and_the_ban_escalates(tmp_path: Path) -> None:
    limits = WeightLimits(per_minute=3)  # default ban_after_violations=5, first_ban_ms=2 min
    assert limits.ban_after_violations == 5
    async with limited_server(tmp_path, limits) as s:
        # First offence: 3 ok, then 6 x 429, then 418 with a 2-minute ban.
        t0 = START_MS + 1_000
        await s.advance_to(t0)
        assert [await s.used() for _ in range(3)] == [1, 2, 3]
        for n in range(6):
            status, body, headers = await s.get()
            assert (status, body, headers[HEADER]) == (429, too_many(3), str(4 + n))
        until = t0 + 2 * MINUTE
        async with s.http.get(f"{s.url}{PING}") as response:
            assert response.status == 418
            assert response.headers["Retry-After"] == "120"
            assert HEADER in response.headers
            assert json.loads(await response.read()) == banned(until)

        # During the ban everything is 418 with the same `until`, across minute boundaries,
        # and the requests do not extend it.
        for at in (t0 + 10_000, t0 + MINUTE, t0 + 2 * MINUTE - 1):
            await s.advance_to(at)
            for path in (PING, "/fapi/v1/listenKey", "/fapi/v1/nope"):
                status, body, headers = await s.get(path)
                assert (status, body) == (418, banned(until)), (at, path)
                assert headers["Retry-After"] == str(-(-(until - at) // 1000))

        # The ban ends on time; the new minute's budget is intact (418s were not counted).
        await s.advance_to(until)
        assert await s.used() == 1

        # Second offence: same warnings, then a ban twice as long.
        t1 = START_MS + 10 * MINUTE
        await s.advance_to(t1)
        assert [await s.used() for _ in range(3)] == [1, 2, 3]
        for _ in range(6):
            assert (await s.get())[:2] == (429, too_many(3))
        status, body, headers = await s.get()
        assert (status, body) == (418, banned(t1 + 4 * MINUTE))
        assert headers["Retry-After"] == "240"
        await s.advance_to(t1 + 4 * MINUTE - 1)
        assert (await s.get())[:2] == (418, banned(t1 + 4 * MINUTE))
        await s.advance(1)
        assert await s.used() == 1

        # Third offence: 8 minutes.
        t2 = START_MS + 30 * MINUTE
        await s.advance_to(t2)
        for _ in range(3 + 6):
            await s.get()
        assert (await s.get())[:2] == (418, banned(t2 + 8 * MINUTE))


async def test_violations_reset_with_the_minute(tmp_path: Path) -> None:
    """Six 429s at the end of one minute and one at the start of the next are not a ban."""
    async with limited_server(tmp_path, WeightLimits(per_minute=1)) as s:
        await s.advance(50_000)
        assert await s.used() == 1
        for _ in range(6):
            assert (await s.get())[:2] == (429, too_many(1))
        await s.advance_to(START_MS + MINUTE)
        assert await s.used() == 1
        assert (await s.get())[:2] == (429, too_many(1))


async def test_ban_after_violations_is_configurable(tmp_path: Path) -> None:
    async with limited_server(
        tmp_path, WeightLimits(per_minute=1, ban_after_violations=0, first_ban_ms=5_000)
    ) as s:
        assert await s.used() == 1
        assert (await s.get())[:2] == (429, too_many(1))
        now = s.clock.now_ms()
        assert (await s.get())[:2] == (418, banned(now + 5_000))


# --- shared with the WebSocket API ----------------------------------------------------------


async def test_ws_api_handshake_and_requests_share_the_rest_budget(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits(per_minute=12)) as s:
        account = await s.app.accounts.create("ws", s.clock.now_ms())
        assert await s.used() == 1
        ws = await s.ws_api()  # handshake: weight 5
        try:
            assert await s.used() == 7
            reply = await ws_call(ws, 1, "userDataStream.start", apiKey=account.api_key)
            assert reply["status"] == 200
            assert reply["rateLimits"] == [weight_item(12, 8)]
            key = reply["result"]["listenKey"]
            assert await s.used() == 9
            reply = await ws_call(ws, "two", "userDataStream.ping", apiKey=account.api_key)
            assert reply == {
                "id": "two",
                "status": 200,
                "result": {"listenKey": key},
                "rateLimits": [weight_item(12, 10)],
            }
            # Errors cost weight too.
            reply = await ws_call(ws, None, "no.such.method")
            assert reply["status"] == 400
            assert reply["rateLimits"] == [weight_item(12, 11)]
            assert await s.used() == 12
            # The budget is spent: the WebSocket API refuses with 429 -1003...
            reply = await ws_call(ws, 3, "userDataStream.ping", apiKey=account.api_key)
            assert reply == {
                "id": 3,
                "status": 429,
                "error": too_many(12),
                "rateLimits": [weight_item(12, 13)],
            }
            # ...so does a new handshake (HTTP 429 before the upgrade)...
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await s.ws_api()
            assert info.value.status == 429
            # ...and REST, which sees the WebSocket API's weight.
            status, body, headers = await s.get()
            assert (status, body, headers[HEADER]) == (429, too_many(12), "19")
            # The next minute, the open connection is served again.
            await s.advance_to(START_MS + MINUTE)
            reply = await ws_call(ws, 4, "userDataStream.ping", apiKey=account.api_key)
            assert reply["status"] == 200
            assert reply["rateLimits"] == [weight_item(12, 1)]
        finally:
            await ws.close()


async def test_ws_api_handshake_refused_over_the_limit_has_binance_body(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits(per_minute=4)) as s:
        # 4 x 1 then a handshake of 5: over the limit.
        assert [await s.used() for _ in range(4)] == [1, 2, 3, 4]
        reader, writer = await asyncio.open_connection("127.0.0.1", s.app.port)
        try:
            writer.write(
                b"GET /ws-fapi/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            raw = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
            await writer.wait_closed()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
        assert b"\r\nRetry-After: 60" in head
        assert b"\r\nX-MBX-USED-WEIGHT-1M: 9" in head  # the refused handshake counted too
        assert json.loads(body) == too_many(4)


async def test_ws_api_during_a_ban_is_418(tmp_path: Path) -> None:
    async with limited_server(
        tmp_path, WeightLimits(per_minute=6, ban_after_violations=0, first_ban_ms=90_000)
    ) as s:
        account = await s.app.accounts.create("ws", s.clock.now_ms())
        ws = await s.ws_api()  # 5
        try:
            assert await s.used() == 6
            reply = await ws_call(ws, 1, "userDataStream.start", apiKey=account.api_key)
            assert (reply["status"], reply["error"]) == (429, too_many(6))
            until = s.clock.now_ms() + 90_000
            reply = await ws_call(ws, 2, "userDataStream.start", apiKey=account.api_key)
            assert (reply["status"], reply["error"]) == (418, banned(until))
            # The ban covers REST and new handshakes too.
            assert (await s.get())[:2] == (418, banned(until))
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await s.ws_api()
            assert info.value.status == 418
            # The open connection keeps serving once the ban is over.
            await s.advance(90_000)
            reply = await ws_call(ws, 3, "userDataStream.start", apiKey=account.api_key)
            assert reply["status"] == 200
            assert "listenKey" in reply["result"]
        finally:
            await ws.close()


async def test_ws_api_return_rate_limits_false(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits()) as s:
        account = await s.app.accounts.create("ws", s.clock.now_ms())
        ws = await s.ws_api("?returnRateLimits=false")
        try:
            reply = await ws_call(ws, 1, "userDataStream.start", apiKey=account.api_key)
            assert set(reply) == {"id", "status", "result"}
            reply = await ws_call(
                ws, 2, "userDataStream.ping", apiKey=account.api_key, returnRateLimits=True
            )
            assert reply["rateLimits"] == [weight_item(2400, 7)]
        finally:
            await ws.close()


async def test_ws_api_return_rate_limits_is_read_as_a_parameter(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits()) as s:
        account = await s.app.accounts.create("ws", s.clock.now_ms())
        ws = await s.ws_api("?xreturnRateLimits=false&returnRateLimits=FALSE")
        try:
            reply = await ws_call(ws, 1, "userDataStream.start", apiKey=account.api_key)
            assert set(reply) == {"id", "status", "result"}
        finally:
            await ws.close()
        ws = await s.ws_api("?xreturnRateLimits=false")
        try:
            reply = await ws_call(ws, 1, "userDataStream.start", apiKey=account.api_key)
            assert "rateLimits" in reply
        finally:
            await ws.close()


async def test_stream_connections_cost_no_request_weight(tmp_path: Path) -> None:
    async with limited_server(tmp_path, WeightLimits(per_minute=3)) as s:
        assert await s.used() == 1
        streams = [
            await s.http.ws_connect(f"{s.app.ws_url}/private/ws?listenKey={'k' * 64}")
            for _ in range(5)
        ]
        try:
            assert await s.used() == 2
        finally:
            for ws in streams:
                await ws.close()
