"""`userstream simulate`: accounts that trade through a server's venue (issue 12 item 9),
or fabricated activity through the admin intake (issue 5).

By default each account the run creates (funded with `--funds` USDT by an admin deposit)
trades with the seeded demo strategy over signed REST, like any bot: limit orders around the
market, market orders, cancels, amends, leverage changes, `--rate` decisions per second in
total; every event on its stream is then the venue's answer to its orders. With
`--fabricate`, events are made up instead, as below.

Against a running server (`--url`, admin token from `--admin-token` or
$USERSTREAM_ADMIN_TOKEN) the accounts are created with `POST /admin/v1/accounts` (or given
with `--account-ids`) and events go through `POST /admin/v1/accounts/{id}/events`, one batch
per account per tick. With `--in-process` a server is started in this process (its URL and
the accounts' keys are printed so a client can connect) and events go through its
`bus.publish`, the same intake the admin API uses. Either way the run stops by itself after
`--duration` seconds (or on Ctrl-C) and prints a summary; `--json` prints it as JSON instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from userstream import ConfigurationError, Server, ServerConfig, SystemClock
from userstream.cli.account import remote_accounts
from userstream.cli.common import CommandParsers, self_command
from userstream.protocol.exchange_info import Symbol
from userstream.simulator import Simulator
from userstream.simulator.driver import RunStats, Sink, drive
from userstream.simulator.publisher import AdminPublisher
from userstream.simulator.trader import DemoTrader
from userstream.simulator.trading import (
    EnginePort,
    RestTradingPort,
    TraderFeed,
    TradeStats,
    trade,
)
from userstream.symbols import load_symbol_table
from userstream.venue import Command, Deposit

__all__ = ["add_parser", "simulate", "start_demo"]

TOP_ACCOUNTS = 10
DEMO_SEED = 2026
DEMO_NAME = "demo"
DEMO_SYMBOLS = ("BTCUSDT", "ETHUSDT")
DEMO_FUNDS = Decimal(100_000)
# On an empty data directory the server's first account is the demo account (id 1).
FIRST_ACCOUNT_ID = 1


def add_parser(parsers: CommandParsers) -> None:
    sim = parsers.add(
        "simulate",
        help="trade through the venue (or publish made-up events) and print the accounts' keys",
        example="userstream simulate --url http://127.0.0.1:8080 --admin-token "
        "$(cat data/admin-token) --accounts 5 --rate 100 --duration 60",
    )
    target = sim.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8080")
    target.add_argument("--in-process", action="store_true", help="start a server in this process")
    sim.add_argument(
        "--admin-token",
        default=None,
        help="with --url; else $USERSTREAM_ADMIN_TOKEN (the server's is in DATA/admin-token)",
    )
    sim.add_argument("--host", default="127.0.0.1", help="with --in-process")
    sim.add_argument("--port", type=int, default=0, help="with --in-process; 0 picks a free port")
    sim.add_argument("--data", type=Path, default=None, help="with --in-process; else a temp dir")
    sim.add_argument("--accounts", type=int, default=1, help="accounts to create")
    sim.add_argument(
        "--account-ids",
        default=None,
        help="with --fabricate: comma-separated existing account ids instead",
    )
    sim.add_argument(
        "--fabricate",
        action="store_true",
        help="publish made-up events through the admin intake instead of trading",
    )
    sim.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="decisions/s in total (with --fabricate: events/s; 0 = unpaced)",
    )
    sim.add_argument(
        "--funds", type=_usdt, default=DEMO_FUNDS, help="USDT deposited into each account"
    )
    sim.add_argument(
        "--symbols",
        default=",".join(DEMO_SYMBOLS),
        help="comma-separated symbols the accounts trade",
    )
    sim.add_argument("--duration", type=float, default=10.0, help="seconds, then stop")
    sim.add_argument(
        "--seed", type=int, default=1, help="same seed, same events (for a given account list)"
    )
    sim.add_argument("--batch", type=int, default=500, help="events per tick when unpaced")
    sim.add_argument(
        "--json",
        action="store_true",
        help='no progress bar: a {"simAccount"} line per account first, a JSON summary last',
    )


def _usdt(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount (e.g. 10000)") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError("the amount must be positive")
    return value


def simulate(args: argparse.Namespace) -> int:
    account_ids = _parse_ids(args.account_ids)
    if account_ids is None and args.accounts < 1:
        raise ConfigurationError("--accounts must be at least 1")
    if args.rate < 0 or args.duration <= 0 or args.batch < 1:
        raise ConfigurationError("--rate must be >= 0, --duration > 0 and --batch >= 1")
    if not args.fabricate:
        if account_ids is not None:
            raise ConfigurationError("--account-ids needs --fabricate (trading needs the keys)")
        if args.rate == 0:
            raise ConfigurationError("trading needs --rate > 0 (0 = unpaced is for --fabricate)")
    token = args.admin_token or os.environ.get("USERSTREAM_ADMIN_TOKEN")
    if args.url and not token:
        raise ConfigurationError("--url needs --admin-token or $USERSTREAM_ADMIN_TOKEN")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(_simulate(args, account_ids, token or ""))
    return uvloop.run(_simulate(args, account_ids, token or ""))


async def start_demo(server: Server, rate: float) -> TraderFeed:
    """`userstream serve --demo`: the demo account trades through the venue, `rate`
    decisions (orders, cancels, amends, leverage changes) per second on the real clock, so
    every event on its stream is a consequence of its orders and its REST snapshots agree
    with them. Stop it with `await feed.aclose()`. Fabricated events still go through the
    admin intake (`POST /admin/v1/accounts/{id}/events`).

    On a restart the demo account made by the first start (account 1, named "demo") is
    found again, or a new one is made, and set as `server.demo_account` so that its keys are
    announced every time. An account with less than a tenth of `DEMO_FUNDS` USDT is topped
    up by a deposit (ACCOUNT_UPDATE m=DEPOSIT) first.

    Raises:
        ConfigurationError: the server serves no market to trade on.
    """
    if server.market is None:
        raise ConfigurationError(
            "--demo trades on the served market: drop --market none "
            "(with --clock virtual, pass --market synthetic)"
        )
    account = server.demo_account
    if account is None:
        account = await server.account(FIRST_ACCOUNT_ID)
        if account is None or account.name != DEMO_NAME:
            account = await server.create_account(DEMO_NAME)
        server.demo_account = account
    venue, account_id = server.venue, account.id

    async def execute(command: Command, now_ms: int) -> object:
        return await venue.execute(account_id, command, now_ms)

    usdt = [b for b in venue.engine.balances(account_id) if b.asset == "USDT"]
    if not usdt or usdt[0].wallet_balance < DEMO_FUNDS / 10:
        await execute(Deposit(asset="USDT", amount=DEMO_FUNDS), server.clock.now_ms())
    source = server.market.source
    traded = set(source.symbols)
    names = [n for n in DEMO_SYMBOLS if n in traded] or sorted(traded)[: len(DEMO_SYMBOLS)]
    symbols = [
        s for s in load_symbol_table(server.config.symbols_file).symbols if s.symbol in names
    ]
    Console(stderr=True).print(
        f"demo: account {account.id} trades {', '.join(names)} through the venue, {rate:g} orders/s"
    )
    port = EnginePort(venue.engine, source, account_id, execute, server.clock)
    return TraderFeed(DemoTrader(symbols, seed=DEMO_SEED), port, SystemClock(), rate)


def _parse_ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigurationError(f"--account-ids: not a list of integers: {text!r}") from None
    if not ids or min(ids) < 1:
        raise ConfigurationError("--account-ids: give at least one positive id")
    return ids


async def _simulate(args: argparse.Namespace, account_ids: list[int] | None, token: str) -> int:
    if not args.fabricate:
        return await _simulate_trading(args, token)
    async with aiohttp.ClientSession() as session:
        if not args.in_process:
            publisher = AdminPublisher(session, args.url, token)
            accounts = await _accounts(publisher, args.url, token, args.accounts, account_ids)
            _announce_accounts(args, args.url, accounts)
            stats = await _run(args, [a["accountId"] for a in accounts], publisher.publish)
        else:
            async with _in_process_server(args) as server:
                publisher = AdminPublisher(session, server.url, server.admin_token)
                accounts = await _accounts(
                    publisher, server.url, server.admin_token, args.accounts, account_ids
                )
                _announce_accounts(args, server.url, accounts)
                stats = await _run(args, [a["accountId"] for a in accounts], server.publish)
    _report(args, stats, accounts)
    return 0 if stats.published and not stats.errors else 1


async def _simulate_trading(args: argparse.Namespace, token: str) -> int:
    names = [name.strip() for name in args.symbols.split(",") if name.strip()]
    symbols = [s for s in load_symbol_table().symbols if s.symbol in names]
    if not symbols:
        raise ConfigurationError(f"--symbols: none of {names} is a known symbol")
    async with aiohttp.ClientSession() as session:
        if not args.in_process:
            accounts, stats = await _trade_accounts(args, session, args.url, token, symbols)
        else:
            async with _in_process_server(args, market=True) as server:
                accounts, stats = await _trade_accounts(
                    args, session, server.url, server.admin_token, symbols
                )
    _report_trading(args, accounts, stats)
    accepted = sum(s.accepted for s in stats.values())
    return 0 if accepted and not any(s.failures for s in stats.values()) else 1


async def _trade_accounts(
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    symbols: list[Symbol],
) -> tuple[list[dict[str, Any]], dict[int, TradeStats]]:
    publisher = AdminPublisher(session, url, token)
    accounts = await _accounts(publisher, url, token, args.accounts, None)
    for account in accounts:
        await publisher.deposit(account["accountId"], "USDT", args.funds)
    _announce_accounts(args, url, accounts)
    clock = SystemClock()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if _in_main_thread() else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    rate = args.rate / len(accounts)
    runs = []
    for n, account in enumerate(accounts):
        port = RestTradingPort(
            session,
            url,
            account["apiKey"],
            account["secretKey"],
            [s.symbol for s in symbols],
            clock,
        )
        trader = DemoTrader(symbols, seed=args.seed + n)
        runs.append(trade(trader, port, clock, rate=rate, duration_s=args.duration, stop=stop))
    try:
        results = await asyncio.gather(*runs)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return accounts, {a["accountId"]: r for a, r in zip(accounts, results, strict=True)}


def _report_trading(
    args: argparse.Namespace, accounts: list[dict[str, Any]], stats: dict[int, TradeStats]
) -> None:
    total = TradeStats()
    for run in stats.values():
        total.decisions += run.decisions
        total.accepted += run.accepted
        total.refused.update(run.refused)
        total.failures += run.failures
        total.by_command.update(run.by_command)
        total.elapsed_s = max(total.elapsed_s, run.elapsed_s)
        total.last_error = run.last_error or total.last_error
    if args.json:
        by_account = {str(i): run.decisions for i, run in stats.items()}
        keys = [{"accountId": a["accountId"], "apiKey": a["apiKey"]} for a in accounts]
        summary = {**total.to_dict(), "byAccount": by_account, "accounts": keys}
        print(json.dumps(summary), flush=True)
        return
    table = Table(title="simulate (trading through the venue)", title_justify="left")
    table.add_column("commands")
    table.add_column("count", justify="right")
    for name, count in total.by_command.most_common():
        table.add_row(name, f"{count:,}")
    table.add_section()
    table.add_row("accepted", f"{total.accepted:,}")
    for code, count in total.refused.most_common():
        table.add_row(f"refused with {code}", f"{count:,}")
    table.add_row("not delivered", f"{total.failures:,}")
    table.add_row("elapsed", f"{total.elapsed_s:.2f} s")
    Console().print(table)
    if total.last_error:
        Console(stderr=True).print(f"[red]last error:[/red] {total.last_error}")


@contextlib.asynccontextmanager
async def _in_process_server(
    args: argparse.Namespace, market: bool = False
) -> AsyncIterator[Server]:
    with contextlib.ExitStack() as stack:
        data = args.data
        if data is None:
            data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="userstream-")))
        config = ServerConfig(
            host=args.host,
            port=args.port,
            data_dir=data,
            clock=SystemClock(),
            market="synthetic" if market else None,
        )
        async with Server(config) as server:
            print(f"userstream listening on {server.url}", flush=True)
            Console(stderr=True).print(
                f"streams: {server.ws_url}/private/ws?listenKey=<listenKey>  "
                f"(POST {server.url}/fapi/v1/listenKey with an apiKey below)"
            )
            yield server


async def _accounts(
    publisher: AdminPublisher, url: str, token: str, count: int, account_ids: list[int] | None
) -> list[dict[str, Any]]:
    """`{"accountId", "name", "apiKey"[, "secretKey"]}` of the run's accounts: created now
    (`POST /admin/v1/accounts`, with the secret, shown this once), or the existing ones named
    by `--account-ids` (`GET /admin/v1/accounts`)."""
    if account_ids is None:
        created = []
        for n in range(1, count + 1):
            credentials = await publisher.create_account(f"sim-{n}")
            created.append({"accountId": int(credentials["accountId"]), **credentials})
        return created
    known = {int(row["accountId"]): row for row in await remote_accounts(url, token)}
    # An id the server does not know stays in the run: its batches are refused and counted
    # as errors, as the summary reports.
    return [known.get(i, {"accountId": i, "name": None, "apiKey": None}) for i in account_ids]


def _announce_accounts(args: argparse.Namespace, url: str, accounts: list[dict[str, Any]]) -> None:
    """The keys a client connects with, before the run starts, so it can listen meanwhile."""
    if args.json:
        for account in accounts:
            print(json.dumps({"simAccount": account}), flush=True)
        return
    table = Table(title="accounts (listen to any of them while the run goes on)")
    table.add_column("account", justify="right")
    table.add_column("apiKey", no_wrap=True)
    for account in accounts:
        table.add_row(str(account["accountId"]), account["apiKey"] or "(no such account)")
    console = Console(soft_wrap=True, highlight=False)
    console.print(table)
    parts = urlsplit(url)
    local = f"--local --port {parts.port or 80}"
    if parts.hostname not in (None, "127.0.0.1"):
        local += f" --host {parts.hostname}"
    keys = [account["apiKey"] for account in accounts if account["apiKey"]]
    if keys:
        console.print(f"  {self_command()} listen {local} --api-key {keys[0]}")


async def _run(args: argparse.Namespace, ids: Sequence[int], sink: Sink) -> RunStats:
    simulator = Simulator(ids, seed=args.seed, rate=args.rate)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ctrl-C ends the run early, with a summary; only the main thread may catch signals.
    signals = (signal.SIGINT, signal.SIGTERM) if _in_main_thread() else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.json:
            return await drive(
                simulator,
                sink,
                SystemClock(),
                duration_s=args.duration,
                unpaced_batch=args.batch,
                stop=stop,
            )
        with Progress(
            TextColumn("[bold]simulate[/bold]"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task("", total=args.duration, status="")

            def show(stats: RunStats) -> None:
                status = f"{stats.published:,} events  {stats.rate:,.0f}/s  errors {stats.errors}"
                progress.update(task, completed=stats.elapsed_s, status=status)

            stats = await drive(
                simulator,
                sink,
                SystemClock(),
                duration_s=args.duration,
                unpaced_batch=args.batch,
                stop=stop,
                on_tick=show,
            )
            show(stats)
            return stats
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _report(args: argparse.Namespace, stats: RunStats, accounts: list[dict[str, Any]]) -> None:
    if args.json:
        keys = [{"accountId": a["accountId"], "apiKey": a["apiKey"]} for a in accounts]
        print(json.dumps({**stats.to_dict(), "accounts": keys}), flush=True)
        return
    console = Console()
    target = f"{stats.target_rate:,.0f}/s" if stats.target_rate > 0 else "unpaced"
    table = Table(title="simulate", title_justify="left")
    table.add_column("events by type")
    table.add_column("count", justify="right")
    for name, count in stats.by_type.most_common():
        table.add_row(name, f"{count:,}")
    table.add_section()
    table.add_row("total published", f"{stats.published:,}")
    table.add_row(f"rate achieved (target {target})", f"{stats.rate:,.1f}/s")
    table.add_row("elapsed", f"{stats.elapsed_s:.2f} s")
    table.add_row("batches", f"{stats.batches:,}")
    table.add_row("errors (events lost)", f"{stats.errors} ({stats.failed:,})")
    console.print(table)
    # The keys were printed before the run (a table of their own: 64 characters fit).
    by_account = Table(title_justify="left")
    by_account.add_column("account", no_wrap=True, min_width=7)
    by_account.add_column("events", justify="right", no_wrap=True, min_width=6)
    top = stats.by_account.most_common(TOP_ACCOUNTS)
    for account_id, count in top:
        by_account.add_row(str(account_id), f"{count:,}")
    if len(stats.by_account) > len(top):
        by_account.add_row(f"... {len(stats.by_account) - len(top)} more", "")
    console.print(by_account)
    if stats.last_error:
        Console(stderr=True).print(f"[red]last error:[/red] {stats.last_error}")
