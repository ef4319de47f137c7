"""`userstream listen`: tail a user data stream (issue 3 item 8), part of the thin CLI.

It uses the public `UserDataStream` exactly as a user would. Without `--json`: a rich,
colourised line per event and a live health line. With `--json`: one raw Binance JSON event
per line on stdout (`encode_event`), gap markers as `{"gap":{...}}`; status on stderr.
Ctrl-C (SIGINT) or SIGTERM closes the stream (the listenKey is DELETEd) and exits 0.

With `--local` and no `--api-key` the demo account's key is read from the server's data
folder; keepalives follow the local server's clock (`serverclock.FollowingClock`), so a
`serve --clock virtual` that is advanced keeps the key alive as real time would. Until the
server answers, a line per attempt says so and the client's backoff paces the retries;
`--once` exits non-zero instead, also when a connection drops later.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.live import Live
from rich.text import Text

from userstream.cli.account import DEFAULT_DATA, demo_api_key, describe
from userstream.cli.common import CommandParsers
from userstream.cli.serverclock import FollowingClock
from userstream.client.backoff import Backoff
from userstream.client.endpoints import Endpoints
from userstream.client.health import ConnectionState, StreamGap, StreamHealth
from userstream.client.stream import UserDataStream
from userstream.clock import Clock
from userstream.event_summary import summarize
from userstream.exceptions import (
    ConfigurationError,
    InvalidAPIKey,
    TransportError,
)
from userstream.protocol.codec import encode_event, event_name
from userstream.protocol.events import Event
from userstream.storage import DB_FILENAME

_COLOURS: Final = {
    "ORDER_TRADE_UPDATE": "cyan",
    "TRADE_LITE": "bright_cyan",
    "ACCOUNT_UPDATE": "green",
    "MARGIN_CALL": "bold red",
    "ACCOUNT_CONFIG_UPDATE": "magenta",
    "STRATEGY_UPDATE": "blue",
    "GRID_UPDATE": "bright_blue",
    "CONDITIONAL_ORDER_TRIGGER_REJECT": "red",
    "ALGO_UPDATE": "yellow",
}


def add_parser(parsers: CommandParsers) -> None:
    listen = parsers.add(
        "listen",
        help="tail a user data stream (Binance, its testnet, or a local userstream serve)",
        example="userstream listen --local            "
        "# the demo account of ./data, on 127.0.0.1:8080",
    )
    listen.add_argument(
        "--api-key",
        default=None,
        help="the account's API key; with --local, default: the demo account's key read "
        "from --data (other keys: `userstream account list`)",
    )
    venue = listen.add_mutually_exclusive_group()
    venue.add_argument("--testnet", action="store_true", help="Binance futures testnet")
    venue.add_argument("--local", action="store_true", help="a local `userstream serve`")
    listen.add_argument("--host", default="127.0.0.1", help="with --local")
    listen.add_argument("--port", type=int, default=8080, help="with --local")
    listen.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="with --local and no --api-key: the server's data folder, read for the demo key",
    )
    listen.add_argument("--base-url", default=None, help="REST root URL (overrides the venue's)")
    listen.add_argument("--stream-url", default=None, help="stream root URL")
    listen.add_argument("--ws-api-url", default=None, help="WebSocket API URL")
    listen.add_argument(
        "--key-transport",
        choices=("rest", "ws_api"),
        default="rest",
        help="create and keep alive the listenKey over REST or the WebSocket API",
    )
    listen.add_argument("--json", action="store_true", help="one event per line, for piping")
    listen.add_argument(
        "--once",
        action="store_true",
        help="no retries: exit non-zero with one line when the server cannot be reached or "
        "the connection drops (default: retry without limit, with backoff)",
    )


def endpoints_from(args: argparse.Namespace) -> Endpoints:
    if args.local:
        base = Endpoints.local(args.host, args.port)
    elif args.testnet:
        base = Endpoints.testnet()
    else:
        base = Endpoints.production()
    return Endpoints(
        args.base_url or base.rest_url,
        args.ws_api_url or base.ws_api_url,
        args.stream_url or base.stream_url,
    )


def api_key_from(args: argparse.Namespace, err: Console) -> str:
    if args.api_key:
        return str(args.api_key)
    if not args.local:
        raise ConfigurationError(
            "give --api-key (your Binance API key; for a local server: --local, which reads "
            "the demo account's key from ./data, or a key from `userstream account list`)"
        )
    key = demo_api_key(args.data)
    err.print(
        f"userstream listen: the demo account's API key, from {args.data / DB_FILENAME}",
        highlight=False,
    )
    return key


def listen(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_listen(args))
    except BrokenPipeError:
        # The reader went away (`listen --json | head`): stop quietly, as `cat` does, and
        # keep the interpreter's last flush of stdout from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


async def _listen(args: argparse.Namespace) -> int:
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    watch: _Watch | None = None
    try:
        api_key = api_key_from(args, err)
        endpoints = endpoints_from(args)
        async with contextlib.AsyncExitStack() as stack:
            # A local server may run on virtual time: keepalives follow its clock.
            clock: Clock | None = None
            if args.local and not args.base_url:
                clock = await stack.enter_async_context(FollowingClock(endpoints.rest_url))
            watch = _Watch(err, main, args.json, args.once)
            stream = await _open(args, api_key, endpoints, clock, err, watch)
            stack.push_async_callback(stream.aclose)
            err.print("[green]userstream listen: connected[/green]")
            if args.json:
                await _json_tail(stream)
            else:
                await _rich_tail(stream)
    except asyncio.CancelledError:
        if watch is not None and watch.lost is not None:
            err.print(f"[red]error:[/red] connection lost ({watch.lost}); not retrying (--once)")
            return 1
        err.print("userstream listen: stopped")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


async def _open(
    args: argparse.Namespace,
    api_key: str,
    endpoints: Endpoints,
    clock: Clock | None,
    err: Console,
    watch: _Watch,
) -> UserDataStream:
    """A started stream. Until the server answers, retry on the client's own backoff
    (`Backoff()`: at once, then 0.25 s doubling to 3 s for 90 s and to 30 s after, jittered),
    one line per attempt; with `--once`, exit at the first failure."""
    delays = Backoff().delays(random.Random())
    while True:
        stream = UserDataStream(
            api_key,
            endpoints=endpoints,
            key_transport=args.key_transport,
            clock=clock,
            on_state_change=watch.changed,
        )
        try:
            await stream.start()
            return stream
        except TransportError as error:
            where = f"server at {endpoints.rest_url} not reachable ({describe(error)})"
            if args.once:
                raise ConfigurationError(f"{where}; not retrying (--once)") from None
            delay_s = next(delays) / 1000
            when = f"in {delay_s:.1f} s" if delay_s else "now"
            err.print(f"userstream listen: {where}, retrying {when}")
            await asyncio.sleep(delay_s)
        except InvalidAPIKey as error:
            where = "this server" if args.local else "Binance"
            raise ConfigurationError(
                f"{error.msg} ({error.code}): {where} does not know this API key"
                + (" (`userstream account list` shows the local ones)" if args.local else "")
            ) from None


class _Watch:
    """Sees the stream leave CONNECTED (a drop, or a key that had to be replaced): says so
    on stderr with `--json` (the rich tail's health line shows it), and with `--once` ends
    the run (`lost` names why) instead of letting the client reconnect."""

    def __init__(self, err: Console, main: asyncio.Task[int], verbose: bool, once: bool) -> None:
        self._err = err
        self._main = main
        self._verbose = verbose
        self._once = once
        self._away = False
        self.lost: str | None = None

    def changed(self, old: ConnectionState, new: ConnectionState, reason: str) -> None:
        away = (ConnectionState.CONNECTING, ConnectionState.RECONNECTING)
        if old is ConnectionState.CONNECTED and new in away:
            self._away = True
            if self._once:
                self.lost = reason
                self._main.cancel()
            elif self._verbose:
                self._err.print(f"userstream listen: connection lost ({reason}), reconnecting")
        elif new is ConnectionState.CONNECTED and self._away:
            self._away = False
            if self._verbose:
                self._err.print("userstream listen: connected again")


async def _json_tail(stream: UserDataStream) -> None:
    out = sys.stdout
    async for item in stream:
        if isinstance(item, StreamGap):
            line = json.dumps(
                {
                    "gap": {
                        "sinceMs": item.since_ms,
                        "reason": item.reason.value,
                        "detail": item.detail,
                    }
                }
            )
        else:
            line = encode_event(item).decode()
        out.write(line + "\n")
        out.flush()


async def _rich_tail(stream: UserDataStream) -> None:
    console = Console()
    with Live(get_renderable=lambda: _health_line(stream.health), console=console) as live:
        async for item in stream:
            console.print(_event_line(item))
            live.refresh()


def _event_line(item: Event | StreamGap) -> Text:
    if isinstance(item, StreamGap):
        return Text(
            f"{_clock(item.since_ms)} ── gap: events since then may be missing "
            f"({item.reason.value}{': ' + item.detail if item.detail else ''}) ── resynchronise",
            style="bold white on red",
        )
    name = event_name(item)
    text = Text()
    text.append(f"{_clock(item.event_time)} ", style="dim")
    text.append(f"{name:<24}", style=_COLOURS.get(name, "white"))
    text.append(" " + summarize(item), style="default")
    return text


def _clock(event_time_ms: int) -> str:
    moment = datetime.fromtimestamp(event_time_ms / 1000, tz=UTC)
    return moment.strftime("%H:%M:%S.") + f"{event_time_ms % 1000:03d}"


def _health_line(health: StreamHealth) -> Text:
    def age(ms: int | None) -> str:
        return "-" if ms is None else f"{ms / 1000:.0f}s"

    keepalive = {None: "-", True: "ok", False: "FAILED"}[health.last_keepalive_ok]
    return Text(
        f"[{health.state.value}] key age {age(health.key_age_ms)} · keepalive {keepalive} · "
        f"connection {age(health.connection_age_ms)} · events {health.events} · "
        f"reconnects {health.reconnects} · gaps {health.gaps} · buffered {health.buffered}"
        + (f" · last: {health.last_reason}" if health.last_reason else ""),
        style="reverse",
    )
