"""The server: REST, WebSocket API, streams and admin on one port, wired together.

    producers (admin API) ──► EventBus ──► StreamGateway ──► stream connections
    REST /fapi/v1/listenKey ─┐
    WS API /ws-fapi/v1 ──────┴─► ListenKeyService ──► KeyStore (memory + SQLite)

`Server(config)` is the public way to run it (`async with Server(config) as server:`). On
start it opens the backends the config names (`Backends.open`: memory + SQLite, or NATS
JetStream with `config.bus`) and builds every component once from them; in distributed mode
a `ClusterNode` is the gateway's key watcher and the listenKey service's end arbiter. The
server owns every task and socket it starts; `aclose()` closes connections with 1001, stops
the scheduler, closes the backends and keeps all state on disk (or in JetStream).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import sqlite3
import ssl
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from userstream.accounts import Account, SqliteAccountStore
from userstream.bus.backends import Backends
from userstream.clock import Clock, ManualClock, SystemClock
from userstream.exceptions import BinanceAPIError, ConfigurationError, RateLimited
from userstream.market.types import MarketSource
from userstream.protocol import errors
from userstream.protocol.codec import Deliverable, EncodedEvent, event_name
from userstream.protocol.limits import (
    USED_WEIGHT_HEADER,
    OrderLimits,
    RequestWeightLimiter,
    WeightLimits,
)
from userstream.protocol.routes import RouteNotFound, parse_route
from userstream.protocol.wsapi import HANDSHAKE_WEIGHT
from userstream.protocol.wsframes import CloseCode
from userstream.server.admin import AdminApi, AdminHooks
from userstream.server.cluster import DEFAULT_RECONCILE_INTERVAL_S, ClusterNode
from userstream.server.gateway import StreamGateway
from userstream.server.http import REQUEST_TIMEOUT_S, HttpProtocol, Request, Response
from userstream.server.keys import ListenKeyService
from userstream.server.liveness import LivenessContext, LivenessPolicy, PongWatch
from userstream.server.logs import LOG_FORMATS, prefix
from userstream.server.logs import configure as configure_logging
from userstream.server.market import MarketService, open_market_source
from userstream.server.market_admin import MarketAdmin
from userstream.server.market_rest import mount_market_rest
from userstream.server.ops import OpsApi, drain, log_closed, log_stream_opened
from userstream.server.responses import error_response
from userstream.server.rest import RestApi
from userstream.server.scheduler import Scheduler
from userstream.server.streams import StreamSession
from userstream.server.tls import server_context
from userstream.server.venue_service import VenueService
from userstream.server.websocket import Flusher, WebSocketHandler
from userstream.server.wsapi import WsApiSession
from userstream.storage import DB_FILENAME, write_secret
from userstream.symbols import load_symbol_table

if TYPE_CHECKING:
    from userstream.bus.nats import NatsStatus

log = logging.getLogger(__name__)

WS_API_PATH = "/ws-fapi/v1"
ADMIN_TOKEN_FILE = "admin-token"
SHUTDOWN_GRACE_S = 2.0
DEFAULT_ADVANCE_STEP_MS = 60_000
PONG_GRACE_S = 0.05
# The listenKey service and the cluster node wait on the backend while closing; a node told
# to stop while NATS is unreachable must still exit promptly.
CLOSE_TIMEOUT_S = 3.0
# Young-generation collections stay cheap; the stalls in the delivery tail are the older
# generations' passes over every long-lived object (sessions, keys, caches, the code itself).
# Once start-up is done `gc.freeze()` moves what exists to the permanent generation, which no
# pass scans, and these thresholds make the older passes rare: per-event work allocates few
# containers (frames are bytes), so garbage grows slowly and memory stays bounded.
GC_THRESHOLDS = (10_000, 50, 100)


def _tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _bounded(closing: Awaitable[None], what: str) -> None:
    try:
        await asyncio.wait_for(closing, CLOSE_TIMEOUT_S)
    except TimeoutError:
        log.warning("%s did not close within %.0f s; leaving it", what, CLOSE_TIMEOUT_S)


@dataclass(slots=True)
class ServerConfig:
    """Everything `Server` needs; every field has a working default for a local server.

    Attributes:
        host, port: where to listen (port 0 picks a free one; read it from `Server.url`).
        data_dir: SQLite database and the generated admin token.
        clock: `SystemClock()`, or `ManualClock()` for virtual time moved by the admin API.
        admin_token: bearer token of `/admin/v1/`; else `$USERSTREAM_ADMIN_TOKEN`, else the
            one saved in `data_dir`, else a new one (saved there).
        weight_limits: REQUEST_WEIGHT per IP per minute, REST and WebSocket API together.
        liveness: ping cadence, pong deadline and the 24-hour connection cap.
        symbols_file: a JSON file of exchangeInfo symbols (else the bundled ones).
        max_body_bytes, max_message_bytes: the largest request body / inbound WS message.
        max_unsent_bytes: a stream consumer this far behind is disconnected (1008).
        request_timeout_s: an HTTP request must arrive whole within this.
        bus: `nats://a:4222[,nats://b:4222]` runs the server as a node on NATS JetStream
            (needs `userstream[nats]`); None uses the embedded memory + SQLite backends.
        reconcile_interval_s: with `bus`, seconds between re-reads of the served keys.
        market, market_source: the market served on `/market`, `/public` and the market
            REST, and the venue's prices: a spec (`synthetic[:SEED]`) or a `MarketSource`
            (which wins); neither serves no market.
        tune_gc: once started, freeze the start-up heap and raise the garbage collector's
            thresholds (`GC_THRESHOLDS`); for a process that runs one long-lived server.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    clock: Clock = field(default_factory=SystemClock)
    admin_token: str | None = None
    weight_limits: WeightLimits = field(default_factory=WeightLimits)
    liveness: LivenessPolicy = field(default_factory=LivenessPolicy)
    symbols_file: str | None = None
    max_body_bytes: int = 1024 * 1024
    max_message_bytes: int = 64 * 1024
    max_unsent_bytes: int = 4 * 1024 * 1024
    request_timeout_s: float = REQUEST_TIMEOUT_S
    bus: str | None = None  # `nats://a:4222[,nats://b:4222]`: a gateway node (issue #4)
    reconcile_interval_s: float = DEFAULT_RECONCILE_INTERVAL_S
    tune_gc: bool = False
    nats_creds: Path | None = None  # a `.creds` file (JWT + nkey seed) for --bus
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None
    tls_cert: Path | None = None  # with tls_key: serve https:// and wss:// (PEM files)
    tls_key: Path | None = None
    metrics_port: int | None = None  # /metrics there instead of the main port (0: any)
    drain_s: float = 0.0  # on SIGTERM, closes spread over this window (`ops.drain`)
    market: str | None = None  # `serve --market SPEC`: `synthetic[:SEED]`; None serves none
    market_source: MarketSource | None = None  # an embedder's own source (wins over `market`)
    strict_routing: bool = False  # streams only on Binance's 2026 route (`StreamSession`)
    initial_balance: Decimal | None = None  # USDT credited to each account the venue first sees
    order_limits: OrderLimits = field(default_factory=OrderLimits)  # ORDERS per account


