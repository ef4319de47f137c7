"""`userstream serve`: run the server (REST, WebSocket API, streams), with demo activity."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from userstream.cli import simulate
from userstream.clock import Clock, ManualClock, SystemClock
from userstream.exceptions import ConfigurationError
from userstream.server.app import ServerConfig, UserStreamServer
from userstream.server.limits import WeightLimits
from userstream.server.logs import LOG_FORMATS, configure
from userstream.server.ops import drain

DEFAULT_DATA = Path("data")
DEFAULT_GATEWAY_DRAIN_S = 10.0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the server (REST, WebSocket API, streams)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory")
    serve.add_argument("--clock", choices=("real", "virtual"), default="real")
    serve.add_argument("--admin-token", default=None, help="else $USERSTREAM_ADMIN_TOKEN")
    serve.add_argument("--symbols", default=None, help="JSON file of exchangeInfo symbols")
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
        help="info: connections, listenKeys, rejected requests; debug: every event batch",
    )
    serve.add_argument("--log-format", choices=LOG_FORMATS, default="text")
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
        help="run as a gateway node on NATS JetStream (comma-separated URLs); "
        "without it, the embedded memory + SQLite backends",
    )
    serve.add_argument(
        "--reconcile-interval",
        type=float,
        default=ServerConfig().reconcile_interval_s,
        help="with --bus: seconds between re-reads of the listenKeys this node serves",
    )
    serve.add_argument(
        "--demo", action="store_true", help="feed the demo account simulated activity"
    )
    serve.add_argument("--demo-rate", type=float, default=2.0, help="events/s with --demo")


def serve(args: argparse.Namespace) -> int:
    configure(args.log_level, args.log_format)
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
        nats_creds=args.nats_creds,
        nats_tls_ca=args.nats_tls_ca,
        nats_tls_cert=args.nats_tls_cert,
        nats_tls_key=args.nats_tls_key,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        drain_s=drain_s,
        metrics_port=args.metrics_port,
    )
    if args.weight_per_minute < 1 or args.max_unsent_bytes < 1024:
        raise ConfigurationError("--weight-per-minute must be >= 1, --max-unsent-bytes >= 1024")
    if args.demo_rate <= 0:
        raise ConfigurationError("--demo-rate must be > 0")
    demo_rate = args.demo_rate if args.demo else None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(_run_server(config, demo_rate))
    return uvloop.run(_run_server(config, demo_rate))


async def _run_server(config: ServerConfig, demo_rate: float | None = None) -> int:
    server = UserStreamServer(config)
    await server.start()
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
        await drain(server, config.drain_s)
    await server.aclose()
    Console(stderr=True).print("stopped; state kept in", str(config.data_dir))
    return 0


def _announce(server: UserStreamServer) -> None:
    console = Console(stderr=True, soft_wrap=True)
    # One plain line on stdout for scripts and test fixtures to read the port from.
    print(f"userstream listening on {server.http_url}", flush=True)
    table = Table(title="userstream server", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("REST", f"{server.http_url}/fapi/v1/listenKey")
    table.add_row("WebSocket API", f"{server.ws_url}/ws-fapi/v1")
    table.add_row("Streams", f"{server.ws_url}/private/ws?listenKey=<listenKey>")
    table.add_row("Admin", f"{server.http_url}/admin/v1/  (Authorization: Bearer <token>)")
    table.add_row("Clock", "virtual" if server.clock.is_virtual else "real")
    table.add_row("Data", str(server.config.data_dir))
    console.print(table)
    if server.admin_token_generated:
        console.print(
            f"admin token: [bold]{server.admin_token}[/bold] "
            f"(saved in {server.config.data_dir / 'admin-token'})"
        )
    if server.demo_account is not None:
        account = server.demo_account
        print(json.dumps({"demoAccount": account.credentials()}), flush=True)
        console.print(
            "Connect a client:\n"
            f"  curl -X POST -H 'X-MBX-APIKEY: {account.api_key}' "
            f"{server.http_url}/fapi/v1/listenKey\n"
            f"  then open {server.ws_url}/private/ws?listenKey=<listenKey>"
        )
    print("userstream ready", flush=True)
