"""`userstream listen`: tail a user data stream (issue 3 item 8), part of the thin CLI.

It uses the public `UserDataStream` exactly as a user would. Without `--json`: a rich,
colourised line per event and a live health line. With `--json`: one raw Binance JSON event
per line on stdout (`encode_event`), gap markers as `{"gap":{...}}`; status on stderr.
Ctrl-C (SIGINT) or SIGTERM closes the stream (the listenKey is DELETEd) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import UTC, datetime
from typing import Final

from rich.console import Console
from rich.live import Live
from rich.text import Text

from userstream.client.endpoints import Endpoints
from userstream.client.health import StreamGap, StreamHealth
from userstream.client.stream import UserDataStream
from userstream.event_summary import summarize
from userstream.protocol.codec import encode_event, event_name
from userstream.protocol.events import Event

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


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listen = commands.add_parser("listen", help="tail a user data stream (Binance or local)")
    listen.add_argument("--api-key", required=True)
    venue = listen.add_mutually_exclusive_group()
    venue.add_argument("--testnet", action="store_true", help="Binance futures testnet")
    venue.add_argument("--local", action="store_true", help="a local `userstream serve`")
    listen.add_argument("--host", default="127.0.0.1", help="with --local")
    listen.add_argument("--port", type=int, default=8080, help="with --local")
    listen.add_argument("--base-url", default=None, help="REST root URL")
    listen.add_argument("--stream-url", default=None, help="stream root URL")
    listen.add_argument("--ws-api-url", default=None, help="WebSocket API URL")
    listen.add_argument("--key-transport", choices=("rest", "ws_api"), default="rest")
    listen.add_argument("--json", action="store_true", help="one event per line, for piping")


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


def listen(args: argparse.Namespace) -> int:
    return asyncio.run(_listen(args))


async def _listen(args: argparse.Namespace) -> int:
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    stream = UserDataStream(
        args.api_key, endpoints=endpoints_from(args), key_transport=args.key_transport
    )
    err = Console(stderr=True)
    try:
        async with stream:
            err.print("[green]userstream listen: connected[/green]", highlight=False)
            if args.json:
                await _json_tail(stream)
            else:
                await _rich_tail(stream)
    except asyncio.CancelledError:
        err.print("userstream listen: stopped")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


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
            f"── gap since {item.since_ms}: {item.reason.value} {item.detail} ── resynchronise",
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
        f"reconnects {health.reconnects} · gaps {health.gaps} · buffered {health.buffered}",
        style="reverse",
    )
