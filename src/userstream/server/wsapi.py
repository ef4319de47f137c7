"""A WebSocket API connection at `/ws-fapi/v1` (spec §3).

Requests are answered one at a time, in arrival order. Each costs its method's weight against
the IP's REQUEST_WEIGHT, shared with REST; `rateLimits` is included unless the URL said
`returnRateLimits=false` or the request's params override it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from userstream.accounts import Account
from userstream.exceptions import BinanceAPIError, RateLimited
from userstream.protocol import errors
from userstream.protocol import wsapi as api
from userstream.protocol.limits import RequestWeightLimiter
from userstream.protocol.wsframes import Opcode
from userstream.server.keys import ListenKeyService
from userstream.server.liveness import Liveness, LivenessContext
from userstream.server.logs import prefix
from userstream.server.websocket import WebSocketConnection

log = logging.getLogger(__name__)

MAX_QUEUED_REQUESTS = 100
WS_API_LABEL = "/ws-fapi/v1"


class WsApiSession:
    def __init__(
        self,
        keys: ListenKeyService,
        limiter: RequestWeightLimiter,
        liveness: LivenessContext,
        return_rate_limits: bool,
        on_closed: Callable[[WsApiSession], None],
        observe: Callable[[str, float], None] | None = None,
    ) -> None:
        self._keys = keys
        self._limiter = limiter
        self._context = liveness
        self._return_rate_limits = return_rate_limits
        self._on_closed = on_closed
        self._observe = observe  # (path, seconds) per answered request: /metrics latency
        self._queue: deque[bytes] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._liveness: Liveness | None = None
        self.conn: WebSocketConnection | None = None
        self._methods: dict[str, Callable[[Account], Awaitable[object]]] = {
            "userDataStream.start": self._start,
            "userDataStream.ping": self._ping,
            "userDataStream.stop": self._stop,
        }

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self._liveness = self._context.watch(conn)

    def on_message(self, opcode: Opcode, payload: bytes) -> None:
        if len(self._queue) >= MAX_QUEUED_REQUESTS:
            assert self.conn is not None
            self.conn.close(1008, "too many requests in flight")
            return
        self._queue.append(payload)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._serve())

    def on_ping(self, payload: bytes) -> None:
        """The connection answers pings; the WebSocket API counts only requests."""

    def on_pong(self, payload: bytes) -> None:
        if self._liveness is not None:
            self._liveness.on_pong(payload)

    def on_close(self, code: int, reason: str) -> None:
        if self._liveness is not None:
            self._liveness.stop()
        if self._worker is not None:
            self._worker.cancel()
        self._on_closed(self)

    async def _serve(self) -> None:
        while self._queue and self.conn is not None and self.conn.open_:
            payload = self._queue.popleft()
            started = time.perf_counter()
            try:
                reply = await self._answer(payload)
            except Exception:
                log.exception("WebSocket API request failed")
                error = errors.unknown_error()
                reply = api.response_error(None, error.status, error.code, error.msg, None)
            if self._observe is not None:
                self._observe(WS_API_LABEL, time.perf_counter() - started)
            self.conn.send_text(reply)

    async def _answer(self, payload: bytes) -> bytes:
        ip = self.conn.client_ip if self.conn is not None else "?"
        now = self._context.now_ms()
        try:
            request = api.parse_request(payload)
        except api.WsApiRequestError as bad:
            self._charge_quietly(ip, 1, now)
            limits = self._rate_limits(ip, now, None)
            return api.response_error(bad.id, bad.status, bad.code, bad.msg, limits)
        try:
            self._limiter.charge(ip, api.METHOD_WEIGHTS.get(request.method, 1), now)
        except RateLimited as limited:
            log.info("rejected %s from %s: %d", request.method, ip, limited.status)
            limits = self._rate_limits(ip, now, request.return_rate_limits)
            return api.response_error(request.id, limited.status, limited.code, limited.msg, limits)
        limits = None
        try:
            method = self._methods.get(request.method)
            if method is None:
                raise api.unknown_method(request)
            account = await self._keys.authenticate(api.required_api_key(request))
            result = await method(account)
        except api.WsApiRequestError as bad:
            _log_rejected(request, ip, bad.status, bad.code)
            limits = self._rate_limits(ip, now, request.return_rate_limits)
            return api.response_error(request.id, bad.status, bad.code, bad.msg, limits)
        except BinanceAPIError as error:
            _log_rejected(request, ip, error.status, error.code)
            limits = self._rate_limits(ip, now, request.return_rate_limits)
            return api.response_error(request.id, error.status, error.code, error.msg, limits)
        limits = self._rate_limits(ip, now, request.return_rate_limits)
        return api.response_ok(request.id, result, limits)

    def _charge_quietly(self, ip: str, weight: int, now: int) -> None:
        with contextlib.suppress(RateLimited):
            self._limiter.charge(ip, weight, now)

    def _rate_limits(
        self, ip: str, now: int, override: bool | None
    ) -> list[api.RateLimitStatus] | None:
        wanted = self._return_rate_limits if override is None else override
        return [self._limiter.status(ip, now)] if wanted else None

    async def _start(self, account: Account) -> object:
        return {"listenKey": (await self._keys.start(account)).key}

    async def _ping(self, account: Account) -> object:
        return {"listenKey": (await self._keys.keepalive(account)).key}

    async def _stop(self, account: Account) -> object:
        await self._keys.close(account)
        return {}


def _log_rejected(request: api.WsApiRequest, ip: str, status: int, code: int) -> None:
    key = request.params.get("apiKey")
    log.info(
        "rejected %s from %s: %d %d (API key %s)",
        request.method,
        ip,
        status,
        code,
        prefix(key if isinstance(key, str) else None),
    )
