"""Signed REST on the server: route table, security types, weights and order counts.

Every answer carries `Content-Type: application/json`, `Date` (added by `server/http.py`) and
`X-MBX-USED-WEIGHT-1M`; order placement, amend and cancel answers add
`X-MBX-ORDER-COUNT-10S` / `-1M` (trading spec §7). TRADE and USER_DATA requests are verified
by `protocol.signing` (API key -2014/-2015, signature -1022, timestamp -1021, §1); parameters
are read by `protocol.trading` (-1100 … -1130). The venue's account routes are added by
`server/venue_routes.py`; this module also answers the spot, margin and coin-M routes that
ccxt's generic `binance` class loads markets from, as a futures-only venue does: Binance's
shapes with empty lists (issue #12 item 4).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from userstream.accounts import looks_like_api_key
from userstream.clock import Clock
from userstream.exceptions import BinanceAPIError, RateLimited
from userstream.protocol import errors
from userstream.protocol.exchange_info import RateLimit
from userstream.protocol.limits import (
    ORDER_COUNT_1M_HEADER,
    ORDER_COUNT_10S_HEADER,
    USED_WEIGHT_HEADER,
    OrderCountLimiter,
    RequestWeightLimiter,
)
from userstream.protocol.signing import Params, Security, parse_params, verify_rest
from userstream.protocol.trading import encode
from userstream.server.apikeys import ApiKeys
from userstream.server.http import Request, Response
from userstream.server.logs import prefix
from userstream.server.responses import error_response

log = logging.getLogger(__name__)

SPOT_USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT"


class Call(msgspec.Struct, frozen=True):
    """A request that passed its security checks."""

    account_id: int  # 0 for NONE routes
    params: Params
    now_ms: int


Handler = Callable[[Call], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Route:
    """One path + method: its security type, IP weight and order-count cost (§2, §7)."""

    security: Security
    weight: int
    handler: Handler
    orders: int = 0
    counted: bool = False  # send the order-count headers (placement, amend, cancel)
    weight_without_symbol: int | None = None  # e.g. openOrders: 1 with a symbol, 40 without


class TradingApi:
    """The signed REST routes; `claims(path)` tells the server which requests are ours."""

    def __init__(
        self,
        api_keys: ApiKeys,
        limiter: RequestWeightLimiter,
        order_counts: OrderCountLimiter,
        clock: Clock,
    ) -> None:
        self._api_keys = api_keys
        self._limiter = limiter
        self.order_counts = order_counts
        self._clock = clock
        self._routes: dict[str, dict[str, Route]] = {}
        # Set on a node of a distributed deployment: order entry is single-node
        # (docs/deployment.md), so its routes answer this instead of trading.
        self.refusal: BinanceAPIError | None = None
        self._futures_only_routes()

    def add(self, path: str, method: str, route: Route) -> None:
        self._routes.setdefault(path, {})[method] = route

    def claims(self, path: str) -> bool:
        return path in self._routes

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self._routes)

    async def handle(self, request: Request) -> Response:
        now = self._clock.now_ms()
        route = self._routes[request.path].get(request.method)
        headers: list[tuple[str, str]] = []
        weight = 1 if route is None else route.weight
        unscoped = None if route is None else route.weight_without_symbol
        if unscoped is not None and not _names_symbol(request):
            weight = unscoped
        try:
            used = self._limiter.charge(request.client_ip, weight, now)
        except RateLimited as limited:
            _log_rejected(request, limited)
            used = self._limiter.used(request.client_ip, now)
            return self._finish(request, error_response(limited), used, headers)
        try:
            if route is None:
                raise BinanceAPIError(
                    errors.NOT_FOUND, f"Method {request.method} is not allowed here.", 405
                )
            if self.refusal is not None and route.security.needs_key:
                raise self.refusal
            call = await self._authorize(route, request, now)
            if route.counted:
                count_10s, count_1m = self._count(route, call, now)
                headers += [
                    (ORDER_COUNT_10S_HEADER, str(count_10s)),
                    (ORDER_COUNT_1M_HEADER, str(count_1m)),
                ]
            body = await route.handler(call)
            response = Response(200, encode(body))
        except BinanceAPIError as error:
            _log_rejected(request, error)
            response = error_response(error)
        return self._finish(request, response, used, headers)

    def _count(self, route: Route, call: Call, now: int) -> tuple[int, int]:
        if route.orders == 0:
            return self.order_counts.counts(call.account_id, now)
        return self.order_counts.charge(call.account_id, route.orders, now)

    @staticmethod
    def _finish(
        request: Request, response: Response, used: int, headers: list[tuple[str, str]]
    ) -> Response:
        response.headers += headers
        response.headers.append((USED_WEIGHT_HEADER, str(used)))
        if request.path.startswith("/api/"):
            response.headers.append((SPOT_USED_WEIGHT_HEADER, str(used)))
        return response

    async def _authorize(self, route: Route, request: Request, now: int) -> Call:
        security = route.security
        if not security.needs_key:
            return Call(0, parse_params(request.query, request.body), now)
        api_key = request.headers.get("x-mbx-apikey")
        well_formed = api_key is not None and looks_like_api_key(api_key)
        key = await self._api_keys.signing_key(api_key) if well_formed else None
        if not security.signed:
            if not well_formed:
                raise errors.api_key_format_invalid()
            if key is None:
                raise errors.api_key_rejected()
            return Call(key.account_id, parse_params(request.query, request.body), now)
        signed = verify_rest(key, well_formed, request.query, request.body, now)
        return Call(signed.account_id, signed.params, now)

    # ccxt's generic `binance` class: spot, margin and coin-M market loading (§9 (a) note)

    def _futures_only_routes(self) -> None:
        self.add("/api/v3/exchangeInfo", "GET", Route(Security.NONE, 20, self._empty_info))
        self.add("/dapi/v1/exchangeInfo", "GET", Route(Security.NONE, 1, self._empty_info))
        # ccxt signs every sapi call; Binance makes allPairs MARKET_DATA and the rest USER_DATA.
        self.add("/sapi/v1/margin/allPairs", "GET", Route(Security.MARKET_DATA, 1, _no_rows))
        self.add(
            "/sapi/v1/margin/isolated/allPairs", "GET", Route(Security.USER_DATA, 10, _no_rows)
        )
        self.add("/sapi/v1/capital/config/getall", "GET", Route(Security.USER_DATA, 10, _no_rows))

    async def _empty_info(self, call: Call) -> object:
        return _EmptyExchangeInfo(
            timezone="UTC",
            server_time=call.now_ms,
            rate_limits=[
                RateLimit("REQUEST_WEIGHT", "MINUTE", 1, self._limiter.limits.per_minute),
                RateLimit("ORDERS", "SECOND", 10, self.order_counts.limits.per_10s),
                RateLimit("ORDERS", "MINUTE", 1, self.order_counts.limits.per_minute),
            ],
            exchange_filters=[],
            symbols=[],
        )


class _EmptyExchangeInfo(msgspec.Struct):
    """The spot (`/api/v3`) and coin-M (`/dapi/v1`) exchangeInfo of a venue that lists no
    symbol there: the top-level keys ccxt and the SDKs read, `symbols` empty."""

    timezone: str
    server_time: int = msgspec.field(name="serverTime")
    rate_limits: list[RateLimit] = msgspec.field(name="rateLimits")
    exchange_filters: list[object] = msgspec.field(name="exchangeFilters")
    symbols: list[object]


async def _no_rows(call: Call) -> object:
    return []


def _names_symbol(request: Request) -> bool:
    """Whether the request sends a `symbol` parameter (weights that depend on it, §2)."""
    parts = (request.query, request.body.decode("latin-1"))
    return any(
        field.startswith("symbol=") and len(field) > 7
        for part in parts
        for field in part.split("&")
    )


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
