"""The `userstream` command: a thin layer over the public API (DESIGN.md rule 12).

userstream serve [--host 127.0.0.1] [--port 8080] [--data DIR] [--clock real|virtual]
                 [--admin-token T] [--symbols FILE] [--demo [--demo-rate R]]
                 [--bus nats://host:4222[,nats://host2:4222]] [--reconcile-interval S]
userstream account create [--name NAME] [--data DIR]
userstream listen --api-key K [--base-url URL --stream-url URL --ws-api-url URL | --testnet
                  | --local [--host H] [--port P]] [--json] [--key-transport rest|ws_api]
userstream simulate (--url URL [--admin-token T] | --in-process) [--accounts N | --account-ids 1,2]
                    [--rate R] [--duration S] [--seed X] [--json]
userstream publish --bus nats://host:4222[,...] --account A [--msg-id ID] FILE|-
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from userstream.cli import account, listen, publish, serve, simulate
from userstream.exceptions import UserStreamError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="userstream", description="Binance USDⓈ-M Futures user data streams."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve.add_parser(commands)
    account.add_parser(commands)
    listen.add_parser(commands)
    simulate.add_parser(commands)
    publish.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve.serve(args)
        if args.command == "account":
            return account.create(args)
        if args.command == "listen":
            return listen.listen(args)
        if args.command == "simulate":
            return simulate.simulate(args)
        if args.command == "publish":
            return publish.publish(args)
    except UserStreamError as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}")
        return 2
    return 2


def run() -> None:
    sys.exit(main())
