"""The first ten minutes with the `userstream` command (issue 15, "Friction found").

Real processes and real servers on 127.0.0.1: errors a user can fix are one line and a
non-zero exit, never a traceback; `--help`, `--version` and unknown flags answer for the
command given; the start banner shows commands that work; the keys of simulated and
existing accounts can be listed; `listen` waits for a server that is not up yet, finds the
demo key by itself and keeps its key alive on a server's virtual clock.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import (
    ADMIN_TOKEN,
    Harness,
    ServerProcess,
    start_server_process,
    stop_server_process,
)
from userstream import cli
from userstream.cli.listen import _clock, _event_line
from userstream.client.health import GapReason, StreamGap
from userstream.storage import DB_FILENAME, open_database

EXIT_TIMEOUT_S = 20
MINUTE = 60_000
REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = EXIT_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "userstream.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single `error: ...` line of a failed command (rich may wrap it: joined)."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    text = result.stderr.replace("\n", " ").strip()
    assert text.startswith("error: "), result.stderr
    assert text.count("error:") == 1
    return text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server_process(data: Path, *extra: str) -> Iterator[ServerProcess]:
    proc = start_server_process(data, *extra)
    try:
        yield proc
    finally:
        stop_server_process(proc)


def admin(url: str, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN) -> Any:
    request = urllib.request.Request(
        f"{url}/admin/v1/{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# item 1: errors a user can fix


def test_port_in_use_is_one_line_naming_the_port_and_the_flag(tmp_path: Path) -> None:
    with server_process(tmp_path / "a") as running:
        port = running.url.rsplit(":", 1)[1]
        result = run_cli("serve", "--port", port, "--data", str(tmp_path / "b"))
    line = one_line_error(result)
    assert result.returncode == 2
    assert f"port {port} is already in use" in line
    assert "--port" in line


def test_unusable_data_folder_is_one_line(tmp_path: Path) -> None:
    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a folder")
    line = one_line_error(run_cli("serve", "--port", "0", "--data", str(in_the_way)))
    assert f"data folder {in_the_way} cannot be used" in line
    assert "--data" in line


def test_locked_data_folder_is_one_line(tmp_path: Path) -> None:
    open_database(tmp_path).close()
    holder = sqlite3.connect(tmp_path / DB_FILENAME, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        line = one_line_error(run_cli("serve", "--port", "0", "--data", str(tmp_path)))
    finally:
        holder.close()
    assert f"data folder {tmp_path} cannot be used (database is locked)" in line
    assert "another process holds it" in line


@pytest.mark.parametrize(
    ("bus", "expected"),
    [
        ("foo://127.0.0.1:4222", "is not a NATS URL"),
        ("nats://", "is not a NATS URL"),
        ("nats://127.0.0.1:{closed}", "NATS not reachable at nats://127.0.0.1:{closed}"),
    ],
)
def test_bad_or_unreachable_bus_is_one_line(tmp_path: Path, bus: str, expected: str) -> None:
    closed = str(free_port())
    url = bus.format(closed=closed)
    result = run_cli("serve", "--port", "0", "--data", str(tmp_path), "--bus", url)
    line = one_line_error(result)
    assert expected.format(closed=closed) in line
    assert "--bus" in line


def test_publish_to_an_unreachable_bus_is_one_line(tmp_path: Path) -> None:
    events = tmp_path / "events.json"
    events.write_text('{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"BTCUSDT","l":25}}')
    url = f"nats://127.0.0.1:{free_port()}"
    line = one_line_error(run_cli("publish", "--bus", url, "--account", "1", str(events)))
    assert f"NATS not reachable at {url} (connection refused)" in line


# items 7, 8, 9: the parser


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["listen", "--bogus"], "usage: userstream listen"),
        (["serve", "--bogus"], "usage: userstream serve"),
        (["account", "list", "--bogus"], "usage: userstream account list"),
        (["simulate", "--in-process", "--bogus"], "usage: userstream simulate"),
    ],
)
def test_unknown_flag_prints_the_subcommands_usage(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage)
    assert "unrecognized arguments: --bogus" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert re.fullmatch(r"userstream \S+\n", capsys.readouterr().out)


def _commands(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, Any]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{path} {name}".strip(), sub
                yield from _commands(sub, f"{path} {name}")


def test_every_option_has_help_and_every_command_an_example() -> None:
    parser, _ = cli._parser()
    commands = dict(_commands(parser))
    assert {"serve", "account", "account create", "account list", "listen"} <= set(commands)
    assert {"simulate", "publish"} <= set(commands)
    for name, sub in commands.items():
        text = sub.format_help()
        assert f"userstream {name.split()[0]} " in text.partition("example:\n  ")[2], name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    serve_help = commands["serve"].format_help().replace("\n", " ")
    assert re.search(r"--port PORT\s+TCP port; 0 picks a free one \(default: 8080\)", serve_help)
    listen_help = commands["listen"].format_help()
    assert "(default: rest)" in listen_help


# item 2: accounts and their keys


async def test_admin_lists_accounts_with_api_keys_but_not_secrets(server: Harness) -> None:
    first, second = server.account("desk-1"), server.account("desk-2")
    status, body = await server.admin("GET", "accounts")
    assert status == 200
    listed = {row["accountId"]: row for row in body["accounts"]}
    assert listed[first.id] == {"accountId": first.id, "name": "desk-1", "apiKey": first.api_key}
    assert listed[second.id]["apiKey"] == second.api_key
    assert "secretKey" not in json.dumps(body)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/admin/v1/accounts", headers={"Authorization": "Bearer x"}) as r,
    ):
        assert r.status == 401


def test_simulate_prints_keys_and_account_list_shows_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process(data) as running:
        result = run_cli(
            "simulate", "--url", running.url, "--admin-token", ADMIN_TOKEN, "--accounts", "3",
            "--rate", "30", "--duration", "1", "--json",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        announced = [line["simAccount"] for line in lines[:3]]
        summary = lines[-1]
        assert [a["accountId"] for a in summary["accounts"]] == [a["accountId"] for a in announced]
        assert [a["apiKey"] for a in summary["accounts"]] == [a["apiKey"] for a in announced]
        listed = admin(running.url, "GET", "accounts")["accounts"]
        assert [(a["accountId"], a["apiKey"]) for a in listed[1:]] == [
            (a["accountId"], a["apiKey"]) for a in announced
        ]
        remote = run_cli("account", "list", "--url", running.url, "--admin-token", ADMIN_TOKEN,
                         "--json")  # fmt: skip
        assert [json.loads(line) for line in remote.stdout.splitlines()] == listed
        local = run_cli("account", "list", "--data", str(data))
        assert local.returncode == 0
        for account in listed:
            assert re.search(
                rf"^\s*{account['accountId']}\s+{account['name']}\s+{account['apiKey']}$",
                local.stdout,
                re.MULTILINE,
            )
        table = run_cli("simulate", "--url", running.url, "--admin-token", ADMIN_TOKEN,
                        "--fabricate", "--account-ids", "2", "--rate", "10",
                        "--duration", "0.5")  # fmt: skip
        assert announced[0]["apiKey"] in table.stdout
        assert f"listen --local --port {running.url.rsplit(':', 1)[1]}" in table.stdout


def test_account_list_without_data_says_where_keys_come_from(tmp_path: Path) -> None:
    line = one_line_error(run_cli("account", "list", "--data", str(tmp_path / "none")))
    assert "userstream serve --data" in line


# items 4, 5: the start banner


def test_banner_shows_a_listen_command_that_works(tmp_path: Path) -> None:
    with server_process(tmp_path / "data") as running:
        banner = (tmp_path / "data.stderr.log").read_text()
        port = running.url.rsplit(":", 1)[1]
        assert f"listen --local --port {port} --data {tmp_path / 'data'} --api-key " in banner
        assert running.api_key in banner
        assert "$USERSTREAM_ADMIN_TOKEN" in banner  # where the admin token came from
        command = re.search(r"^\s+(\S+ -m userstream\.cli listen .*)$", banner, re.MULTILINE)
        assert command is not None
        argv = command.group(1).split()[3:]  # after `python -m userstream.cli`
        listen = subprocess.Popen(
            [sys.executable, "-m", "userstream.cli", *argv, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert listen.stderr is not None
        assert listen.stdout is not None
        try:
            assert "connected" in listen.stderr.readline()
            event = {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "BTCUSDT", "l": 7}}
            admin(running.url, "POST", f"accounts/{running.demo['accountId']}/events", event)
            assert json.loads(listen.stdout.readline())["ac"]["l"] == 7
        finally:
            listen.send_signal(signal.SIGINT)
            assert listen.wait(timeout=EXIT_TIMEOUT_S) == 0
            listen.stdout.close()
            listen.stderr.close()
    # On a restart the demo account is not new: `listen --local` finds its key in --data.
    with server_process(tmp_path / "data") as again:
        banner = (tmp_path / "data.stderr.log").read_text()
        port = again.url.rsplit(":", 1)[1]
        line = f"listen --local --port {port} --data {tmp_path / 'data'}    # other accounts: "
        assert line in banner
        assert "--api-key" not in banner


# item 3: no server yet


def test_listen_waits_for_a_server_that_is_not_up_and_once_exits() -> None:
    port = str(free_port())
    argv = ["listen", "--local", "--port", port, "--api-key", "k" * 64]
    once = run_cli(*argv, "--once")
    line = one_line_error(once)
    assert f"server at http://127.0.0.1:{port} not reachable (connection refused)" in line
    assert "--once" in line
    listen = subprocess.Popen(
        [sys.executable, "-m", "userstream.cli", *argv, "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert listen.stderr is not None
    try:
        lines = [listen.stderr.readline() for _ in range(3)]
        for text in lines:
            assert text.startswith(
                f"userstream listen: server at http://127.0.0.1:{port} not reachable "
                "(connection refused), retrying "
            ), text
        assert lines[0].endswith("retrying now\n")
        assert re.search(r"retrying in \d+\.\d s$", lines[2])
        assert listen.poll() is None  # still trying
    finally:
        listen.send_signal(signal.SIGINT)
        assert listen.wait(timeout=EXIT_TIMEOUT_S) == 0
        listen.stderr.close()


def test_listen_once_exits_with_one_line_when_the_connection_drops(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process(data) as running:
        port = running.url.rsplit(":", 1)[1]
        listen = subprocess.Popen(
            [sys.executable, "-m", "userstream.cli", "listen", "--local", "--port", port,
             "--data", str(data), "--json", "--once"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert listen.stderr is not None
        try:
            assert "demo account's API key" in listen.stderr.readline()
            assert "connected" in listen.stderr.readline()
            admin(running.url, "POST", "connections/drop", {"accountId": 1})
            assert listen.wait(timeout=EXIT_TIMEOUT_S) == 1
            err = listen.stderr.read()
        finally:
            if listen.poll() is None:
                listen.kill()
                listen.wait()
            listen.stderr.close()
    assert "Traceback" not in err
    assert "error: connection lost" in err
    assert "not retrying (--once)" in err


# item 11: one time format


def test_gap_lines_use_the_event_time_format() -> None:
    since = 1_796_471_551_515
    text = _event_line(StreamGap(since, GapReason.DISCONNECTED, "1006")).plain
    assert text.startswith(f"{_clock(since)} ── gap")
    assert _clock(since) == "11:52:31.515"
    assert str(since) not in text


# items 10, 15: the demo key from the data folder, and the server's virtual clock


def test_listen_local_finds_the_demo_key_and_follows_the_virtual_clock(tmp_path: Path) -> None:
    """Two hours of virtual time, advanced 15 minutes at a time with a pause between: a
    listener on real time would let its key expire after 60 (a gap line, then a new key);
    following the server's clock it keeps the key alive and gets the next event, no gap."""
    data = tmp_path / "data"
    with server_process(data, "--clock", "virtual") as running:
        port = running.url.rsplit(":", 1)[1]
        listen = subprocess.Popen(
            [sys.executable, "-m", "userstream.cli", "listen", "--local", "--port", port,
             "--data", str(data), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert listen.stdout is not None
        assert listen.stderr is not None
        try:
            assert "demo account's API key" in listen.stderr.readline()
            assert "connected" in listen.stderr.readline()
            # Keepalives fall due every 30 minutes: in 15-minute steps each one has two
            # pauses to happen in before the key's 60 minutes run out.
            for _ in range(8):
                admin(running.url, "POST", "clock/advance", {"ms": 15 * MINUTE})
                time.sleep(1.0)  # the listener reads the server's time every 0.25 s
            event = {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "BTCUSDT", "l": 9}}
            admin(running.url, "POST", f"accounts/{running.demo['accountId']}/events", event)
            first = json.loads(listen.stdout.readline())
            assert first.get("e") == "ACCOUNT_CONFIG_UPDATE", first
            assert first["ac"]["l"] == 9
        finally:
            listen.send_signal(signal.SIGINT)
            assert listen.wait(timeout=EXIT_TIMEOUT_S) == 0
            listen.stdout.close()
            listen.stderr.close()


# items 12, 13: the README stands alone


def test_readme_links_stay_inside_the_repository() -> None:
    readme = (REPO / "README.md").read_text()
    assert "../" not in readme
    assert "websocat" not in readme
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith(("http://", "https://")):
            assert (REPO / target).exists(), target
