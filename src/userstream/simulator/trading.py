"""The demo trader's I/O: a venue reached over signed REST, and the loop that paces it.

`RestTradingPort` is a bot like any other: it reads the book tops
(`GET /fapi/v1/ticker/bookTicker`), its open orders (`GET /fapi/v1/openOrders`, per symbol:
weight 1 where the all-symbols call weighs 40) and its positions
(`GET /fapi/v2/positionRisk`), and sends the trader's commands as signed requests (HMAC-SHA256
over the query string, trading spec §1). Its `timestamp` follows the server's clock
(`GET /fapi/v1/time` at the start), so a server on a virtual clock accepts it. Every event the
account then receives is the venue's answer to those orders, and the REST snapshots agree
with the events by construction: the same engine produced both.

`EnginePort` is the same bot inside the server's process (`serve --demo`): it reads the
engine and the market directly and hands its commands to the venue's own entry point, which
publishes the events and saves the state as for a REST order.

`trade()` runs a `DemoTrader` against a port on a clock, `rate` decisions per second;
`TraderFeed` does so in a task of its own until `aclose()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol
from urllib.parse import urlencode

import aiohttp
import msgspec

from userstream.clock import Clock
from userstream.exceptions import BinanceAPIError, TransportError, UserStreamError
from userstream.market.types import MarketSource
from userstream.protocol.events import Side
from userstream.simulator.trader import DemoTrader, OpenOrder, Quote, TraderView, engine_view
from userstream.venue import Engine
from userstream.venue.commands import (
    CancelOrder,
    ChangeLeverage,
    Command,
    ModifyOrder,
    NewOrder,
)

__all__ = [
    "EnginePort",
    "RestTradingPort",
    "TradeStats",
    "TraderFeed",
    "TradingPort",
    "trade",
]

RECV_WINDOW_MS = 5_000


class TradingPort(Protocol):
    """Where the trader's commands go and its view comes from."""

    async def view(self) -> TraderView:
        """The book tops, the account's open orders and positions, now."""
        ...

    async def submit(self, command: Command) -> None:
        """Carry out `command`.

        Raises:
            BinanceAPIError: the venue refused it (its code and message).
            TransportError: the venue could not be reached.
        """
        ...


@dataclass(slots=True)
class TradeStats:
    """What a run did; `elapsed_s` on the run's clock."""

    decisions: int = 0
    accepted: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    """Refusals by Binance error code."""
    failures: int = 0
    """Views or commands that did not reach the venue."""
    last_error: str | None = None
    elapsed_s: float = 0.0
    by_command: Counter[str] = field(default_factory=Counter)
    """Accepted commands by kind."""

    def to_dict(self) -> dict[str, object]:
        return {
            "decisions": self.decisions,
            "accepted": self.accepted,
            "refused": {str(code): n for code, n in self.refused.items()},
            "failures": self.failures,
            "lastError": self.last_error,
            "elapsedS": round(self.elapsed_s, 3),
            "byCommand": dict(self.by_command),
        }


def command_name(command: Command) -> str:
    if isinstance(command, NewOrder):
        return f"{command.order_type.value} order"
    return type(command).__name__


async def trade(
    trader: DemoTrader,
    port: TradingPort,
    clock: Clock,
    *,
    rate: float,
    duration_s: float | None,
    stop: asyncio.Event | None = None,
    on_decision: Callable[[TradeStats], None] | None = None,
) -> TradeStats:
    """One decision every `1 / rate` seconds on `clock` until `duration_s` (or forever when
    None) or `stop`. A refusal or a failure is counted and the run goes on: the next
    decision reads a fresh view."""
    if rate <= 0:
        raise ValueError("rate must be > 0")
    stats = TradeStats()
    start = clock.now_ms()
    period_ms = max(1, round(1000 / rate))
    due = start
    while stop is None or not stop.is_set():
        now = clock.now_ms()
        stats.elapsed_s = (now - start) / 1000
        if duration_s is not None and stats.elapsed_s >= duration_s:
            break
        if now < due:
            await _sleep_until(clock, due, stop)
            continue
        due += period_ms
        await _decide(trader, port, stats)
        if on_decision is not None:
            on_decision(stats)
    stats.elapsed_s = (clock.now_ms() - start) / 1000
    return stats


