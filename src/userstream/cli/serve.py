"""`userstream serve`: run the server (REST, WebSocket API, streams), with demo activity."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import signal
import socket
import sqlite3
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from userstream import (
    LOG_FORMATS,
    Clock,
    ConfigurationError,
    ManualClock,
    Server,
    ServerConfig,
    SystemClock,
    WeightLimits,
    configure_logging,
)
from userstream.cli import simulate
from userstream.cli.account import DEFAULT_DATA, describe
from userstream.cli.common import CommandParsers, self_command, self_python
from userstream.protocol.limits import OrderLimits
from userstream.server.stalls import StallLog

DEFAULT_GATEWAY_DRAIN_S = 10.0


def add_parser(parsers: CommandParsers) -> None:
    serve = parsers.add(
        "serve",
        help="run the server (REST, WebSocket API, streams, admin API) on one port",
        example="userstream serve --demo --port 8080 --data ./data",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one")
    serve.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="data folder (SQLite, admin-token)"
    )
    serve.add_argument(
        "--clock",
        choices=("real", "virtual"),
        default="real",
        help="virtual: time moves only through POST /admin/v1/clock/advance",
    )
    serve.add_argument(
        "--admin-token",
        default=None,
        help="admin API bearer token; else $USERSTREAM_ADMIN_TOKEN, else the one saved in "
        "DATA/admin-token (made on first start)",
    )
    serve.add_argument(
        "--symbols",
        default=None,
        help="JSON file of exchangeInfo symbols; else the bundled list",
    )
    serve.add_argument(
        "--weight-per-minute",
        type=int,
        default=WeightLimits().per_minute,
        help="REQUEST_WEIGHT per IP per UTC minute, REST and WebSocket API together",
    )
    serve.add_argument(
        "--max-unsent-bytes",
        type=int,
        default=ServerConfig().max_unsent_bytes,
        help="a stream consumer this far behind is disconnected (1008)",
    )
    serve.add_argument(
        "--log-level",
        default="WARNING",
        help="DEBUG, INFO, WARNING or ERROR (to standard error); info: connections, "
        "listenKeys, rejected requests; debug: every event batch",
    )
    serve.add_argument(
        "--log-format", choices=LOG_FORMATS, default="text", help="json: one object per line"
    )
    serve.add_argument("--tls-cert", type=Path, default=None, help="PEM chain: serve https/wss")
    serve.add_argument("--tls-key", type=Path, default=None, help="PEM key for --tls-cert")
    serve.add_argument(
        "--drain-seconds",
        type=float,
        default=None,
        help="on SIGTERM, fail /ready and close WebSockets with 1001 spread over this many "
        f"seconds (default {DEFAULT_GATEWAY_DRAIN_S:g} with --bus, else 0)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics (and /health, /ready) on this port instead of the main one",
    )
    serve.add_argument("--nats-creds", type=Path, default=None, help="with --bus: .creds file")
    serve.add_argument("--nats-tls-ca", type=Path, default=None, help="with --bus: CA (PEM)")
    serve.add_argument("--nats-tls-cert", type=Path, default=None, help="with --bus: client cert")
    serve.add_argument("--nats-tls-key", type=Path, default=None, help="with --bus: client key")
    serve.add_argument(
        "--bus",
        default=None,
        help="run as a gateway node on NATS JetStream (comma-separated URLs, "
        "nats://host:4222); without it, the embedded memory + SQLite backends",
    )
    serve.add_argument(
        "--reconcile-interval",
        type=float,
        default=ServerConfig().reconcile_interval_s,
        help="with --bus: seconds between re-reads of the listenKeys this node serves",
    )
    serve.add_argument(
        "--market",
        default=None,
        metavar="SPEC",
        help="the market served on /market and /public and the market REST: "
        "synthetic[:SEED], replay:DIR[?speed=N] (Binance's historical files; "
        "scripts/make_sample_market writes a sample), upstream:wss://HOST (follow another "
        "venue's market streams) or none; default synthetic, but none with --clock virtual (a jump "
        "of hours would generate every 100 ms of market in it: pass --market to have one)",
    )
    serve.add_argument(
        "--strict-routing",
        action="store_true",
        help="serve each stream only on its 2026 Binance route (/public: book streams, "
        "/market: the others, /ws and /stream as /public); a stream on the wrong route is "
        "ACKed and stays silent, as on Binance. Default: every stream on every path",
    )
    serve.add_argument(
        "--initial-balance",
        type=_amount,
        default=None,
        metavar="USDT",
        help="credit each new account (the demo account too) with this many USDT",
    )
    serve.add_argument(
        "--orders-per-10s",
        type=int,
        default=OrderLimits().per_10s,
        help="ORDERS limit per account per 10 seconds (exchangeInfo lists it)",
    )
    serve.add_argument(
        "--orders-per-minute",
        type=int,
        default=OrderLimits().per_minute,
        help="ORDERS limit per account per minute",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="the demo account trades through the venue (seeded orders, cancels, leverage)",
    )
    serve.add_argument(
        "--demo-rate", type=float, default=2.0, help="orders (and cancels...)/s with --demo"
    )


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount (e.g. 10000)") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError("the amount must be positive")
    return value


def serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)
    drain_s = args.drain_seconds
    if drain_s is None:
        drain_s = DEFAULT_GATEWAY_DRAIN_S if args.bus else 0.0
    clock: Clock = ManualClock() if args.clock == "virtual" else SystemClock()
    config = ServerConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data,
        clock=clock,
        admin_token=args.admin_token,
        symbols_file=args.symbols,
        weight_limits=WeightLimits(per_minute=args.weight_per_minute),
        max_unsent_bytes=args.max_unsent_bytes,
        bus=args.bus,
        reconcile_interval_s=args.reconcile_interval,
        tune_gc=True,
        nats_creds=args.nats_creds,
        nats_tls_ca=args.nats_tls_ca,
        nats_tls_cert=args.nats_tls_cert,
        nats_tls_key=args.nats_tls_key,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        drain_s=drain_s,
        metrics_port=args.metrics_port,
        market=_market_spec(args.market, clock),
        strict_routing=args.strict_routing,
        initial_balance=args.initial_balance,
        order_limits=OrderLimits(args.orders_per_10s, args.orders_per_minute),
    )
    if args.weight_per_minute < 1 or args.max_unsent_bytes < 1024:
        raise ConfigurationError("--weight-per-minute must be >= 1, --max-unsent-bytes >= 1024")
    if args.orders_per_10s < 1 or args.orders_per_minute < 1:
        raise ConfigurationError("--orders-per-10s and --orders-per-minute must be >= 1")
    if args.demo_rate <= 0:
        raise ConfigurationError("--demo-rate must be > 0")
    if args.bus is not None:
        check_bus(args.bus)
    demo_rate = args.demo_rate if args.demo else None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(_run_server(config, demo_rate))
    return uvloop.run(_run_server(config, demo_rate))


def _market_spec(given: str | None, clock: Clock) -> str | None:
    if given is None:
        return None if clock.is_virtual else "synthetic"
    return None if given == "none" else given


async def _run_server(config: ServerConfig, demo_rate: float | None = None) -> int:
    stalls = StallLog.from_env()
    server = Server(config)
    try:
        await server.start()
    except (OSError, sqlite3.Error) as error:
        await server.aclose()
        # A socket error names no file; a file error (admin-token, the database) does.
        if isinstance(error, OSError) and error.filename is None:
            raise _listen_error(config, error) from None
        raise _data_folder_error(config.data_dir, error) from None
    if stalls is not None:
        stalls.start()
    try:
        demo = await simulate.start_demo(server, demo_rate) if demo_rate else None
        _announce(server)
        stop = asyncio.Event()
        received: list[signal.Signals] = []  # SIGTERM (an orchestrator) drains; Ctrl-C does not

        def on_signal(sig: signal.Signals) -> None:
            received.append(sig)
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        await stop.wait()
        if demo is not None:
            await demo.aclose()
        if signal.SIGTERM in received and config.drain_s > 0:
            await server.drain(config.drain_s)
    finally:
        if stalls is not None:
            stalls.stop()
        await server.aclose()
    Console(stderr=True).print("stopped; state kept in", str(config.data_dir))
    return 0


def _data_folder_error(data_dir: Path, error: Exception) -> ConfigurationError:
    if isinstance(error, FileExistsError | NotADirectoryError):
        reason = "a file is in the way"
    elif isinstance(error, OSError) and error.strerror:
        reason = error.strerror.lower()
    else:
        reason = str(error)
    hint = (
        "another process holds it; stop it or use another folder with --data DIR"
        if "locked" in reason
        else "check that it is a folder you can write, or use another with --data DIR"
    )
    return ConfigurationError(f"data folder {data_dir} cannot be used ({reason}): {hint}")


def _listen_error(config: ServerConfig, error: OSError) -> ConfigurationError:
    where = f"{config.host}:{config.port}"
    if error.errno == errno.EADDRINUSE:
        return ConfigurationError(
            f"port {config.port} is already in use on {config.host} (another userstream "
            "serve?): stop it, or pick another port with --port N (--port 0: any free port)"
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return ConfigurationError(
            f"not allowed to listen on {where} (ports below 1024 need privileges): "
            "use --port 1024 or above"
        )
    if error.errno == errno.EADDRNOTAVAIL or isinstance(error, socket.gaierror):
        return ConfigurationError(
            f"cannot listen on {where}: {config.host} is not an address of this machine; "
            "use --host 127.0.0.1 or --host 0.0.0.0"
        )
    return ConfigurationError(f"cannot listen on {where}: {error.strerror or error}")


NATS_SCHEMES = ("nats", "tls", "ws", "wss")
NATS_DEFAULT_PORT = 4222
NATS_PROBE_TIMEOUT_S = 2.0


def check_bus(urls: str) -> None:
    """Refuse a `--bus` that cannot work, in one line, before the server starts: a URL
    nats-py would not take, or no server that answers on any of them (nats-py itself would
    retry an unreachable server without end, silently)."""
    parsed = []
    for url in (part.strip() for part in urls.split(",")):
        try:
            parts = urlsplit(url)
            port = parts.port or NATS_DEFAULT_PORT
        except ValueError:
            parts, port = None, 0
        if parts is None or parts.scheme not in NATS_SCHEMES or not parts.hostname:
            raise ConfigurationError(
                f"--bus: {url!r} is not a NATS URL; give nats://host:4222 "
                "(several: comma-separated)"
            )
        parsed.append((url, parts.hostname, port))
    failures = []
    for url, host, port in parsed:
        try:
            with socket.create_connection((host, port), timeout=NATS_PROBE_TIMEOUT_S):
                return
        except OSError as error:
            failures.append(f"{url} ({describe(error)})")
    raise ConfigurationError(
        f"--bus: NATS not reachable at {', '.join(failures)}; start nats-server -js "
        "there, or fix --bus"
    )


def _announce(server: Server) -> None:
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    # One plain line on stdout for scripts and test fixtures to read the port from.
    print(f"userstream listening on {server.url}", flush=True)
    data = server.config.data_dir
    token_file = data / "admin-token"
    if server.config.admin_token:
        token_from = "the one given with --admin-token"
    elif os.environ.get("USERSTREAM_ADMIN_TOKEN"):
        token_from = "the one in $USERSTREAM_ADMIN_TOKEN"
    else:
        token_from = f"in {token_file} (cat {token_file})"
    table = Table(title="userstream server", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("REST", f"{server.url}/fapi/v1/listenKey")
    table.add_row("WebSocket API", f"{server.ws_url}/ws-fapi/v1")
    table.add_row("Streams", f"{server.ws_url}/private/ws?listenKey=<listenKey>")
    if server.market is not None:
        table.add_row("Market", f"{server.ws_url}/market/stream?streams=btcusdt@aggTrade")
        table.add_row("Book", f"{server.ws_url}/public/ws/btcusdt@bookTicker")
    table.add_row("Admin", f"{server.url}/admin/v1/")
    table.add_row("Clock", "virtual" if server.clock.is_virtual else "real")
    table.add_row("Data", str(data))
    console.print(table)
    if server.admin_token_generated:
        console.print(f"admin token: [bold]{server.admin_token}[/bold] (saved in {token_file})")
    else:
        console.print(f"admin token (Authorization: Bearer <token>): {token_from}")
    account = server.demo_account
    if account is not None:
        print(json.dumps({"demoAccount": account.credentials()}), flush=True)
    console.print(_connect_help(server, account.api_key if account is not None else None))
    print("userstream ready", flush=True)


def _connect_help(server: Server, api_key: str | None) -> str:
    """Commands that work on a fresh machine: the project's own `listen`, and curl plus a
    Python one-liner for those who want to see the raw frames."""
    cli, python = self_command(), self_python()
    host, port = server.config.host, server.port
    local = f"--local --port {port}" + ("" if host == "127.0.0.1" else f" --host {host}")
    if server.config.data_dir != DEFAULT_DATA:
        local += f" --data {server.config.data_dir}"
    data = server.config.data_dir
    key = api_key or "<apiKey>"
    if api_key:
        listen = f"  {cli} listen {local} --api-key {api_key}\n"
    else:  # `listen --local` reads the demo account's key from the data folder itself
        listen = f"  {cli} listen {local}    # other accounts: {cli} account list --data {data}\n"
    return (
        "Connect a client to the demo account:\n" + listen + "or see the raw frames:\n"
        f"  KEY=$(curl -s -X POST -H 'X-MBX-APIKEY: {key}' {server.url}/fapi/v1/listenKey"
        f" | {python} -c 'import json,sys; print(json.load(sys.stdin)[\"listenKey\"])')\n"
        f"  {python} -m websockets {server.ws_url}/private/ws?listenKey=$KEY"
    )
