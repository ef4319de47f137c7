"""What an operator's tools read: `/metrics` (Prometheus text format), `/health`, `/ready`,
and the graceful drain that SIGTERM starts (issue #15, "What an operator of a gateway expects").

The hot path only bumps plain ints that already live on its objects (the gateway's delivered
counts, the flusher's bytes, the limiter's rejections); `ServerCollector` turns them into metric
families when Prometheus scrapes, so a delivery costs no `Counter.inc()`. Request latency,
observed once per REST, admin or WebSocket API request, is kept the same way
(`LatencyHistogram`): the series of a `prometheus_client` histogram, in plain numbers.
Each server has its own `CollectorRegistry`, so several servers in one process (tests,
benchmarks) keep apart.

`/health` answers 200 while the process serves HTTP (liveness). `/ready` answers 200 only when
the backends are open, NATS is connected in distributed mode, and the server is not draining
(readiness: a load balancer stops sending new clients on 503). Neither costs request weight.

The connection log lines live here too (`log_stream_opened`, `log_closed`): the listenKeys in
them are shortened by `logs.prefix`, like every key the server logs.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from userstream.bus.base import KeyStore
from userstream.exceptions import BinanceAPIError
from userstream.protocol import errors
from userstream.protocol.routes import Route, RouteKind
from userstream.protocol.wsframes import CloseCode
from userstream.server.http import HttpProtocol, Request, Response
from userstream.server.logs import prefix
from userstream.server.responses import error_response, json_response
from userstream.server.streams import StreamSession
from userstream.server.websocket import Flusher, WebSocketHandler
from userstream.server.wsapi import WS_API_LABEL, WsApiSession

if TYPE_CHECKING:
    from userstream.server.app import UserStreamServer

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
HEALTH_PATH = "/health"
READY_PATH = "/ready"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WS_API_ROUTE = "ws-api"
# Latency buckets for a request answered from memory or a local SQLite / NATS round trip.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DRAIN_REASON = "server draining"


class OpsApi:
    """`/metrics`, `/health` and `/ready` for one server, and its latency histogram."""

    def __init__(
        self, server: UserStreamServer, rest_paths: frozenset[str], metrics_port: int | None
    ) -> None:
        self._server = server
        self._rest_paths = rest_paths
        self._metrics_port = metrics_port
        # With `--metrics-port`, /metrics moves there (a port kept off the public network);
        # /health and /ready stay on the main port too, where load balancers probe.
        probes = (HEALTH_PATH, READY_PATH)
        self._main_paths = probes if metrics_port is not None else (METRICS_PATH, *probes)
        self._listener: asyncio.Server | None = None
        self._connections: set[HttpProtocol] = set()
        self.registry = CollectorRegistry(auto_describe=True)
        self.received_by_type: dict[str, int] = {}  # events handed over by the bus, by name
        self._latency = LatencyHistogram(
            "userstream_request_duration_seconds",
            "Time to answer a REST, admin or WebSocket API request, by path",
            LATENCY_BUCKETS,
        )
        self.registry.register(self._latency)
        self._children: dict[str, LatencySeries] = {}
        self._admin_child: LatencySeries | None = None  # every /admin/ path shares one label
        self.registry.register(ServerCollector(server, self))

    def claims(self, path: str) -> bool:
        return path in self._main_paths

    async def listen(self, host: str) -> None:
        """Serve /metrics, /health and /ready on `metrics_port` if one was given."""
        if self._metrics_port is None:
            return
        flusher = Flusher()
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: HttpProtocol(_OpsOnly(self), flusher, 0, 0, connections=self._connections),
            host,
            self._metrics_port,
            reuse_address=True,
        )

    @property
    def port(self) -> int | None:
        """The metrics port actually bound (None without `--metrics-port`)."""
        if self._listener is None:
            return None
        return int(self._listener.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.close()
            for connection in list(self._connections):
                connection.shutdown()
            await self._listener.wait_closed()
            self._listener = None

    def handle(self, request: Request) -> Response:
        if request.path == METRICS_PATH:
            return Response(200, generate_latest(self.registry), [], METRICS_CONTENT_TYPE)
        if request.path == HEALTH_PATH:
            return json_response(200, {"status": "ok"})
        problem = self.not_ready()
        if problem is None:
            return json_response(200, {"status": "ready"})
        return json_response(503, {"status": "not ready", "reason": problem})

    def not_ready(self) -> str | None:
        """Why the server should get no new clients, or None when it is ready."""
        server = self._server
        if server.draining:
            return "draining"
        if not server.listening:
            return "not started"
        nats = server.nats_status()
        if nats is not None and not nats.connected:
            return "NATS not connected"
        return None

    def observe(self, path: str, seconds: float) -> None:
        child = self._children.get(path)
        if child is None:
            child = self._child(path)
        child.observe(seconds)

    def _child(self, path: str) -> LatencySeries:
        """The histogram series of `path`'s label, looked up once per path. Only the paths
        with a label of their own are remembered, so odd paths cannot grow it."""
        if path.startswith("/admin/"):
            if self._admin_child is None:
                self._admin_child = self._latency.series("/admin/v1")
            return self._admin_child
        if path in self._rest_paths or path == WS_API_LABEL:
            child = self._children[path] = self._latency.series(path)
            return child
        return self._latency.series("other")


# `prometheus_client`'s switch for the `_created` series of its histograms, read the same way.
_CREATED_SERIES = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in (
    "true",
    "1",
    "t",
)


class LatencySeries:
    """One label's histogram: the observations per bucket (not cumulative) and their sum."""

    __slots__ = ("_bounds", "counts", "created", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0.0] * len(bounds)
        self.total = 0.0
        self.created = time.time()

    def observe(self, seconds: float) -> None:
        # The first bucket whose bound is >= `seconds`, as `Histogram.observe` counts it.
        self.counts[bisect.bisect_left(self._bounds, seconds)] += 1.0
        self.total += seconds


