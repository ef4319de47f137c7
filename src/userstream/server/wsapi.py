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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from userstream.accounts import Account, looks_like_api_key
from userstream.exceptions import BinanceAPIError, RateLimited
from userstream.protocol import errors
from userstream.protocol import wsapi as api
from userstream.protocol.limits import OrderCountLimiter, RequestWeightLimiter
from userstream.protocol.signing import KeyKind, Params, verify_ws_params
from userstream.protocol.wsframes import Opcode
from userstream.server.apikeys import ApiKeys
from userstream.server.keys import ListenKeyService
from userstream.server.liveness import Liveness, LivenessContext
from userstream.server.logs import prefix
from userstream.server.websocket import Flusher, WebSocketConnection

log = logging.getLogger(__name__)

MAX_QUEUED_REQUESTS = 100
# Under a burst of queued requests, answers and events are written every this many requests
# (`_serve`): a write to a socket costs about as much CPU as the rest of a small request.
FLUSH_EVERY = 8
WS_API_LABEL = "/ws-fapi/v1"

ORDER_METHODS = frozenset({"order.place", "order.modify"})

VenueMethod = Callable[[int, Params, str, int], Awaitable[object]]
"""`(account_id, params, version, now_ms)`: a trading method's result (`version` is "v2" for
`v2/account.status` and the like)."""


@dataclass(frozen=True, slots=True)
class WsVenue:
    """The venue's side of the WebSocket API: signing keys and the trading methods."""

    api_keys: ApiKeys
    methods: Mapping[str, VenueMethod]
    order_counts: OrderCountLimiter