async def _decide(trader: DemoTrader, port: TradingPort, stats: TradeStats) -> None:
    try:
        command = trader.decide(await port.view())
    except UserStreamError as exc:
        stats.failures += 1
        stats.last_error = f"view: {exc}"
        return
    if command is None:
        return
    stats.decisions += 1
    try:
        await port.submit(command)
    except BinanceAPIError as exc:
        stats.refused[exc.code] += 1
        stats.last_error = f"{command_name(command)}: {exc}"
    except UserStreamError as exc:
        stats.failures += 1
        stats.last_error = f"{command_name(command)}: {exc}"
    else:
        stats.accepted += 1
        stats.by_command[command_name(command)] += 1


async def _sleep_until(clock: Clock, due_ms: int, stop: asyncio.Event | None) -> None:
    if stop is None:
        await clock.sleep_until(due_ms)
        return
    sleeper = asyncio.ensure_future(clock.sleep_until(due_ms))
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, waiter):
            task.cancel()
        await asyncio.gather(sleeper, waiter, return_exceptions=True)


class TraderFeed:
    """`trade()` in a task until `aclose()` (`serve --demo`)."""

    def __init__(self, trader: DemoTrader, port: TradingPort, clock: Clock, rate: float) -> None:
        self._stop = asyncio.Event()
        self.stats = TradeStats()
        self._task = asyncio.get_running_loop().create_task(
            trade(trader, port, clock, rate=rate, duration_s=None, stop=self._stop),
            name="userstream-demo-trader",
        )

    async def aclose(self) -> None:
        self._stop.set()
        self.stats = await self._task


Execute = Callable[[Command, int], Awaitable[object]]
"""The venue's entry point for one account: apply a command at `now_ms`, publish its events,
return its result; raises `BinanceAPIError` when the venue refuses."""


