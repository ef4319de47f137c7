"""`userstream account`: create and list the accounts of a data folder or a running server."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp

from userstream import ConfigurationError, ServerConfig, create_account, list_accounts
from userstream.cli.common import CommandParsers

DEFAULT_DATA = Path("data")
DEMO_NAME = "demo"
HTTP_TIMEOUT_S = 10.0


def add_parser(parsers: CommandParsers) -> None:
    account = parsers.add(
        "account",
        help="create, list and watch accounts",
        example="userstream account list --data ./data",
    )
    commands = account.add_subparsers(
        dest="account_command", required=True, metavar="ACTION", help="create, list or watch"
    )
    create = parsers.add(
        "create",
        help="create an account in a data folder and print its keys as one JSON line",
        example="userstream account create --name desk-1 --data ./data",
        parent=("account", commands),
    )
    create.add_argument("--name", default="account", help="the account's name")
    create.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data folder")
    listing = parsers.add(
        "list",
        help="list accounts (id, name, API key) of a data folder or a running server",
        example="userstream account list --url http://127.0.0.1:8080 --admin-token $TOKEN",
        parent=("account", commands),
    )
    source = listing.add_mutually_exclusive_group()
    source.add_argument(
        "--data", type=Path, default=None, help="data folder, read-only (default: ./data)"
    )
    source.add_argument("--url", default=None, help="a running server, through its admin API")
    listing.add_argument(
        "--admin-token", default=None, help="with --url; else $USERSTREAM_ADMIN_TOKEN"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per account")
    from userstream.cli import account_watch  # it reads this module's defaults: import late

    account_watch.add_parser(parsers, commands)


def run(args: argparse.Namespace) -> int:
    if args.account_command == "create":
        return create(args)
    if args.account_command == "watch":
        from userstream.cli import account_watch

        return account_watch.watch(args)
    return list_command(args)


def create(args: argparse.Namespace) -> int:
    account = asyncio.run(create_account(ServerConfig(data_dir=args.data), args.name))
    print(json.dumps(account.credentials()), flush=True)
    return 0


def demo_api_key(data_dir: Path) -> str:
    """The API key of the demo account the server made on its first start (account 1)."""
    accounts = list_accounts(data_dir)
    for account in accounts:
        if account.name == DEMO_NAME:
            return account.api_key
    raise ConfigurationError(
        f"no demo account in {data_dir}; give --api-key (see `userstream account list "
        f"--data {data_dir}`)"
    )


async def remote_accounts(url: str, token: str) -> list[dict[str, Any]]:
    """`GET /admin/v1/accounts`: id, name and API key of every account."""
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"{url.rstrip('/')}/admin/v1/accounts", headers=headers) as response,
        ):
            body = await response.json(content_type=None)
            if response.status != 200:
                msg = body.get("msg") if isinstance(body, dict) else None
                raise ConfigurationError(
                    f"{url} answered {response.status}: {msg or body}"
                    + (" (check --admin-token)" if response.status == 401 else "")
                )
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise ConfigurationError(f"server at {url} not reachable: {describe(error)}") from None
    accounts: list[dict[str, Any]] = body["accounts"]
    return accounts


def describe(error: BaseException) -> str:
    """A short reason for a network error, without the library's repr."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno).lower()
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return str(error) or type(error).__name__


def list_command(args: argparse.Namespace) -> int:
    if args.url:
        token = args.admin_token or os.environ.get("USERSTREAM_ADMIN_TOKEN")
        if not token:
            raise ConfigurationError("--url needs --admin-token or $USERSTREAM_ADMIN_TOKEN")
        rows = asyncio.run(remote_accounts(args.url, token))
    else:
        rows = [
            {"accountId": a.id, "name": a.name, "apiKey": a.api_key}
            for a in list_accounts(args.data or DEFAULT_DATA)
        ]
    if args.json:
        for row in rows:
            print(json.dumps(row), flush=True)
        return 0
    # Plain columns: a 64-character key must never be wrapped or cut to fit a terminal.
    width = max([len(str(row["name"])) for row in rows] + [4])
    print(f"{'account':>7}  {'name':<{width}}  apiKey")
    for row in rows:
        print(f"{row['accountId']:>7}  {row['name']!s:<{width}}  {row['apiKey']}")
    return 0
