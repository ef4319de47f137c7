"""`userstream account`: manage the accounts in a data folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from userstream.accounts import SqliteAccountStore
from userstream.cli.serve import DEFAULT_DATA
from userstream.clock import SystemClock
from userstream.storage import open_database


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    account = commands.add_parser("account", help="manage accounts")
    account_commands = account.add_subparsers(dest="account_command", required=True)
    create = account_commands.add_parser("create", help="create an account, print its keys")
    create.add_argument("--name", default="account")
    create.add_argument("--data", type=Path, default=DEFAULT_DATA)


def create(args: argparse.Namespace) -> int:
    db = open_database(args.data)
    try:
        account = SqliteAccountStore(db).create_now(args.name, SystemClock().now_ms())
    finally:
        db.close()
    print(json.dumps(account.credentials()), flush=True)
    return 0
