"""`userstream account watch`: the account mirror as a live terminal view (issue 14 item 3).

It uses the public `AccountMirror` exactly as a user would: balances, positions (with the
unrealized PnL at the latest streamed `markPrice@1s`, `watch_marks`), open orders, recent
fills and the mirror's and the stream's health, redrawn on every change. `--json` prints one
consistent snapshot of the same as one JSON object and exits.

With `--local` and no keys, the demo account's API and secret keys are read from the
server's data folder (as `userstream listen --local` does). Ctrl-C or SIGTERM closes the
mirror (the listenKey is DELETEd) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from userstream import list_accounts
from userstream.accounts import Account
from userstream.cli.account import DEFAULT_DATA, DEMO_NAME
from userstream.cli.common import CommandParsers
from userstream.cli.watch_marks import MarkFollower
from userstream.client.endpoints import Endpoints
from userstream.client.mirror import AccountMirror
from userstream.client.mirror_views import MirrorHealth
from userstream.exceptions import ConfigurationError

SECRET_ENV = "USERSTREAM_SECRET_KEY"
START_TIMEOUT_S = 30.0
_FILLS_SHOWN = 10


def add_parser(parsers: CommandParsers, parent: Any) -> None:
    watch = parsers.add(
        "watch",
        help="a live view of an account's balances, positions and open orders (AccountMirror)",
        example="userstream account watch --local        # the demo account of ./data",
        parent=("account", parent),
    )
    watch.add_argument("--api-key", default=None, help="the account's API key")
    watch.add_argument(
        "--secret-key",
        default=None,
        help=f"its secret key, for the signed REST snapshots (else ${SECRET_ENV})",
    )
    venue = watch.add_mutually_exclusive_group()
    venue.add_argument("--testnet", action="store_true", help="Binance futures testnet")
    venue.add_argument("--local", action="store_true", help="a local `userstream serve`")
    watch.add_argument("--host", default="127.0.0.1", help="with --local")
    watch.add_argument("--port", type=int, default=8080, help="with --local")
    watch.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="with --local and no --api-key: the server's data folder (the demo account)",
    )
    watch.add_argument("--base-url", default=None, help="REST root URL (overrides the venue's)")
    watch.add_argument("--stream-url", default=None, help="stream root URL")
    watch.add_argument("--json", action="store_true", help="print one snapshot as JSON and exit")
    watch.add_argument(
        "--self-check",
        action="store_true",
        help="compare the mirror with a fresh REST snapshot after every resync",
    )


def _endpoints(args: argparse.Namespace) -> Endpoints:
    if args.local:
        base = Endpoints.local(args.host, args.port)
    elif args.testnet:
        base = Endpoints.testnet()
    else:
        base = Endpoints.production()
    return Endpoints(
        args.base_url or base.rest_url, base.ws_api_url, args.stream_url or base.stream_url
    )


def _keys(args: argparse.Namespace) -> tuple[str, str]:
    if args.api_key:
        secret = args.secret_key or os.environ.get(SECRET_ENV)
        if not secret:
            raise ConfigurationError(f"--api-key needs --secret-key or ${SECRET_ENV}")
        return str(args.api_key), secret
    if not args.local:
        raise ConfigurationError("give --api-key and --secret-key (or --local for the demo)")
    demo: Account | None = next((a for a in list_accounts(args.data) if a.name == DEMO_NAME), None)
    if demo is None:
        raise ConfigurationError(f"no demo account in {args.data}; give --api-key")
    return demo.api_key, demo.secret_key


def watch(args: argparse.Namespace) -> int:
    return asyncio.run(_watch(args))


def snapshot_json(mirror: AccountMirror) -> bytes:
    """The mirror's state and health as one JSON object (amounts as strings)."""
    state = mirror.state()
    return msgspec.json.encode(
        {
            "balances": list(state.balances.values()),
            "positions": list(state.positions.values()),
            "openOrders": list(state.open_orders.values()),
            "algoOrders": list((state.algo_orders or {}).values()),
            "leverage": dict(state.leverage or {}),
            "multiAssets": state.multi_assets,
            "health": mirror.health,
        }
    )


async def _watch(args: argparse.Namespace) -> int:
    api_key, secret = _keys(args)
    endpoints = _endpoints(args)
    mirror = AccountMirror(api_key, secret, endpoints=endpoints, self_check=args.self_check)
    async with asyncio.timeout(START_TIMEOUT_S):
        await mirror.start()
    try:
        if args.json:
            await mirror.wait_consistent(START_TIMEOUT_S)
            print(snapshot_json(mirror).decode(), flush=True)
            return 0
        await _live(mirror, MarkFollower(endpoints.stream_url, lambda: held_symbols(mirror)))
        return 0
    finally:
        await mirror.aclose()