@dataclass(slots=True)
class Stats:
    events_accepted: int = 0


class Server:
    """The server on one port: REST, WebSocket API, user data streams and admin.

    Use it as an async context manager; on entry the backends are open and the port is
    listening, on exit connections are closed with 1001 and the backends closed::

        async with Server(ServerConfig(port=0)) as server:
            print(server.url, server.ws_url, server.admin_token)
            account = await server.create_account("trader")

    `start()` / `aclose()` are the same steps for callers that cannot use `async with`.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.demo_account: Account | None = None
        self.admin_token = ""
        self.admin_token_generated = False
        self._stack: contextlib.AsyncExitStack | None = None
        self._server: asyncio.Server | None = None

    def _build(self, backends: Backends) -> None:
        """Wire every component once, from the opened backends."""
        config = self.config
        self.accounts = backends.accounts
        self.key_store = backends.keys
        self.bus = backends.bus
        self._shared_clock = backends.clock if isinstance(self.clock, ManualClock) else None
        self.scheduler = Scheduler(self.clock)
        self.cluster = (
            ClusterNode(self.key_store, self.bus, self.clock, config.reconcile_interval_s)
            if backends.shared
            else None
        )
        self.gateway = StreamGateway(watcher=self.cluster)
        self.keys = ListenKeyService(
            self.accounts, self.key_store, self.gateway, self.scheduler, arbiter=self.cluster
        )
        self.limiter = RequestWeightLimiter(config.weight_limits)
        self.flusher = Flusher()
        self.flusher.max_buffer = config.max_unsent_bytes
        self.pongs = PongWatch()
        self.liveness = LivenessContext(self.scheduler, config.liveness, self.pongs)
        self.stats = Stats()
        self.streams: set[StreamSession] = set()
        self.ws_api_sessions: set[WsApiSession] = set()
        self._drained = asyncio.Event()
        self._http_connections: set[HttpProtocol] = set()
        symbols = load_symbol_table(config.symbols_file)
        self._rest = RestApi(self.keys, self.limiter, self.clock, symbols, config.order_limits)
        source = config.market_source
        if source is None and config.market is not None:
            source = open_market_source(config.market, symbols, self.clock.now_ms())
        self.market = (
            MarketService(source, symbols, self.clock, self.scheduler)
            if source is not None
            else None
        )
        if self.market is not None:
            mount_market_rest(self._rest, self.market)
        self._nats_status = backends.nats_status
        self.draining = False  # /ready fails and upgrades get 503 (ops.drain)
        self._ssl: ssl.SSLContext | None = None
        if config.tls_cert is not None or config.tls_key is not None:
            self._ssl = server_context(config.tls_cert, config.tls_key)
        self.venue = VenueService(
            self.accounts,
            self.limiter,
            self.clock,
            None if backends.shared else config.data_dir,
            symbols,
            self.bus,
            self.scheduler,
            self.market,
            config.initial_balance,
            config.order_limits,
        )
        self.keys.other_keys = self.venue.api_keys.ed25519_owner
        self.ops = OpsApi(self, self._rest.paths | self.venue.trading.paths, config.metrics_port)
        self.bus.subscribe(self._deliver)
        if self.cluster is not None:
            backends.on_reconnect(self.cluster.reconnected)

    # lifecycle

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the backends, build the server on them and start listening."""
        async with contextlib.AsyncExitStack() as stack:
            self._build(await stack.enter_async_context(Backends.open(self.config)))
            source = self.market.source if self.market is not None else None
            if isinstance(source, contextlib.AbstractAsyncContextManager):
                await stack.enter_async_context(source)  # e.g. an upstream's connections
            stack.push_async_callback(self._stop)
            await self._start()
            self._stack = stack.pop_all()

    async def _start(self) -> None:
        if self.cluster is not None:
            self.cluster.start(self.keys)
        if self._shared_clock is not None:
            assert isinstance(self.clock, ManualClock)
            await self._shared_clock.join(self.clock, self._step_to)
        if len(self.accounts) == 0:
            self.demo_account = await self.accounts.create("demo", self.clock.now_ms())
        self.admin_token = self._load_admin_token()
        hooks = AdminHooks(
            drop_connections=self.drop_connections,
            stats=self.snapshot,
            audience=self._audience,
            advance=self.advance_clock
            if self._shared_clock is None
            else self._shared_clock.advance,
            market=MarketAdmin(self.market).handle if self.market is not None else None,
            venue=self.venue.admin,
        )
        self._admin = AdminApi(
            self.admin_token, self.accounts, self.keys, self.bus, self.clock, hooks
        )
        self.keys.restore()
        if self.market is not None:
            self.market.start()
        self.venue.start()
        if self.demo_account is not None:
            await self.venue.ensure(self.demo_account.id, self.clock.now_ms())
        self.scheduler.start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpProtocol(
                self,
                self.flusher,
                self.config.max_body_bytes,
                self.config.max_message_bytes,
                self.config.request_timeout_s,
                self._http_connections,
            ),
            self.config.host,
            self.config.port,
            reuse_address=True,
            ssl=self._ssl,
        )
        await self.ops.listen(self.config.host)
        if self.config.tune_gc:
            _tune_gc()

    @property
    def port(self) -> int:
        """The port listened on (the one picked, for port 0)."""
        if self._server is None:
            raise ConfigurationError("the server is not running; start() it first")
        sockname = self._server.sockets[0].getsockname()
        return int(sockname[1])

    @property
    def url(self) -> str:
        """`http://host:port` (`https` with TLS): REST (`/fapi/v1/listenKey`) and admin
        (`/admin/v1/`)."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return self.url

    @property
    def ws_url(self) -> str:
        """`ws://host:port` (`wss` with TLS): streams (`/ws/<listenKey>`,
        `/private/ws?listenKey=`) and the WebSocket API (`/ws-fapi/v1`)."""
        scheme = "wss" if self._ssl is not None else "ws"
        return f"{scheme}://{self.config.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def drained(self) -> asyncio.Event:
        """Set while no WebSocket is open."""
        return self._drained

    def nats_status(self) -> NatsStatus | None:
        return None if self._nats_status is None else self._nats_status()

    async def drain(self, window_s: float) -> None:
        """Take this node out of rotation (`/ready` fails, upgrades get 503) and close its
        WebSockets with 1001 spread over `window_s`; call `aclose()` after it."""
        await drain(self, window_s)

    async def create_account(self, name: str) -> Account:
        """A new account with fresh API and secret keys, usable at once on every node."""
        return await self.accounts.create(name, self.clock.now_ms())

    async def account(self, account_id: int) -> Account | None:
        """The account with this id, if there is one."""
        return await self.accounts.by_id(account_id)

    async def publish(self, account_id: int, events: Sequence[Deliverable]) -> None:
        """Deliver events (the models of `userstream.events`) to the account's streams: the
        intake the admin API uses, without its validation of raw JSON."""
        await self.bus.publish(account_id, events)

    async def aclose(self) -> None:
        """Stop accepting, close every WebSocket with 1001, close the backends (all state
        stays on disk or in JetStream)."""
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        await stack.aclose()

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        sessions = self._sessions()
        for session in sessions:
            if session.conn is not None:
                session.conn.close(CloseCode.GOING_AWAY, "server shutting down")
        if sessions:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), SHUTDOWN_GRACE_S)
        for connection in list(self._http_connections):
            connection.shutdown()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self.ops.aclose()
        if self.market is not None:
            self.market.stop()
        await self.venue.aclose()
        await self.scheduler.aclose()
        await _bounded(self.keys.aclose(), "listenKey service")
        if self.cluster is not None:
            await _bounded(self.cluster.aclose(), "cluster node")

    async def _step_to(self, now_ms: int) -> None:
        """One step of shared virtual time, as `advance_clock` takes it locally."""
        assert isinstance(self.clock, ManualClock)
        await self.clock.set(now_ms)
        self.scheduler.run_due()
        await self.pongs.settle(PONG_GRACE_S)

    def _load_admin_token(self) -> str:
        token = self.config.admin_token or os.environ.get("USERSTREAM_ADMIN_TOKEN")
        path = self.config.data_dir / ADMIN_TOKEN_FILE
        if token:
            return token
        if path.exists():
            saved = path.read_text().strip()
            if saved:
                return saved
        token = secrets.token_urlsafe(32)
        path.unlink(missing_ok=True)
        write_secret(path, token + "\n")
        self.admin_token_generated = True
        return token

    async def advance_clock(self, ms: int, step_ms: int = DEFAULT_ADVANCE_STEP_MS) -> None:
        """Move the virtual clock `ms` forward in steps of at most `step_ms`, firing every
        deadline in order. After a step that left pings unanswered, clients get up to
        `PONG_GRACE_S` of real time to answer, so hours of virtual time pass the way hours
        of real time would for a live client, and a dead one still misses its deadline.
        """
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise ConfigurationError("the clock is real; start the server with --clock virtual")
        target = clock.now_ms() + ms
        while clock.now_ms() < target:
            await clock.advance(min(step_ms, target - clock.now_ms()))
            self.scheduler.run_due()
            await self.pongs.settle(PONG_GRACE_S)

    def _sessions(self) -> list[StreamSession | WsApiSession]:
        return [*self.streams, *self.ws_api_sessions]

    def _session_closed(self, session: StreamSession | WsApiSession) -> None:
        log_closed(session)
        if isinstance(session, StreamSession):
            self.streams.discard(session)
        else:
            self.ws_api_sessions.discard(session)
        if not self.streams and not self.ws_api_sessions:
            self._drained.set()

    # HttpApp

    async def handle_http(self, request: Request) -> Response:
        if self.ops.claims(request.path):
            return self.ops.handle(request)
        started = time.perf_counter()
        if self._admin is not None and self._admin.claims(request.path):
            response = await self._admin.handle(request)
        elif self.venue.trading.claims(request.path):
            response = await self.venue.trading.handle(request)
        else:
            response = await self._rest.handle(request)
        self.ops.observe(request.path, time.perf_counter() - started)
        return response

    def accept_websocket(self, request: Request) -> WebSocketHandler | Response:
        if self.draining:
            log.info("upgrade to %s from %s refused: draining", request.path, request.client_ip)
            return error_response(BinanceAPIError(errors.UNKNOWN, "Server draining.", 503))
        if request.path == WS_API_PATH:
            try:
                self.limiter.charge(request.client_ip, HANDSHAKE_WEIGHT, self.clock.now_ms())
            except RateLimited as limited:
                log.info(
                    "WebSocket API handshake from %s refused: %d", request.client_ip, limited.status
                )
                used = self.limiter.used(request.client_ip, self.clock.now_ms())
                return error_response(limited, [(USED_WEIGHT_HEADER, str(used))])
            # `?returnRateLimits=false` on the URL turns rateLimits off for the connection
            # (spec §3.1); per-request params can still turn them back on.
            flags = dict(parse_qsl(request.query, keep_blank_values=True))
            return_limits = flags.get("returnRateLimits", "true").lower() != "false"
            ws_api = WsApiSession(
                self.keys,
                self.limiter,
                self.liveness,
                return_limits,
                self._session_closed,
                self.ops.observe,
                self.venue.ws,
                self.flusher,
            )
            self.ws_api_sessions.add(ws_api)
            self._drained.clear()
            log.info("WebSocket API connection opened from %s", request.client_ip)
            return ws_api
        try:
            route = parse_route(request.path, request.query)
        except RouteNotFound:
            log.info(
                "stream upgrade to unknown path %s from %s: 404", request.path, request.client_ip
            )
            return error_response(
                BinanceAPIError(
                    errors.NOT_FOUND, "Not found, unauthenticated, or unauthorized.", 404
                )
            )
        session = StreamSession(
            route,
            self.gateway,
            self.liveness,
            self._session_closed,
            self.market.hub if self.market is not None else None,
            self.config.strict_routing,
        )
        self.streams.add(session)
        self._drained.clear()
        log_stream_opened(route, request.client_ip, self.key_store, self.clock.now_ms())
        return session

    def error_response(self, status: int, msg: str) -> Response:
        code = errors.UNKNOWN if status >= 500 else errors.INVALID_PARAMETER
        return error_response(BinanceAPIError(code, msg, status))

    # data plane

    def _deliver(self, account_id: int, events: Sequence[Deliverable]) -> None:
        # Every producer's batches pass here: the admin API, `serve --demo` and in-process
        # simulator feeds, and (distributed) `Publisher`s on NATS, for the accounts followed.
        self.stats.events_accepted += len(events)
        tally: dict[str, int] = {}  # one pass counts the batch for both /metrics counters
        for event in events:
            name = event.name if isinstance(event, EncodedEvent) else event_name(event)
            tally[name] = tally.get(name, 0) + 1
        received = self.ops.received_by_type
        for name, count in tally.items():
            received[name] = received.get(name, 0) + count
        record = self.key_store.active(account_id, self.clock.now_ms())
        queued = 0 if record is None else self.gateway.deliver(record.key, events, tally)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "account %d: %d events, %d frames queued (listenKey %s)",
                account_id,
                len(events),
                queued,
                prefix(record.key) if record is not None else "none",
            )

    def _audience(self, account_id: int, events: Sequence[EncodedEvent]) -> int | None:
        if self.cluster is not None:
            return None  # the gateways following the account each deliver it
        record = self.key_store.active(account_id, self.clock.now_ms())
        if record is None:
            return 0
        return self.gateway.audience(record.key, events)

    # admin hooks

    def drop_connections(self, account_id: int | None, code: int) -> int:
        if account_id is None:
            targets = [s.conn for s in self._sessions() if s.conn is not None]
        else:
            record = self.key_store.active(account_id, self.clock.now_ms())
            targets = []
            if record is not None:
                for subscriber in self.gateway.subscribers(record.key):
                    if isinstance(subscriber, StreamSession) and subscriber.conn is not None:
                        targets.append(subscriber.conn)
        for conn in targets:
            conn.close(code, "dropped by admin")
        return len(targets)

    def snapshot(self) -> dict[str, Any]:
        now = self.clock.now_ms()
        return {
            "now": now,
            "connections": {"streams": len(self.streams), "wsApi": len(self.ws_api_sessions)},
            "accounts": len(self.accounts),
            "listenKeys": {
                "active": sum(1 for k in self.key_store.all() if k.alive(now)),
                "ended": self.keys.expired,
            },
            "events": {
                "accepted": self.stats.events_accepted,
                "delivered": self.gateway.delivered,
            },
            **({"cluster": self.cluster.snapshot()} if self.cluster is not None else {}),
        }


async def create_account(config: ServerConfig, name: str) -> Account:
    """Create an account in the backends `config` names, with or without a server running on
    them (a running server finds it on its first request with the new API key)."""
    async with Backends.open(config) as backends:
        return await backends.accounts.create(name, config.clock.now_ms())


def list_accounts(data_dir: Path) -> list[Account]:
    """The accounts of an embedded data folder, read without writing (a server may be running
    on it).

    Raises:
        ConfigurationError: there is no database there, or it cannot be read.
    """
    path = data_dir / DB_FILENAME
    if not path.is_file():
        raise ConfigurationError(
            f"no userstream data in {data_dir} ({DB_FILENAME} not found): start "
            f"`userstream serve --data {data_dir}` once, or point --data at its folder"
        )
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return SqliteAccountStore(db).all()
        finally:
            db.close()
    except sqlite3.Error as error:
        raise ConfigurationError(f"cannot read {path}: {error}") from None


UserStreamServer = Server
"""The name the tests use for `Server`."""

__all__ = [
    "LOG_FORMATS",
    "Server",
    "ServerConfig",
    "UserStreamServer",
    "WeightLimits",
    "configure_logging",
    "create_account",
    "list_accounts",
]
