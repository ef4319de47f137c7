"""The real `userstream` command as a separate process (issue #2: accounts, serve, signals).

`account create` against a running server's data directory, the demo account on first start,
SIGTERM/SIGINT closing streams with 1001 and exiting 0, state (listenKeys, admin token)
surviving a restart, and `--clock virtual` driving deadlines through the admin API.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import (
    ADMIN_TOKEN,
    ServerProcess,
    start_server_process,
    stop_server_process,
)
from tests.functional.wsclient import recv_json, sync, wait_closed, ws_connect

HOUR = 3_600_000
EXIT_TIMEOUT_S = 10


async def start(data_dir: Path, *extra: str) -> ServerProcess:
    return await asyncio.to_thread(start_server_process, data_dir, *extra)


async def stop(proc: ServerProcess) -> int:
    return await asyncio.to_thread(stop_server_process, proc)


async def wait_exit(proc: ServerProcess) -> int:
    try:
        return await asyncio.to_thread(proc.process.wait, EXIT_TIMEOUT_S)
    finally:
        await stop(proc)  # kills it if it hung; closes the stdout pipe either way


@asynccontextmanager
async def running(data_dir: Path, *extra: str) -> AsyncIterator[ServerProcess]:
    proc = await start(data_dir, *extra)
    try:
        yield proc
    finally:
        await stop(proc)


async def http_json(
    method: str,
    url: str,
    *,
    api_key: str | None = None,
    token: str | None = None,
    body: Any = None,
) -> tuple[int, Any]:
    headers = {}
    if api_key is not None:
        headers["X-MBX-APIKEY"] = api_key
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, json=body) as response,
    ):
        return response.status, await response.json(content_type=None)


async def cli(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "userstream.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), EXIT_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, stdout.decode()


async def test_account_create_prints_keys_that_work_on_a_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running(data) as proc:
        code, out = await cli("account", "create", "--data", str(data), "--name", "desk-9")
        assert code == 0
        lines = out.splitlines()
        assert len(lines) == 1
        created = json.loads(lines[0])
        assert list(created) == ["accountId", "apiKey", "secretKey"]
        assert created["accountId"] != proc.demo["accountId"]
        assert len(created["apiKey"]) == 64
        status, body = await http_json(
            "POST", f"{proc.url}/fapi/v1/listenKey", api_key=created["apiKey"]
        )
        assert status == 200
        assert len(body["listenKey"]) == 64
        # Events published for it over the admin API reach its stream.
        async with ws_connect(f"{proc.ws}/private/ws?listenKey={body['listenKey']}") as ws:
            status, reply = await http_json(
                "POST",
                f"{proc.url}/admin/v1/accounts/{created['accountId']}/events",
                token=ADMIN_TOKEN,
                body={"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "BTCUSDT", "l": 10}},
            )
            assert (status, reply) == (200, {"accepted": 1, "connections": 1})
            assert (await recv_json(ws))["ac"] == {"s": "BTCUSDT", "l": 10}


async def test_first_start_prints_demo_account_and_only_the_first(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running(data) as proc:
        assert list(proc.demo) == ["accountId", "apiKey", "secretKey"]
        status, body = await http_json(
            "POST", f"{proc.url}/fapi/v1/listenKey", api_key=proc.api_key
        )
        assert status == 200
        first_key = body["listenKey"]
    async with running(data) as again:
        assert again.demo == {}
        status, body = await http_json(
            "PUT", f"{again.url}/fapi/v1/listenKey", api_key=proc.api_key
        )
        assert (status, body) == (200, {"listenKey": first_key})


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_closes_streams_with_1001_and_exits_0(
    tmp_path: Path, sig: signal.Signals
) -> None:
    data = tmp_path / "data"
    proc = await start(data)
    _, body = await http_json("POST", f"{proc.url}/fapi/v1/listenKey", api_key=proc.api_key)
    key = body["listenKey"]
    async with (
        ws_connect(f"{proc.ws}/private/ws?listenKey={key}") as stream,
        ws_connect(f"{proc.ws}/ws-fapi/v1") as api,
    ):
        await api.send(
            json.dumps(
                {"id": 1, "method": "userDataStream.ping", "params": {"apiKey": proc.api_key}}
            )
        )
        assert (await recv_json(api))["result"] == {"listenKey": key}
        proc.process.send_signal(sig)
        for ws in (stream, api):
            code, _ = await wait_closed(ws)
            assert code == 1001
    assert await wait_exit(proc) == 0

    # State is kept: after a restart on the same directory the key still works.
    async with running(data) as again:
        status, body = await http_json(
            "PUT", f"{again.url}/fapi/v1/listenKey", api_key=proc.api_key
        )
        assert (status, body) == (200, {"listenKey": key})
        async with ws_connect(f"{again.ws}/private/ws?listenKey={key}") as ws:
            status, _ = await http_json(
                "POST",
                f"{again.url}/admin/v1/accounts/{proc.demo['accountId']}/events",
                token=ADMIN_TOKEN,
                body={"e": "ACCOUNT_CONFIG_UPDATE", "ai": {"j": True}},
            )
            assert status == 200
            assert (await recv_json(ws))["ai"] == {"j": True}


def _spawn_without_token(data_dir: Path, stderr_path: Path) -> ServerProcess:
    """Like conftest's `start_server_process`, but with no admin token given anywhere, so
    the server generates one (or reuses `<data>/admin-token`), and stderr kept in a file."""
    env = {k: v for k, v in os.environ.items() if k != "USERSTREAM_ADMIN_TOKEN"}
    command = [sys.executable, "-m", "userstream.cli", "serve", "--port", "0"]
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--data", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    assert process.stdout is not None
    url = ""
    for line in process.stdout:
        if line.startswith("userstream listening on "):
            url = line.split()[-1]
        elif line.startswith("userstream ready"):
            break
    assert url, "server did not start"
    return ServerProcess(process, url, data_dir, {})


async def test_generated_admin_token_is_saved_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    proc = await asyncio.to_thread(_spawn_without_token, data, first_log)
    try:
        token_file = data / "admin-token"
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert token_file.stat().st_mode & 0o777 == 0o600
        status, _ = await http_json("GET", f"{proc.url}/admin/v1/stats", token=token)
        assert status == 200
        status, _ = await http_json("GET", f"{proc.url}/admin/v1/stats", token=ADMIN_TOKEN)
        assert status == 401
        proc.process.send_signal(signal.SIGTERM)
        assert await wait_exit(proc) == 0
    finally:
        await stop(proc)
    assert token in first_log.read_text()  # printed once, when generated

    proc = await asyncio.to_thread(_spawn_without_token, data, second_log)
    try:
        assert token_file.read_text().strip() == token
        status, body = await http_json("GET", f"{proc.url}/admin/v1/stats", token=token)
        assert status == 200
        assert body["accounts"] == 1  # the demo account from the first start, no new one
    finally:
        await stop(proc)
    banner = second_log.read_text()
    assert token not in banner
    # After a restart the token is not printed; the banner says where it is.
    assert f"in {data / 'admin-token'}" in banner.replace("\n", "")


async def test_virtual_clock_advance_over_http(tmp_path: Path) -> None:
    async with running(tmp_path / "data", "--clock", "virtual") as proc:
        status, clock = await http_json("GET", f"{proc.url}/admin/v1/clock", token=ADMIN_TOKEN)
        assert status == 200
        assert clock["virtual"] is True
        status, body = await http_json(
            "POST", f"{proc.url}/fapi/v1/listenKey", api_key=proc.api_key
        )
        key = body["listenKey"]
        async with ws_connect(f"{proc.ws}/private/ws?listenKey={key}") as ws:
            status, moved = await http_json(
                "POST",
                f"{proc.url}/admin/v1/clock/advance",
                token=ADMIN_TOKEN,
                body={"ms": 2 * 60_000},
            )
            assert (status, moved) == (200, {"now": clock["now"] + 2 * 60_000, "virtual": True})
            await sync(ws)
            # The rest of the hour in ping-interval steps (the client answers each ping), so
            # the key's deadline, not the pong deadline, is what fires at the hour.
            for _ in range(19):
                status, moved = await http_json(
                    "POST",
                    f"{proc.url}/admin/v1/clock/advance",
                    token=ADMIN_TOKEN,
                    body={"ms": 3 * 60_000},
                )
                assert status == 200
                await sync(ws)
            assert moved["now"] == clock["now"] + HOUR - 60_000
            status, moved = await http_json(
                "POST", f"{proc.url}/admin/v1/clock/advance", token=ADMIN_TOKEN, body={"ms": 60_000}
            )
            assert moved["now"] == clock["now"] + HOUR
            assert await recv_json(ws) == {
                "e": "listenKeyExpired",
                "E": clock["now"] + HOUR,
                "listenKey": key,
            }
        status, body = await http_json("PUT", f"{proc.url}/fapi/v1/listenKey", api_key=proc.api_key)
        assert (status, body["code"]) == (400, -1125)
        status, time_body = await http_json("GET", f"{proc.url}/fapi/v1/time")
        assert time_body == {"serverTime": clock["now"] + HOUR}


async def test_real_clock_process_refuses_advance(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as proc:
        status, reply = await http_json(
            "POST", f"{proc.url}/admin/v1/clock/advance", token=ADMIN_TOKEN, body={"ms": 1000}
        )
        assert status == 409
        assert "virtual" in reply["msg"]
        status, clock = await http_json("GET", f"{proc.url}/admin/v1/clock", token=ADMIN_TOKEN)
        assert clock["virtual"] is False


async def test_weight_limit_is_set_from_the_command_line(tmp_path: Path) -> None:
    async with running(tmp_path / "data", "--weight-per-minute", "3", "--clock", "virtual") as p:
        statuses = [(await http_json("GET", f"{p.url}/fapi/v1/ping"))[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


async def test_nonsense_limits_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    code, _ = await cli("serve", "--port", "0", "--data", str(tmp_path), "--weight-per-minute", "0")
    assert code == 2
