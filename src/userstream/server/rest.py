"""The REST routes real clients call around a user data stream (spec §2, §6.6).

Every answer carries `Content-Type: application/json`, `Date` (added to every HTTP answer by
`server/http.py`) and `X-MBX-USED-WEIGHT-1M`, `/api/v3/*` answers `X-MBX-USED-WEIGHT` too, and
429/418 answers `Retry-After` (trading spec §7); every request, failed or not, costs its weight
(spec §6.3: "a 400 still costs weight").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from userstream.clock import Clock
from userstream.exceptions import BinanceAPIError, RateLimited
from userstream.protocol import errors
from userstream.protocol.exchange_info import SymbolTable, exchange_info
from userstream.protocol.limits import USED_WEIGHT_HEADER, RequestWeightLimiter
from userstream.server.http import Request, Response
from userstream.server.keys import ListenKeyService
from userstream.server.logs import prefix
from userstream.server.responses import error_response, json_response

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
Weigher = Callable[[Request], int]

SPOT_PREFIX = "/api/v3/"
SPOT_USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT"
"""Spot answers carry the used weight a second time, without the interval suffix (trading
spec §7); python-binance's async start-up calls `/api/v3/ping` and `/api/v3/time`."""

NOT_FOUND = BinanceAPIError(errors.NOT_FOUND, "Not found, unauthenticated, or unauthorized.", 404)


class RestApi:
    def __init__(
        self,
        keys: ListenKeyService,
        limiter: RequestWeightLimiter,
        clock: Clock,
        symbols: SymbolTable,
    ) -> None:
        self._keys = keys
        self._limiter = limiter
        self._clock = clock
        self._symbols = symbols
        listen_key: dict[str, Handler] = {
            "POST": self._start,
            "PUT": self._keepalive,
            "DELETE": self._close,
        }
        self._routes: dict[str, dict[str, Handler]] = {
            "/fapi/v1/listenKey": listen_key,
            "/fapi/v1/ping": {"GET": self._ping},
            "/fapi/v1/time": {"GET": self._time},
            "/fapi/v1/exchangeInfo": {"GET": self._exchange_info},
            "/api/v3/ping": {"GET": self._ping},
            "/api/v3/time": {"GET": self._time},
        }
        self._weights: dict[tuple[str, str], Weigher] = {}

    def mount(self, path: str, method: str, handler: Handler, weight: Weigher) -> None:
        """Serve `method path` with `handler`, charging `weight(request)` (which must not
        raise: a malformed parameter costs the endpoint's default weight)."""
        self._routes.setdefault(path, {})[method] = handler
        self._weights[path, method] = weight

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self._routes)

    async def handle(self, request: Request) -> Response:
        now = self._clock.now_ms()
        weigh = self._weights.get((request.path, request.method))
        try:
            used = self._limiter.charge(
                request.client_ip, 1 if weigh is None else weigh(request), now
            )
        except RateLimited as limited:
            _log_rejected(request, limited)
            used = self._limiter.used(request.client_ip, now)
            return error_response(limited, [(USED_WEIGHT_HEADER, str(used))])
        methods = self._routes.get(request.path)
        try:
            if methods is None:
                raise NOT_FOUND
            handler = methods.get(request.method)
            if handler is None:
                raise BinanceAPIError(
                    errors.NOT_FOUND, f"Method {request.method} is not allowed here.", 405
                )
            response = await handler(request)
        except BinanceAPIError as error:
            _log_rejected(request, error)
            response = error_response(error)
        response.headers.append((USED_WEIGHT_HEADER, str(used)))
        if request.path.startswith(SPOT_PREFIX):
            response.headers.append((SPOT_USED_WEIGHT_HEADER, str(used)))
        return response

    # USER_STREAM routes: API key only; `listenKey`, `timestamp`, `recvWindow` and `signature`
    # are ignored when sent, as real clients send them (spec §2.2).

    async def _start(self, request: Request) -> Response:
        account = await self._keys.authenticate(request.headers.get("x-mbx-apikey"))
        record = await self._keys.start(account)
        return json_response(200, {"listenKey": record.key})

    async def _keepalive(self, request: Request) -> Response:
        account = await self._keys.authenticate(request.headers.get("x-mbx-apikey"))
        record = await self._keys.keepalive(account)
        return json_response(200, {"listenKey": record.key})

    async def _close(self, request: Request) -> Response:
        account = await self._keys.authenticate(request.headers.get("x-mbx-apikey"))
        await self._keys.close(account)
        return json_response(200, {})

    async def _ping(self, request: Request) -> Response:
        return json_response(200, {})

    async def _time(self, request: Request) -> Response:
        return json_response(200, {"serverTime": self._clock.now_ms()})

    async def _exchange_info(self, request: Request) -> Response:
        body = exchange_info(self._symbols, self._clock.now_ms(), self._limiter.limits.per_minute)
        return Response(200, body)


def _log_rejected(request: Request, error: BinanceAPIError) -> None:
    log.info(
        "rejected %s %s from %s: %d %d (API key %s)",
        request.method,
        request.path,
        request.client_ip,
        error.status,
        error.code,
        prefix(request.headers.get("x-mbx-apikey")),
    )
