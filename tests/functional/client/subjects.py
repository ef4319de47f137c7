"""The four subjects of the fault scenarios, behind one interface (`scenarios.Subject`).

Each adapter uses its library the way its documentation and `real-clients.md` show, pointed
at the venue through URL attributes only; nothing inside a library is patched. A consumer
task takes what the library delivers and reports it to the `Sink`; `Sink.gate()` before each
take is how a scenario stalls the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from typing import Any

import ccxt.pro as ccxtpro
from binance_common.configuration import ConfigurationRestAPI, ConfigurationWebSocketStreams
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)

from tests.functional.client.scenarios import OurSubject, Profile, Sink, Venue, seq_of, stop_task

with warnings.catch_warnings():
    # python-binance imports `websockets.legacy`, which warns on import (its code, not ours).
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from binance import AsyncClient, BinanceSocketManager
    from binance.exceptions import ReadLoopClosed

SDK_TIMEOUT_S = 5.0


class PythonBinanceSubject:
    """python-binance 1.0.37: `BinanceSocketManager.futures_user_socket()` as shipped, with
    `user_timeout` (its keepalive timer, 5 minutes by default) set to the profile's period."""

    name = "python-binance"

    def __init__(self) -> None:
        self.client: Any = None
        self.socket: Any = None
        self._consumer: asyncio.Task[None] | None = None
        self._venue: Venue | None = None

    async def start(self, venue: Venue, sink: Sink, profile: Profile) -> None:
        self._venue = venue

        class LocalAsyncClient(AsyncClient):  # type: ignore[misc]
            API_URL = f"{venue.url}/api"
            FUTURES_URL = f"{venue.url}/fapi"

        class LocalBSM(BinanceSocketManager):  # type: ignore[misc]
            FSTREAM_URL = f"{venue.ws}/"

        self.client = await LocalAsyncClient.create(venue.api_key, venue.secret_key)
        manager = LocalBSM(self.client, user_timeout=profile.keepalive_s)
        self.socket = manager.futures_user_socket()
        await self.socket.__aenter__()  # handshake done: the server has subscribed it
        self._consumer = asyncio.create_task(self._consume(self.socket, sink))

    @staticmethod
    async def _consume(socket: Any, sink: Sink) -> None:
        try:
            while True:
                await sink.gate()
                message = await socket.recv()
                kind = message.get("e")
                if kind == "ORDER_TRADE_UPDATE":
                    seq = seq_of(str(message["o"]["c"]))
                    if seq is not None:
                        sink.event(seq)
                elif kind == "error":
                    sink.hint(f"error dict: {message.get('type')}")
                elif kind == "listenKeyExpired":
                    sink.hint("listenKeyExpired (raw dict)")
        except ReadLoopClosed as exc:
            sink.hint(f"recv() raised ReadLoopClosed: {exc}")

    async def aclose(self) -> None:
        await stop_task(self._consumer)
        if self.socket is not None and self._venue is not None:
            # Its read loop notices the exit only when `ws.recv()` returns (a frame or its
            # 10 s timeout): start the exit, then close the server side to wake it.
            exiting = asyncio.create_task(self.socket.__aexit__(None, None, None))
            await asyncio.sleep(0)
            with contextlib.suppress(Exception):
                await self._venue.drop(1000, all_connections=True)
            try:
                await asyncio.wait_for(exiting, 4.0)
            except (TimeoutError, Exception):
                await stop_task(exiting)
        if self.client is not None:
            await self.client.close_connection()


