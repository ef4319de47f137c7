"""What every subcommand's parser shares: defaults in `--help`, examples kept as written."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (not when it is None or False: "not given") and prints
    the description and epilog (the examples) line for line."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class CommandParsers:
    """The subcommand parsers by name, so that an unknown flag is reported with the usage
    of the (sub)command it was given to."""

    def __init__(self, commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._commands = commands
        self._by_name: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def add(
        self,
        name: str,
        *,
        help: str,
        example: str,
        parent: tuple[str, argparse._SubParsersAction[argparse.ArgumentParser]] | None = None,
        **kwargs: Any,
    ) -> argparse.ArgumentParser:
        commands = self._commands if parent is None else parent[1]
        path = (name,) if parent is None else (parent[0], name)
        parser = commands.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=f"example:\n  {example}" if example else None,
            formatter_class=HelpFormatter,
            **kwargs,
        )
        self._by_name[path] = parser
        return parser

    def owner(self, args: argparse.Namespace) -> argparse.ArgumentParser:
        """The most specific parser that `args` went through."""
        command: str = args.command
        sub = getattr(args, f"{command}_command", None)
        if sub is not None and (command, sub) in self._by_name:
            return self._by_name[(command, sub)]
        return self._by_name[(command,)]


def _shown(path: str) -> str:
    """`path` relative to the working directory when it lies under it (shorter to copy)."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def self_python() -> str:
    """The Python running this command: it has every dependency (websockets, aiohttp)."""
    return _shown(sys.executable)


def self_command() -> str:
    """How the user can run `userstream` again: the name when it is on PATH, else the
    script's path (`.venv/bin/userstream` after `scripts/serve`), else `python -m`."""
    script = sys.argv[0]
    if Path(script).name == "userstream":
        on_path = shutil.which("userstream")
        if on_path is not None and Path(on_path).resolve() == Path(script).resolve():
            return "userstream"
        return _shown(script)
    return f"{self_python()} -m userstream.cli"
