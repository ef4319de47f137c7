"""`userstream account`: manage the accounts in a data folder."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from userstream import ServerConfig, create_account
from userstream.cli.serve import DEFAULT_DATA


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    account = commands.add_parser("account", help="manage accounts")
    account_commands = account.add_subparsers(dest="account_command", required=True)
    create = account_commands.add_parser("create", help="create an account, print its keys")
    create.add_argument("--name", default="account")
    create.add_argument("--data", type=Path, default=DEFAULT_DATA)


def create(args: argparse.Namespace) -> int:
    account = asyncio.run(create_account(ServerConfig(data_dir=args.data), args.name))
    print(json.dumps(account.credentials()), flush=True)
    return 0
