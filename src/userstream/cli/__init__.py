"""The `userstream` command: a thin layer over the public API (DESIGN.md rule 12).

userstream serve [--host 127.0.0.1] [--port 8080] [--data DIR] [--clock real|virtual]
                 [--admin-token T] [--symbols FILE] [--demo [--demo-rate R]]
                 [--bus nats://host:4222[,nats://host2:4222]] [--reconcile-interval S]
userstream account create [--name NAME] [--data DIR]
userstream account list [--data DIR | --url URL [--admin-token T]] [--json]
userstream account watch [--api-key K --secret-key S] [--local | --testnet] [--json]
userstream listen [--api-key K] [--base-url URL --stream-url URL --ws-api-url URL | --testnet
                  | --local [--host H] [--port P] [--data DIR]] [--json] [--once]
                  [--key-transport rest|ws_api]
userstream simulate (--url URL [--admin-token T] | --in-process) [--accounts N | --account-ids 1,2]
                    [--rate R] [--duration S] [--seed X] [--json]
userstream publish --bus nats://host:4222[,...] --account A [--msg-id ID] FILE|-
userstream --version

Every subcommand's `--help` shows its defaults and an example. Errors a user can fix print
one line (`error: ...`) and exit 2; they never print a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from rich.console import Console

from userstream.cli import account, listen, publish, serve, simulate
from userstream.cli.common import CommandParsers
from userstream.exceptions import UserStreamError


def _version() -> str:
    try:
        return version("userstream")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _parser() -> tuple[argparse.ArgumentParser, CommandParsers]:
    parser = argparse.ArgumentParser(
        prog="userstream",
        description="Binance USDⓈ-M Futures user data streams: server, client, simulator.",
        epilog="Run `userstream COMMAND --help` for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"userstream {_version()}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to run"
    )
    parsers = CommandParsers(commands)
    serve.add_parser(parsers)
    account.add_parser(parsers)
    listen.add_parser(parsers)
    simulate.add_parser(parsers)
    publish.add_parser(parsers)
    return parser, parsers


def main(argv: Sequence[str] | None = None) -> int:
    parser, parsers = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse hands a subcommand's unknown flags back to the top-level parser, whose
        # usage would not help; the subcommand's own usage does.
        parsers.owner(args).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "serve":
            return serve.serve(args)
        if args.command == "account":
            return account.run(args)
        if args.command == "listen":
            return listen.listen(args)
        if args.command == "simulate":
            return simulate.simulate(args)
        if args.command == "publish":
            return publish.publish(args)
    except UserStreamError as error:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {error}")
        return 2
    return 2


def run() -> None:
    sys.exit(main())
