"""`serve --market upstream:URL`: the I/O around `market.upstream.UpstreamMarket`.

Two combined-stream connections, `<URL>/public/stream?streams=…` (the book) and
`<URL>/market/stream?streams=…` (trades, mark), since Binance serves `/market` streams only on
the `/market` route since 2026-04 (market-data spec §1) and a userstream upstream serves every
stream on every path. Each message is handed to the source as it arrives; whenever the source
asks for a book snapshot, `GET <REST>/fapi/v1/depth?symbol=…&limit=1000` is fetched after the
diff stream is open, as the documented procedure requires (spec §2.3). A dropped or broken
connection is reopened after the client's full-jitter backoff (`client.backoff.Backoff`,
reset once a connection delivered); a dropped book connection also resyncs every book.

`URL` is the stream root (`wss://fstream.binance.com`, `ws://127.0.0.1:8080`); the REST root
is Binance's `https://fapi.binance.com` for Binance's stream hosts, otherwise the same host
over http(s), or `?rest=URL` to say it. `?symbols=BTCUSDT,ETHUSDT` follows only those (default:
every `TRADING` symbol of exchangeInfo). Backoff waits are network time (`asyncio.sleep`), not
the server's clock: they pace reconnects to a real host even under a virtual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final, Literal
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from userstream.client.backoff import Backoff
from userstream.exceptions import ConfigurationError, TransportError
from userstream.market.types import MarketUpdate
from userstream.market.upstream import UpstreamMarket
from userstream.protocol.exchange_info import Symbol

__all__ = ["FollowedUpstream", "open_upstream"]

log = logging.getLogger(__name__)

_BINANCE_STREAM_HOSTS: Final = frozenset({"fstream.binance.com", "fstream-auth.binance.com"})
_BINANCE_REST: Final = "https://fapi.binance.com"
_SNAPSHOT_LIMIT: Final = 1000
_OPEN_TIMEOUT_S: Final = 10.0


class FollowedUpstream(UpstreamMarket):
    """An `UpstreamMarket` with its connections: a `MarketSource` and an async context
    manager. Entering opens the connections (in background tasks it owns); leaving cancels
    and awaits them and closes the HTTP session.

    Args:
        symbols: The exchangeInfo entries to follow.
        stream_url: The stream root, `ws://` or `wss://`, without a path.
        rest_url: The REST root for depth snapshots.
        trades: The trade stream followed (`UpstreamMarket`).
        backoff: Reconnect delays; `rng` draws their jitter.
    """

    def __init__(
        self,
        symbols: Sequence[Symbol],
        stream_url: str,
        rest_url: str,
        *,
        trades: Literal["aggTrade", "trade"] = "aggTrade",
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(symbols, trades=trades)
        self.stream_url = stream_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self._backoff = backoff if backoff is not None else Backoff()
        self._rng = rng if rng is not None else random.Random()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._snapshot_wanted = asyncio.Event()
        self.connected = {"public": asyncio.Event(), "market": asyncio.Event()}
        self.opened = {"public": 0, "market": 0}  # connections opened so far, per route
        # Called after each message is handed to the source (the market service folds it at
        # once on a real clock, so real-time streams are not held until its next tick).
        self.on_message: Callable[[], None] | None = None

    async def __aenter__(self) -> FollowedUpstream:
        self._http = aiohttp.ClientSession()
        self._tasks = [
            asyncio.create_task(self._follow(route), name=f"upstream {route}")
            for route in ("public", "market")
        ]
        self._tasks.append(asyncio.create_task(self._snapshots(), name="upstream snapshots"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._http is not None:
            await self._http.close()

    def url_of(self, route: str) -> str:
        """The combined-stream URL of `route` (`public` or `market`)."""
        return f"{self.stream_url}/{route}/stream?streams={'/'.join(self.streams()[route])}"

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        updates = super().advance(now_ms)
        if self.needs_snapshot():
            self._snapshot_wanted.set()
        return updates

    async def _follow(self, route: str) -> None:
        delays = self._backoff.delays(self._rng)
        while True:
            delivered = False
            try:
                async with connect(
                    self.url_of(route),
                    max_size=None,
                    open_timeout=_OPEN_TIMEOUT_S,
                    ping_interval=None,  # the upstream pings; websockets answers
                ) as ws:
                    self.connected[route].set()
                    self.opened[route] += 1
                    if route == "public":
                        self._snapshot_wanted.set()
                    async for message in ws:
                        self.receive(message)
                        delivered = True
                        if self.on_message is not None:
                            self.on_message()
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, WebSocketException) as e:
                log.warning("upstream %s connection failed: %s", route, e)
            except TransportError as exc:
                log.warning("upstream %s sent a frame that cannot be read: %s", route, exc)
            self.connected[route].clear()
            if route == "public":
                self.connection_lost()
            if delivered:
                delays = self._backoff.delays(self._rng)
            delay = next(delays, None)
            if delay is None:
                log.error("upstream %s: giving up after the backoff's last attempt", route)
                return
            await asyncio.sleep(delay / 1000)

    async def _snapshots(self) -> None:
        """Fetch a depth snapshot for every symbol that wants one, once the book stream is
        open (spec §2.3 step 2 comes after step 1)."""
        delays = self._backoff.delays(self._rng)
        while True:
            await self._snapshot_wanted.wait()
            self._snapshot_wanted.clear()
            await self.connected["public"].wait()
            failed = False
            for symbol in self.needs_snapshot():
                try:
                    self.receive_snapshot(symbol, await self._fetch_depth(symbol))
                except (aiohttp.ClientError, TimeoutError, TransportError) as exc:
                    log.warning("upstream depth snapshot of %s failed: %s", symbol, exc)
                    failed = True
            if failed:
                delay = next(delays, None)
                await asyncio.sleep((delay or 0) / 1000)
                self._snapshot_wanted.set()
            else:
                delays = self._backoff.delays(self._rng)

    async def _fetch_depth(self, symbol: str) -> bytes:
        assert self._http is not None
        url = f"{self.rest_url}/fapi/v1/depth"
        params = {"symbol": symbol, "limit": str(_SNAPSHOT_LIMIT)}
        async with self._http.get(url, params=params) as response:
            body = await response.read()
            if response.status != 200:
                raise TransportError(f"GET {url} answered {response.status}: {body[:200]!r}")
            return body


def open_upstream(argument: str, symbols: Sequence[Symbol]) -> FollowedUpstream:
    """The source `serve --market upstream:URL[?symbols=A,B][&rest=URL][&trades=trade]`
    names (`trades=trade` follows the undocumented raw `@trade` instead of `@aggTrade`).

    Raises:
        ConfigurationError: not a ws:// or wss:// URL, an unknown option, or a symbol that
            exchangeInfo does not list.
    """
    parts = urlsplit(argument)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigurationError(f"upstream:{argument}: expected a ws:// or wss:// URL")
    options = parse_qs(parts.query)
    unknown = set(options) - {"symbols", "rest", "trades"}
    if unknown:
        raise ConfigurationError(
            f"upstream:{argument}: unknown option {sorted(unknown)[0]!r} (symbols, rest, trades)"
        )
    trades = options.get("trades", ["aggTrade"])[0]
    if trades not in ("aggTrade", "trade"):
        raise ConfigurationError(f"upstream:{argument}: trades must be aggTrade or trade")
    listed = {s.symbol: s for s in symbols}
    if "symbols" in options:
        names = [n.strip().upper() for n in options["symbols"][0].split(",") if n.strip()]
        missing = [n for n in names if n not in listed]
        if missing:
            raise ConfigurationError(f"upstream:{argument}: {missing[0]} is not in exchangeInfo")
        chosen = [listed[n] for n in names]
    else:
        chosen = [s for s in symbols if s.status == "TRADING"]
    stream_root = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    if "rest" in options:
        rest = options["rest"][0]
    elif parts.hostname in _BINANCE_STREAM_HOSTS:
        rest = _BINANCE_REST
    else:
        rest = urlunsplit(("https" if parts.scheme == "wss" else "http", parts.netloc, "", "", ""))
    return FollowedUpstream(
        chosen, stream_root, rest, trades="trade" if trades == "trade" else "aggTrade"
    )