class LatencyHistogram(Collector):
    """A histogram with a `path` label, written exactly as a `prometheus_client` `Histogram`
    writes it (`_bucket`, `_count`, `_sum`, `_created` per label, labels in first-use order),
    observed without its locks: a `Histogram` child takes one for the sum and one for the
    bucket on every observation, about 1-2 µs of every request. Observe from the loop's
    thread only."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = (*(float(b) for b in buckets), math.inf)
        # `le` as `Histogram` writes it ("0.0005", "1.0", "+Inf").
        self._le = [floatToGoString(b) for b in self._bounds]  # type: ignore[no-untyped-call]
        self._series: dict[str, LatencySeries] = {}

    def series(self, path: str) -> LatencySeries:
        """The series of the label `path`, made on first use."""
        found = self._series.get(path)
        if found is None:
            found = self._series[path] = LatencySeries(self._bounds)
        return found

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=["path"])
        for path, series in self._series.items():
            cumulative = itertools.accumulate(series.counts)
            family.add_metric([path], list(zip(self._le, cumulative, strict=True)), series.total)
            if _CREATED_SERIES:
                family.add_sample(f"{self._name}_created", {"path": path}, series.created)
        yield family


class _OpsOnly:
    """The `HttpApp` of the metrics port: the three operator paths, 404 for the rest."""

    def __init__(self, ops: OpsApi) -> None:
        self._ops = ops

    async def handle_http(self, request: Request) -> Response:
        if request.path in (METRICS_PATH, HEALTH_PATH, READY_PATH):
            return self._ops.handle(request)
        return self.error_response(404, "Not found.")

    def accept_websocket(self, request: Request) -> WebSocketHandler | Response:
        return self.error_response(404, "Not found.")

    def error_response(self, status: int, msg: str) -> Response:
        return error_response(BinanceAPIError(errors.UNKNOWN, msg, status))


class ServerCollector(Collector):
    """The server's plain counters as Prometheus metric families, read at scrape time."""

    def __init__(self, server: UserStreamServer, ops: OpsApi) -> None:
        self._server = server
        self._ops = ops

    def collect(self) -> Iterator[Metric]:
        server = self._server
        now = server.clock.now_ms()
        connections = GaugeMetricFamily(
            "userstream_connections", "Open WebSocket connections, by route", labels=["route"]
        )
        by_route = dict.fromkeys(RouteKind, 0)  # every route, so each series always exists
        for session in server.streams:
            by_route[session.route.kind] += 1
        for kind, count in by_route.items():
            connections.add_metric([kind.value], count)
        connections.add_metric([WS_API_ROUTE], len(server.ws_api_sessions))
        yield connections
        yield GaugeMetricFamily(
            "userstream_listen_keys_active",
            "listenKeys issued and not yet expired or closed",
            value=sum(1 for k in server.key_store.all() if k.alive(now)),
        )
        yield CounterMetricFamily(
            "userstream_listen_keys_ended",
            "listenKey ends announced by this node (expiry or close)",
            value=server.keys.expired,
        )
        yield CounterMetricFamily(
            "userstream_events_accepted",
            "Events accepted by this node's admin intake",
            value=server.stats.events_accepted,
        )
        yield _by_type(
            "userstream_events_received",
            "Events this node received from the bus, by type (embedded: every accepted event)",
            self._ops.received_by_type,
        )
        yield _by_type(
            "userstream_events_delivered",
            "Event frames queued to stream connections, by type",
            server.gateway.delivered_by_type,
        )
        yield CounterMetricFamily(
            "userstream_sent_bytes",
            "Bytes written to WebSocket connections",
            value=server.flusher.bytes_sent,
        )
        yield CounterMetricFamily(
            "userstream_slow_consumer_disconnects",
            "Stream connections closed with 1008 for falling too far behind",
            value=server.flusher.slow_consumers,
        )
        yield CounterMetricFamily(
            "userstream_rate_limit_rejections",
            "Requests refused with 429 or 418 (REST, WebSocket API, handshakes)",
            value=server.limiter.rejected,
        )
        yield GaugeMetricFamily(
            "userstream_ready", "1 when /ready answers 200", value=self._ops.not_ready() is None
        )
        if server.market is not None:
            yield CounterMetricFamily(
                "userstream_market_updates",
                "Market updates folded from the source",
                value=server.market.updates,
            )
            yield CounterMetricFamily(
                "userstream_market_frames_delivered",
                "Market stream frames queued to connections",
                value=server.market.hub.delivered,
            )
        nats = server.nats_status()
        if nats is not None:
            yield GaugeMetricFamily(
                "userstream_nats_connected", "1 while the NATS connection is up", nats.connected
            )
            yield CounterMetricFamily(
                "userstream_nats_reconnects", "NATS reconnections", value=nats.reconnects
            )
            yield GaugeMetricFamily(
                "userstream_nats_pending_messages",
                "Lag behind the event stream: messages of followed accounts not yet "
                "delivered to this node, as of the last one received",
                value=nats.pending,
            )