class OfficialSdkSubject:
    """binance-sdk-derivatives-trading-usds-futures 18: REST key + `user_data()` stream; the
    caller schedules `keepalive_user_data_stream()` (the SDK does not), as its README says."""

    name = "official SDK"

    def __init__(self) -> None:
        self.streams: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self.notes: list[str] = []

    async def start(self, venue: Venue, sink: Sink, profile: Profile) -> None:
        client: Any = DerivativesTradingUsdsFutures(
            config_rest_api=ConfigurationRestAPI(
                api_key=venue.api_key,
                api_secret=venue.secret_key,
                base_path=venue.url,
                timeout=int(SDK_TIMEOUT_S * 1000),
                retries=0,
            ),
            config_ws_streams=ConfigurationWebSocketStreams(
                stream_url=venue.ws, reconnect_delay=500
            ),
        )
        rest = client.rest_api
        key = (await asyncio.to_thread(rest.start_user_data_stream)).data().listen_key
        self.streams = await client.websocket_streams.create_connection()
        received: asyncio.Queue[Any] = asyncio.Queue()
        handle = await self.streams.user_data(listenKey=key)
        handle.on("message", received.put_nowait)
        for connection in self.streams.connections:
            if connection.url_path == "private":
                self.streams.on_connection(
                    "close", lambda: sink.hint("connection 'close' callback"), connection
                )
        for _ in range(int(SDK_TIMEOUT_S / 0.01)):  # wait for the SUBSCRIBE acknowledgement
            if not any(c.pending_request for c in self.streams.connections):
                break
            await asyncio.sleep(0.01)
        self._tasks = [
            asyncio.create_task(self._consume(received, sink)),
            asyncio.create_task(self._keepalive(rest, profile.keepalive_s)),
        ]

    @staticmethod
    async def _consume(received: asyncio.Queue[Any], sink: Sink) -> None:
        while True:
            await sink.gate()
            event = (await received.get()).actual_instance
            kind = type(event).__name__
            if kind == "OrderTradeUpdate":
                seq = seq_of(str(event.o.c))
                if seq is not None:
                    sink.event(seq)
            elif kind == "ListenKeyExpired":
                sink.hint("ListenKeyExpired model")

    async def _keepalive(self, rest: Any, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await asyncio.to_thread(rest.keepalive_user_data_stream)
            except Exception as exc:  # what a user's scheduler would do: log, try again
                note = f"keepalive PUT failed: {type(exc).__name__}: {exc}"
                if note not in self.notes:
                    self.notes.append(note)

    async def aclose(self) -> None:
        for task in self._tasks:
            await stop_task(task)
        if self.streams is not None:
            await self.streams.close_connection()


class CcxtSubject:
    """ccxt.pro 4.5.90 `binanceusdm`: `watch_orders()` in a loop, as its manual shows; when
    a watch raises, the caller's next `watch_orders()` redials (real-clients.md), so the
    consumer calls it again at once. Its listenKey refresh (`listenKeyRefreshRate`, 20
    minutes shipped) runs at the profile's keepalive period."""

    name = "ccxt"

    def __init__(self) -> None:
        self.exchange: Any = None
        self._consumer: asyncio.Task[None] | None = None

    async def start(self, venue: Venue, sink: Sink, profile: Profile) -> None:
        exchange: Any = ccxtpro.binanceusdm(
            {
                "apiKey": venue.api_key,
                "secret": venue.secret_key,
                "options": {
                    "fetchCurrencies": False,
                    "listenKeyRefreshRate": round(profile.keepalive_s * 1000),
                },
            }
        )
        api = exchange.urls["api"]
        for name, url in list(api.items()):
            if isinstance(url, str) and "fapi.binance.com" in url:
                api[name] = url.replace("https://fapi.binance.com", venue.url)
        api["ws"]["linear"] = f"{venue.ws}/ws"
        self.exchange = exchange
        first = asyncio.create_task(exchange.watch_orders())
        # Ready once its stream connection is subscribed: the server counts it.
        for _ in range(int(profile.start_timeout_s / 0.01)):
            _, stats = await venue.admin("GET", "stats")
            if stats["connections"]["streams"]:
                break
            await asyncio.sleep(0.01)
        self._consumer = asyncio.create_task(self._consume(exchange, first, sink))

    @staticmethod
    async def _consume(exchange: Any, first: asyncio.Task[Any], sink: Sink) -> None:
        waiting: Any = first
        while True:
            await sink.gate()
            try:
                orders = await (waiting if waiting is not None else exchange.watch_orders())
            except Exception as exc:
                sink.hint(f"watch_orders raised {type(exc).__name__}")
                orders = []
            for order in orders:
                seq = seq_of(str(order.get("clientOrderId")))
                if seq is not None:
                    sink.event(seq)
            waiting = None

    async def aclose(self) -> None:
        await stop_task(self._consumer)
        if self.exchange is not None:
            await self.exchange.close()


SUBJECTS = {s.name: s for s in (OurSubject, PythonBinanceSubject, OfficialSdkSubject, CcxtSubject)}
