"""The server: REST, WebSocket API, streams and admin on one port, wired together.

    producers (admin API) ──► EventBus ──► StreamGateway ──► stream connections
    REST /fapi/v1/listenKey ─┐
    WS API /ws-fapi/v1 ──────┴─► ListenKeyService ──► KeyStore (memory + SQLite)

`UserStreamServer` owns every task and socket it starts; `aclose()` closes connections with
1001, stops the scheduler and keeps all state on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import ssl
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from userstream.accounts import Account, SqliteAccountStore
from userstream.bus.base import AccountStore, EventBus, KeyStore
from userstream.bus.memory import MemoryEventBus, SqliteKeyStore
from userstream.clock import Clock, ManualClock, SystemClock
from userstream.exceptions import BinanceAPIError, ConfigurationError, RateLimited
from userstream.protocol import errors
from userstream.protocol.codec import Deliverable, EncodedEvent, event_name
from userstream.protocol.exchange_info import load_symbols
from userstream.protocol.routes import RouteNotFound, parse_route
from userstream.protocol.wsframes import CloseCode
from userstream.server.admin import AdminApi, AdminHooks
from userstream.server.cluster import (
    DEFAULT_RECONCILE_INTERVAL_S,
    ClockSync,
    ClusterNode,
    SharedListenKeyService,
)
from userstream.server.gateway import StreamGateway
from userstream.server.http import REQUEST_TIMEOUT_S, HttpProtocol, Request, Response
from userstream.server.keys import ListenKeyService
from userstream.server.limits import USED_WEIGHT_HEADER, RequestWeightLimiter, WeightLimits
from userstream.server.liveness import LivenessContext, LivenessPolicy, PongWatch
from userstream.server.logs import prefix
from userstream.server.ops import OpsApi, log_closed, log_stream_opened
from userstream.server.responses import error_response
from userstream.server.rest import RestApi
from userstream.server.scheduler import Scheduler
from userstream.server.streams import StreamSession
from userstream.server.tls import server_context
from userstream.server.websocket import Flusher, WebSocketHandler
from userstream.server.wsapi import WsApiSession
from userstream.storage import open_database

if TYPE_CHECKING:
    from userstream.bus.nats import NatsStatus

log = logging.getLogger(__name__)

WS_API_PATH = "/ws-fapi/v1"
WS_API_HANDSHAKE_WEIGHT = 5  # spec §3.1
ADMIN_TOKEN_FILE = "admin-token"
SHUTDOWN_GRACE_S = 2.0
DEFAULT_ADVANCE_STEP_MS = 60_000
PONG_GRACE_S = 0.05


BACKEND_CLOSE_TIMEOUT_S = 3.0


async def _bounded(closing: Awaitable[None], what: str) -> None:
    try:
        await asyncio.wait_for(closing, BACKEND_CLOSE_TIMEOUT_S)
    except TimeoutError:
        log.warning("%s did not close within %.0f s; leaving it", what, BACKEND_CLOSE_TIMEOUT_S)


@dataclass(slots=True)
class ServerConfig:
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
    nats_creds: Path | None = None  # a `.creds` file (JWT + nkey seed) for --bus
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None
    tls_cert: Path | None = None  # with tls_key: serve https:// and wss:// (PEM files)
    tls_key: Path | None = None
    metrics_port: int | None = None  # /metrics there instead of the main port (0: any)
    drain_s: float = 0.0  # on SIGTERM, closes spread over this window (`ops.drain`)


@dataclass(slots=True)
class Stats:
    events_accepted: int = 0


class UserStreamServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.scheduler = Scheduler(self.clock)
        self.gateway = StreamGateway()
        self.bus: EventBus = MemoryEventBus()
        self.limiter = RequestWeightLimiter(config.weight_limits)
        self.flusher = Flusher()
        self.pongs = PongWatch()
        self.liveness = LivenessContext(self.scheduler, config.liveness, self.pongs)
        self.flusher.max_buffer = config.max_unsent_bytes
        self.stats = Stats()
        self.streams: set[StreamSession] = set()
        self.ws_api_sessions: set[WsApiSession] = set()
        self.demo_account: Account | None = None
        self.admin_token = ""
        self.admin_token_generated = False
        self._server: asyncio.Server | None = None
        self._drained = asyncio.Event()
        self._http_connections: set[HttpProtocol] = set()
        self._db = open_database(config.data_dir)
        self.accounts: AccountStore = SqliteAccountStore(self._db)
        self.key_store: KeyStore = SqliteKeyStore(self._db)
        self.cluster: ClusterNode | None = None
        self._clock_sync: ClockSync | None = None
        self._nats: Any = None  # NatsBackends in distributed mode
        self.keys = ListenKeyService(self.accounts, self.key_store, self.gateway, self.scheduler)
        self._rest = RestApi(self.keys, self.limiter, self.clock, load_symbols(config.symbols_file))
        self._admin: AdminApi | None = None
        self.draining = False  # /ready fails and upgrades get 503 (ops.drain)
        self._ssl: ssl.SSLContext | None = None
        if config.tls_cert is not None or config.tls_key is not None:
            self._ssl = server_context(config.tls_cert, config.tls_key)
        self.ops = OpsApi(self, self._rest.paths, config.metrics_port)
        self.bus.subscribe(self._deliver)

    # lifecycle

    async def start(self) -> None:
        if self.config.bus is not None:
            await self._join_cluster(self.config.bus)
        if len(self.accounts) == 0:
            self.demo_account = await self.accounts.create("demo", self.clock.now_ms())
        self.admin_token = self._load_admin_token()
        hooks = AdminHooks(
            drop_connections=self.drop_connections,
            stats=self.snapshot,
            on_accepted=self._count_accepted,
            advance=self.advance_clock if self._clock_sync is None else self._clock_sync.advance,
        )
        self._admin = AdminApi(
            self.admin_token, self.accounts, self.keys, self.bus, self.clock, hooks
        )
        self.keys.restore()
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

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        sockname = self._server.sockets[0].getsockname()
        return int(sockname[1])

    @property
    def http_url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
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
        return None if self._nats is None else self._nats.status()

    async def aclose(self) -> None:
        """Stop accepting, close every WebSocket with 1001, keep all state on disk."""
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
        await self.scheduler.aclose()
        # Backend clean-up may wait on NATS; a gateway told to stop while NATS is down or
        # reconnecting must still exit promptly (state lives in JetStream, nothing is lost).
        await _bounded(self.keys.aclose(), "listenKey service")
        if self._clock_sync is not None:
            await _bounded(self._clock_sync.aclose(), "clock sync")
        if self.cluster is not None:
            await _bounded(self.cluster.aclose(), "cluster node")
        if self._nats is not None:
            await _bounded(self._nats.aclose(), "NATS backends")
        self._db.close()

    async def _join_cluster(self, urls: str) -> None:
        """Replace the embedded backends with NATS JetStream ones (`serve --bus`)."""
        from userstream.bus.nats import NatsOptions, open_backends

        options = NatsOptions(
            self.config.nats_creds,
            self.config.nats_tls_ca,
            self.config.nats_tls_cert,
            self.config.nats_tls_key,
        )
        self._nats = backends = await open_backends(urls, options=options)
        self.accounts, self.key_store, self.bus = backends.accounts, backends.keys, backends.bus
        keys = SharedListenKeyService(self.accounts, self.key_store, self.gateway, self.scheduler)
        self.keys = keys
        self._rest = RestApi(
            self.keys, self.limiter, self.clock, load_symbols(self.config.symbols_file)
        )
        self.bus.subscribe(self._deliver)
        self.cluster = ClusterNode(
            keys,
            self.key_store,
            self.bus,
            self.gateway,
            self.clock,
            self.config.reconcile_interval_s,
        )
        backends.connection.on_reconnect(self._reconnected)
        self.cluster.start()
        if isinstance(self.clock, ManualClock):
            self._clock_sync = ClockSync(self.clock, self._step_to)
            await self._clock_sync.start(backends.connection.client)

    async def _reconnected(self) -> None:
        if self.cluster is not None:
            self.cluster.reconcile_soon()
        if self._clock_sync is not None:
            await self._clock_sync.sync()

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
        path.write_text(token + "\n")
        path.chmod(0o600)
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
                self.limiter.charge(request.client_ip, WS_API_HANDSHAKE_WEIGHT, self.clock.now_ms())
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

    def _count_accepted(self, n: int) -> None:
        self.stats.events_accepted += n

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


__all__ = ["ServerConfig", "UserStreamServer"]