def held_symbols(mirror: AccountMirror) -> set[str]:
    return {p.symbol for p in mirror.positions.values() if p.position_amount != 0}


async def _live(mirror: AccountMirror, marks: MarkFollower) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console = Console()

    async def redraw(live: Live) -> None:
        async for _ in mirror.changes():
            live.update(render(mirror, marks.marks))

    with Live(render(mirror, marks.marks), console=console, refresh_per_second=4) as live:
        task = asyncio.create_task(redraw(live))
        ticker = asyncio.create_task(_tick(live, mirror, marks.marks))
        follower = asyncio.create_task(marks.run())
        try:
            await stop.wait()
        finally:
            for t in (task, ticker, follower):
                t.cancel()
            for t in (task, ticker, follower):
                with contextlib.suppress(asyncio.CancelledError):
                    await t


async def _tick(live: Live, mirror: AccountMirror, marks: Mapping[str, Decimal]) -> None:
    while True:  # the health ages and the marks move without changes
        await asyncio.sleep(1.0)
        live.update(render(mirror, marks))


def _time(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]


def render(mirror: AccountMirror, marks: Mapping[str, Decimal] | None = None) -> Group:
    """The whole view: five tables and a health line; uPnL at `marks` (the latest streamed
    mark) where it has the symbol, else at the mirror's snapshot mark."""
    balances = Table(title="balances", expand=True)
    for column in ("asset", "wallet", "cross wallet"):
        balances.add_column(column, justify="right" if column != "asset" else "left")
    for b in sorted(mirror.balances.values(), key=lambda b: b.asset):
        balances.add_row(b.asset, str(b.wallet_balance), str(b.cross_wallet_balance))
    positions = Table(title="positions", expand=True)
    for column in ("symbol", "side", "amount", "entry", "mark", "uPnL at mark", "margin"):
        positions.add_column(column)
    for p in sorted(mirror.positions.values(), key=lambda p: (p.symbol, p.position_side)):
        mark = (marks or {}).get(p.symbol) or mirror.mark_prices.get(p.symbol)
        upnl = mirror.unrealized_pnl(p, mark)
        positions.add_row(
            p.symbol,
            p.position_side,
            str(p.position_amount),
            str(p.entry_price),
            str(mark or "-"),
            Text(str(upnl), style="green" if upnl >= 0 else "red"),
            p.margin_type or "-",
        )
    orders = Table(title="open orders", expand=True)
    for column in ("symbol", "id", "client id", "side", "type", "price", "qty", "filled", "status"):
        orders.add_column(column)
    for o in sorted(mirror.open_orders.values(), key=lambda o: o.order_id):
        orders.add_row(
            o.symbol,
            str(o.order_id),
            o.client_order_id,
            o.side,
            o.order_type,
            str(o.price),
            str(o.original_quantity),
            str(o.filled_quantity),
            o.status,
        )
    fills = Table(title="recent fills", expand=True)
    for column in ("time", "symbol", "side", "qty", "price", "fee", "realized", "status"):
        fills.add_column(column)
    for fill in mirror.recent_fills[-_FILLS_SHOWN:]:
        u = fill.order
        fills.add_row(
            _time(u.trade_time),
            u.symbol,
            u.side,
            str(u.last_filled_quantity),
            str(u.last_filled_price),
            str(u.commission or 0),
            str(u.realized_profit),
            u.order_status,
        )
    return Group(balances, positions, orders, fills, Text(health_line(mirror.health, mirror)))


def health_line(health: MirrorHealth, mirror: AccountMirror) -> str:
    stream = mirror.stream.health
    state = "consistent" if health.consistent else "resyncing"
    reasons = ", ".join(health.resync_reasons[-3:]) or "-"
    check = (
        "-"
        if health.last_check_ms is None
        else ("equal" if not health.last_check_differences else "DIFFERENT")
    )
    return (
        f"{state} · stream {stream.state.value} · snapshot {_time(health.last_snapshot_ms)} · "
        f"{health.events_applied} events since · resyncs {health.resyncs} ({reasons}) · "
        f"last resync {health.last_resync_ms if health.last_resync_ms is not None else '-'} ms "
        f"· self-check {check}"
    )