class WsApiSession:
    def __init__(
        self,
        keys: ListenKeyService,
        limiter: RequestWeightLimiter,
        liveness: LivenessContext,
        return_rate_limits: bool,
        on_closed: Callable[[WsApiSession], None],
        observe: Callable[[str, float], None] | None = None,
        venue: WsVenue | None = None,
        flusher: Flusher | None = None,
    ) -> None:
        self._keys = keys
        self._venue = venue
        self._flusher = flusher
        # session.logon (trading spec §3): the Ed25519 key this connection logged on with.
        self._logged_on: tuple[str, int] | None = None  # (apiKey, account id)
        self._authorized_since: int | None = None
        self._connected_since = liveness.now_ms()
        self._orders_of: int | None = None  # the account an order method just counted for
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
        served = 0
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
            served += 1
            if self._flusher is not None and (not self._queue or served % FLUSH_EVERY == 0):
                # The answer and the events the request published (fills on the account's
                # streams) leave now when no other request waits, as REST answers do
                # (server/http.py). Behind a burst they leave every FLUSH_EVERY requests:
                # one write per connection for several answers, not one each.
                self._flusher.flush_now()

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
            result = await self._dispatch(request, now)
        except api.WsApiRequestError as bad:
            _log_rejected(request, ip, bad.status, bad.code)
            limits = self._rate_limits(ip, now, request.return_rate_limits)
            return api.response_error(request.id, bad.status, bad.code, bad.msg, limits)
        except BinanceAPIError as error:
            _log_rejected(request, ip, error.status, error.code)
            limits = self._rate_limits(ip, now, request.return_rate_limits)
            return api.response_error(request.id, error.status, error.code, error.msg, limits)
        limits = self._rate_limits(ip, now, request.return_rate_limits)
        if limits is not None and self._orders_of is not None:
            limits += self._order_limits(self._orders_of, now)
        return api.response_ok(request.id, result, limits)

    def _dispatch(self, request: api.WsApiRequest, now: int) -> Awaitable[object]:
        # Not a coroutine itself: it hands back the one that answers, so a logged-on
        # session's order runs one coroutine less. Its errors raise where `_answer` awaits.
        self._orders_of = None
        method = self._methods.get(request.method)
        if method is not None:
            return self._user_data_stream(method, request)
        if request.method in api.SESSION_METHODS:
            return self._session(request, now)
        venue_method = self._venue.methods.get(request.method) if self._venue else None
        if venue_method is None:
            raise api.unknown_method(request)
        sent = request.params
        if self._logged_on is not None and "apiKey" not in sent and "signature" not in sent:
            # The logged-on session's account (trading spec §3), without a coroutine.
            account_id = self._logged_on[1]
            params = {k: v if type(v) is str else _param_text(v) for k, v in sent.items()}
            if request.method in ORDER_METHODS:
                # Read by `_answer` only when the method succeeds.
                self._orders_of = account_id
            return venue_method(account_id, params, request.version, now)
        return self._signed_call(venue_method, request, now)

    async def _user_data_stream(
        self, method: Callable[[Account], Awaitable[object]], request: api.WsApiRequest
    ) -> object:
        if self._logged_on is not None and "apiKey" not in request.params:
            account = await self._logged_on_account()
        else:
            account = await self._keys.authenticate(api.required_api_key(request))
        return await method(account)

    async def _signed_call(
        self, venue_method: VenueMethod, request: api.WsApiRequest, now: int
    ) -> object:
        account_id, params = await self._signed(request, now)
        result = await venue_method(account_id, params, request.version, now)
        if request.method in ORDER_METHODS:
            self._orders_of = account_id
        return result

    async def _logged_on_account(self) -> Account:
        assert self._logged_on is not None
        account = await self._keys.accounts.by_id(self._logged_on[1])
        if account is None:
            raise errors.api_key_rejected()
        return account

    async def _signed(self, request: api.WsApiRequest, now: int) -> tuple[int, Params]:
        """Verify a signed request (a logged-on session's unsigned ones are `_dispatch`'s)."""
        assert self._venue is not None
        params = request.params
        api_key = api.required_api_key(request)
        key = await self._venue.api_keys.signing_key(api_key)
        if not looks_like_api_key(api_key):
            raise errors.api_key_format_invalid()
        if key is None:
            raise errors.api_key_rejected()
        return key.account_id, verify_ws_params(key, params, now)

    async def _session(self, request: api.WsApiRequest, now: int) -> object:
        if request.method == "session.logon":
            if self._venue is None:
                raise api.unknown_method(request)
            api_key = api.required_api_key(request)
            key = await self._venue.api_keys.signing_key(api_key)
            if not looks_like_api_key(api_key):
                raise errors.api_key_format_invalid()
            # session.logon takes Ed25519 keys only (trading spec §1.3); the answer to an HMAC
            # key is [UNCONFIRMED]: -2015, as for a key without the permission.
            if key is None or key.kind is not KeyKind.ED25519:
                raise errors.api_key_rejected()
            verify_ws_params(key, request.params, now)
            self._logged_on = (api_key, key.account_id)
            self._authorized_since = now
        elif request.method == "session.logout":
            self._logged_on = None
            self._authorized_since = None
        return api.SessionStatus(
            api_key=self._logged_on[0] if self._logged_on is not None else None,
            authorized_since=self._authorized_since,
            connected_since=self._connected_since,
            return_rate_limits=self._return_rate_limits,
            server_time=now,
        )

    def _charge_quietly(self, ip: str, weight: int, now: int) -> None:
        with contextlib.suppress(RateLimited):
            self._limiter.charge(ip, weight, now)

    def _order_limits(self, account_id: int, now: int) -> list[api.RateLimitStatus]:
        """The ORDERS items an order method's answer adds (shared with REST, §3, §7)."""
        assert self._venue is not None
        counts = self._venue.order_counts
        count_10s, count_1m = counts.counts(account_id, now)
        return [
            api.RateLimitStatus("ORDERS", "SECOND", 10, counts.limits.per_10s, count_10s),
            api.RateLimitStatus("ORDERS", "MINUTE", 1, counts.limits.per_minute, count_1m),
        ]

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


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