class EnginePort:
    """An account of the engine in this process: views straight from `engine` and
    `market`, commands through `execute` at `clock`'s time (the server's clock)."""

    def __init__(
        self,
        engine: Engine,
        market: MarketSource,
        account_id: int,
        execute: Execute,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._market = market
        self._account_id = account_id
        self._execute = execute
        self._clock = clock

    async def view(self) -> TraderView:
        return engine_view(self._engine, self._market, self._account_id)

    async def submit(self, command: Command) -> None:
        await self._execute(command, self._clock.now_ms())


# --- the venue over signed REST --------------------------------------------------------------


class _BookTicker(msgspec.Struct):
    symbol: str
    bidPrice: Decimal  # noqa: N815 - Binance's keys
    askPrice: Decimal  # noqa: N815


class _OpenOrder(msgspec.Struct):
    symbol: str
    orderId: int  # noqa: N815
    side: Side
    price: Decimal
    origQty: Decimal  # noqa: N815
    executedQty: Decimal  # noqa: N815


class _Position(msgspec.Struct):
    symbol: str
    positionAmt: Decimal  # noqa: N815


class _ServerTime(msgspec.Struct):
    serverTime: int  # noqa: N815


class _Error(msgspec.Struct):
    code: int
    msg: str


def _text(value: Decimal) -> str:
    """A decimal as Binance reads it: plain notation, no exponent."""
    return format(value.normalize(), "f")


class RestTradingPort:
    """The venue at `base_url`, as the account with `api_key`/`secret_key` sees it.

    The caller owns `session`. `symbols` are the ones the trader trades; `clock` times the
    requests (offset to the server's time on the first signed one)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        secret_key: str,
        symbols: Sequence[str],
        clock: Clock,
    ) -> None:
        self._session = session
        self._clock = clock
        self._base = base_url.rstrip("/")
        self._headers = {"X-MBX-APIKEY": api_key}
        self._secret = secret_key.encode()
        self._symbols = list(symbols)
        self._offset_ms: int | None = None

    async def view(self) -> TraderView:
        quotes = []
        orders: list[OpenOrder] = []
        for symbol in self._symbols:
            ticker = await self._call("GET", "/fapi/v1/ticker/bookTicker", {"symbol": symbol})
            top = msgspec.json.decode(ticker, type=_BookTicker)
            quotes.append(Quote(top.symbol, top.bidPrice, top.askPrice))
            raw = await self._signed("GET", "/fapi/v1/openOrders", {"symbol": symbol})
            orders += [
                OpenOrder(o.symbol, o.orderId, o.side, o.price, o.origQty - o.executedQty)
                for o in msgspec.json.decode(raw, type=list[_OpenOrder])
            ]
        raw = await self._signed("GET", "/fapi/v2/positionRisk", {})
        positions = {
            p.symbol: p.positionAmt
            for p in msgspec.json.decode(raw, type=list[_Position])
            if p.positionAmt
        }
        orders.sort(key=lambda o: o.order_id)
        return TraderView(quotes, orders, positions)

    async def submit(self, command: Command) -> None:
        match command:
            case NewOrder():
                params = {
                    "symbol": command.symbol,
                    "side": command.side.value,
                    "type": command.order_type.value,
                }
                if command.quantity is not None:
                    params["quantity"] = _text(command.quantity)
                if command.price is not None:
                    params["price"] = _text(command.price)
                if command.time_in_force is not None:
                    params["timeInForce"] = command.time_in_force.value
                if command.new_client_order_id is not None:
                    params["newClientOrderId"] = command.new_client_order_id
                await self._signed("POST", "/fapi/v1/order", params)
            case CancelOrder(order_id=int(order_id)):
                params = {"symbol": command.symbol, "orderId": str(order_id)}
                await self._signed("DELETE", "/fapi/v1/order", params)
            case ModifyOrder(
                order_id=int(order_id), quantity=Decimal() as qty, price=Decimal() as px
            ):
                params = {
                    "symbol": command.symbol,
                    "side": command.side.value,
                    "orderId": str(order_id),
                    "quantity": _text(qty),
                    "price": _text(px),
                }
                await self._signed("PUT", "/fapi/v1/order", params)
            case ChangeLeverage():
                params = {"symbol": command.symbol, "leverage": str(command.leverage)}
                await self._signed("POST", "/fapi/v1/leverage", params)
            case _:
                raise ValueError(f"the demo trader does not send {type(command).__name__}")

    async def _signed(self, method: str, path: str, params: dict[str, str]) -> bytes:
        if self._offset_ms is None:
            raw = await self._call("GET", "/fapi/v1/time", {})
            server_ms = msgspec.json.decode(raw, type=_ServerTime).serverTime
            self._offset_ms = server_ms - self._clock.now_ms()
        query = urlencode(
            {
                **params,
                "recvWindow": str(RECV_WINDOW_MS),
                "timestamp": str(self._clock.now_ms() + self._offset_ms),
            }
        )
        signature = hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
        return await self._call(method, path, f"{query}&signature={signature}")

    async def _call(self, method: str, path: str, params: dict[str, str] | str) -> bytes:
        query = params if isinstance(params, str) else urlencode(params)
        url = f"{self._base}{path}?{query}" if query else f"{self._base}{path}"
        try:
            async with self._session.request(method, url, headers=self._headers) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransportError(f"{method} {path}: {exc!r}") from None
        if status != 200:
            try:
                error = msgspec.json.decode(body, type=_Error)
            except msgspec.DecodeError:
                raise TransportError(f"{method} {path}: HTTP {status}") from None
            raise BinanceAPIError(error.code, error.msg, status)
        return body