def _by_type(name: str, doc: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["type"])
    for event_type, count in sorted(counts.items()):
        family.add_metric([event_type], count)
    return family


async def drain(server: UserStreamServer, window_s: float) -> None:
    """Take the server out of rotation, then close its WebSockets with 1001 spread evenly
    over `window_s`, so clients reconnect to other nodes a few at a time rather than all
    at once. `/ready` fails and new upgrades get 503 from the start; REST keeps answering
    (a client may still keep its listenKey alive while it moves)."""
    server.draining = True
    sessions: list[StreamSession | WsApiSession] = [*server.streams, *server.ws_api_sessions]
    log.info("draining %d connections over %.1f s", len(sessions), window_s)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, session in enumerate(sessions):
        delay = start + window_s * index / len(sessions) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if session.conn is not None:
            session.conn.close(CloseCode.GOING_AWAY, DRAIN_REASON)
    if sessions:  # the closing handshakes end; `aclose` aborts what is left after its grace
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.drained.wait(), max(1.0, window_s / 10))


def log_stream_opened(route: Route, client_ip: str, keys: KeyStore, now_ms: int) -> None:
    """Info: a stream opened, its listenKeys shortened, and whether events can arrive."""
    if not log.isEnabledFor(logging.INFO):
        return
    listen_keys = sorted({stream.listen_key for stream in route.streams})
    unknown = []
    for key in listen_keys:
        record = keys.get(key)
        if record is None or not record.alive(now_ms):
            unknown.append(prefix(key))
    log.info(
        "stream opened on /%s from %s: listenKeys %s%s",
        route.kind.value,
        client_ip,
        ", ".join(prefix(key) for key in listen_keys) or "none",
        # Accepted and silent, as on Binance; this line is how an operator tells why.
        f" (unknown or expired here: {', '.join(unknown)}; no events will arrive)"
        if unknown and route.delivers_user_data
        else "",
    )


def log_closed(session: StreamSession | WsApiSession) -> None:
    """Info: a WebSocket closed, with the code and reason it closed with."""
    conn = session.conn
    if conn is None:
        return
    log.info(
        "%s closed from %s: %d %s (%d bytes sent)",
        f"stream on /{session.route.kind.value}"
        if isinstance(session, StreamSession)
        else "WebSocket API connection",
        conn.client_ip,
        conn.close_code,
        conn.close_reason or "-",
        conn.bytes_sent,
    )
