"""`userstream publish --bus nats://... --account A FILE|-`: events from JSON into NATS.

The input is one event object, a JSON array of them (each published as one batch), or JSON
lines (one event per line, each published as read, so `tail -f events.jsonl | userstream
publish ...` streams). Every batch is validated like the admin API before anything of it is
published; the first invalid one stops the command with exit code 2 and its line number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from typing import IO

from userstream import ConfigurationError, EventValidationError, Publisher
from userstream.cli.common import CommandParsers
from userstream.cli.serve import check_bus


def add_parser(parsers: CommandParsers) -> None:
    publish = parsers.add(
        "publish",
        help="publish account events (JSON) to the NATS JetStream bus of `serve --bus`",
        example='echo \'{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"BTCUSDT","l":25}}\' '
        "| userstream publish --bus nats://127.0.0.1:4222 --account 1 -",
    )
    publish.add_argument(
        "--bus", required=True, help="NATS URLs, comma-separated: nats://host:4222[,...]"
    )
    publish.add_argument("--account", type=int, required=True, help="account id")
    publish.add_argument(
        "--msg-id",
        default=None,
        help="message id of the first batch (later ones get -2, -3...); a rerun with the "
        "same id inside the 2-minute window is not delivered twice",
    )
    publish.add_argument("file", help="JSON file, or - for standard input")


def _batches(stream: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, JSON text) of each batch: the whole input when it is one JSON value,
    else each non-empty line."""
    first = stream.read(1)
    while first.isspace():
        first = stream.read(1)
    if first == "[" or first == "{":
        rest = stream.read() if first == "[" else None
        if rest is not None:
            yield 1, first + rest
            return
        text = first + stream.readline()
        try:
            json.loads(text)
        except ValueError:  # a multi-line object
            yield 1, text + stream.read()
            return
        yield 1, text  # JSON lines: this was the first line
        for number, line in enumerate(stream, start=2):
            if line.strip():
                yield number, line
    elif first:
        raise ConfigurationError("input is not JSON (an object, an array or JSON lines)")


def publish(args: argparse.Namespace) -> int:
    check_bus(args.bus)
    if args.file == "-":
        return asyncio.run(_publish(args, sys.stdin))
    try:
        stream = open(args.file, encoding="utf-8")  # noqa: SIM115 - closed just below
    except OSError as error:
        raise ConfigurationError(f"cannot read {args.file}: {error}") from None
    with stream:
        return asyncio.run(_publish(args, stream))


async def _publish(args: argparse.Namespace, stream: IO[str]) -> int:
    accepted = batches = 0
    async with Publisher.connect(args.bus) as publisher:
        for number, text in _batches(stream):
            msg_id = None
            if args.msg_id:
                msg_id = args.msg_id if batches == 0 else f"{args.msg_id}-{batches + 1}"
            try:
                accepted += await publisher.publish_json(args.account, text, msg_id)
            except EventValidationError as error:
                print(
                    json.dumps({"error": str(error), "line": number, "accepted": accepted}),
                    file=sys.stderr,
                )
                return 2
            batches += 1
    print(json.dumps({"accepted": accepted, "batches": batches}), flush=True)
    return 0
