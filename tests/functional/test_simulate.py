"""`userstream simulate` and `userstream serve --demo` against real servers (issue 5).

The CLI runs for about two seconds on the real clock: through the admin API into an
in-process server (the CLI in a thread, so the test reads the stream meanwhile), as a
separate process with `--in-process`, and the server process with `--demo`. Every stream
frame must decode to a known event, and through the admin API every published event must
arrive, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import (
    ADMIN_TOKEN,
    Harness,
    ServerProcess,
    start_server_process,
    stop_server_process,
)
from tests.functional.venue_helpers import signed_query
from tests.functional.wsclient import sync, ws_connect
from userstream import Server, ServerConfig, SystemClock, cli
from userstream.protocol.codec import decode_event, event_name

EXIT_TIMEOUT_S = 20
FIRST_EVENT_TIMEOUT_S = 5


async def listen_key(url: str, api_key: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}) as response,
    ):
        assert response.status == 200
        body = await response.json()
        return str(body["listenKey"])


async def collect(ws: ClientConnection, into: list[str]) -> None:
    with contextlib.suppress(Exception):
        async for frame in ws:
            assert isinstance(frame, str)
            into.append(frame)


async def test_simulate_through_the_admin_api_reaches_the_stream_in_order(
    server: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    account = server.account()
    key = await server.listen_key(account)
    async with ws_connect(f"{server.ws}/private/ws?listenKey={key}") as ws:
        frames: list[str] = []
        reader = asyncio.create_task(collect(ws, frames))
        args = ["simulate", "--url", server.url, "--admin-token", ADMIN_TOKEN]
        args += ["--fabricate", "--account-ids", str(account.id), "--rate", "200"]
        args += ["--duration", "2"]
        code = await asyncio.to_thread(cli.main, [*args, "--seed", "3", "--json"])
        await sync(ws)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert code == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["errors"] == 0
    assert summary["byAccount"] == {str(account.id): summary["published"]}
    assert 300 <= summary["published"] <= 420  # 200/s for 2 s, whole actions
    events = [decode_event(frame) for frame in frames]
    assert len(events) == summary["published"]
    received: dict[str, int] = {}
    for event in events:
        received[event_name(event)] = received.get(event_name(event), 0) + 1
    assert received == summary["byType"]
    times = [event.event_time for event in events]
    assert times == sorted(times)


async def test_simulate_in_process_trades_and_prints_the_keys_a_client_connects_with(
    tmp_path: Path,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "userstream.cli",
        "simulate",
        "--in-process",
        "--data",
        str(tmp_path / "data"),
        "--accounts",
        "2",
        "--rate",
        "20",
        "--duration",
        "3",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        url = (await process.stdout.readline()).decode().split()[-1]
        assert url.startswith("http://127.0.0.1:")
        accounts = [json.loads(await process.stdout.readline())["simAccount"] for _ in range(2)]
        key = await listen_key(url, accounts[0]["apiKey"])
        ws_url = url.replace("http://", "ws://")
        async with ws_connect(f"{ws_url}/private/ws?listenKey={key}") as ws:
            first = await asyncio.wait_for(ws.recv(), FIRST_EVENT_TIMEOUT_S)
            assert isinstance(first, str)
            assert event_name(decode_event(first)) in VENUE_EVENTS  # its own orders' events
        rest, _ = await asyncio.wait_for(process.communicate(), EXIT_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    summary: dict[str, Any] = json.loads(rest.decode().splitlines()[-1])
    assert summary["failures"] == 0
    assert set(summary["byAccount"]) == {str(a["accountId"]) for a in accounts}
    assert summary["accepted"] >= 30  # 20/s for 3 s, the odd refusal aside


async def test_simulate_trades_over_signed_rest_and_the_venue_has_its_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ServerConfig(
        port=0,
        data_dir=tmp_path / "data",
        clock=SystemClock(),
        admin_token=ADMIN_TOKEN,
        market="synthetic",
    )
    async with Server(config) as server:
        args = ["simulate", "--url", server.url, "--admin-token", ADMIN_TOKEN]
        args += ["--accounts", "1", "--rate", "20", "--duration", "2", "--json"]
        assert await asyncio.to_thread(cli.main, args) == 0
        lines = capsys.readouterr().out.splitlines()
        account = json.loads(lines[0])["simAccount"]
        summary = json.loads(lines[-1])
        placed = 0
        async with aiohttp.ClientSession() as http:
            for symbol in ("BTCUSDT", "ETHUSDT"):
                query = signed_query(
                    account["secretKey"], {"symbol": symbol}, int(time.time() * 1000)
                )
                async with http.get(
                    f"{server.url}/fapi/v1/allOrders?{query}",
                    headers={"X-MBX-APIKEY": account["apiKey"]},
                ) as response:
                    assert response.status == 200
                    placed += len(await response.json())
    assert summary["failures"] == 0
    assert summary["decisions"] >= 30
    by_command = summary["byCommand"]
    assert placed == by_command.get("LIMIT order", 0) + by_command.get("MARKET order", 0)
    assert placed > 0


FINAL = {"FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"}
VENUE_EVENTS = {"ORDER_TRADE_UPDATE", "TRADE_LITE", "ACCOUNT_UPDATE", "ACCOUNT_CONFIG_UPDATE"}


async def rest_order(proc: ServerProcess, symbol: str, order_id: int) -> dict[str, Any]:
    """`GET /fapi/v1/order`, signed with the demo account's secret."""
    query = signed_query(
        proc.secret_key, {"symbol": symbol, "orderId": order_id}, int(time.time() * 1000)
    )
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{proc.url}/fapi/v1/order?{query}", headers={"X-MBX-APIKEY": proc.api_key}
        ) as response,
    ):
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def test_serve_demo_trades_through_the_venue_and_rest_agrees_with_the_events(
    tmp_path: Path,
) -> None:
    """The demo account's stream carries the venue's answers to its own orders, and the
    orders' REST state agrees with their last event; first start and restart alike print
    the same demo keys."""
    demo_keys = []
    for _ in range(2):
        proc = await asyncio.to_thread(
            start_server_process, tmp_path / "data", "--demo", "--demo-rate", "20"
        )
        try:
            demo_keys.append(proc.api_key)
            key = await listen_key(proc.url, proc.api_key)
            last: dict[tuple[str, int], dict[str, Any]] = {}
            async with ws_connect(f"{proc.ws}/private/ws?listenKey={key}") as ws:
                while sum(o["X"] in FINAL for o in last.values()) < 5:
                    frame = await asyncio.wait_for(ws.recv(), FIRST_EVENT_TIMEOUT_S)
                    assert isinstance(frame, str)
                    event = decode_event(frame)
                    assert event_name(event) in VENUE_EVENTS, frame
                    body = json.loads(frame)
                    if body["e"] == "ORDER_TRADE_UPDATE":
                        last[(body["o"]["s"], body["o"]["i"])] = body["o"]
            for (symbol, order_id), order in last.items():
                if order["X"] in FINAL:  # a final state no longer changes
                    rest = await rest_order(proc, symbol, order_id)
                    assert rest["status"] == order["X"]
                    assert Decimal(rest["executedQty"]) == Decimal(order["z"])
                    assert rest["clientOrderId"] == order["c"]
        finally:
            assert await asyncio.to_thread(stop_server_process, proc) == 0
    assert demo_keys[0] == demo_keys[1]


async def test_simulate_counts_rejected_batches_as_errors_and_exits_1(
    server: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["simulate", "--url", server.url, "--admin-token", ADMIN_TOKEN]
    args += ["--fabricate", "--account-ids", "999", "--rate", "50", "--duration", "0.5", "--json"]
    assert await asyncio.to_thread(cli.main, args) == 1
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["published"] == 0
    assert summary["errors"] > 0
    assert summary["failed"] > 0
    assert "No account '999'" in summary["lastError"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--url", "http://127.0.0.1:1", "--admin-token", "t"], "admin API at"),
        (["--url", "http://127.0.0.1:1"], "needs --admin-token"),
        (["--in-process", "--rate", "-1"], "--rate must be >= 0"),
        (["--in-process", "--account-ids", "a,b"], "--account-ids"),
        (["--in-process", "--account-ids", "1"], "--account-ids needs --fabricate"),
        (["--in-process", "--rate", "0"], "trading needs --rate > 0"),
    ],
)
def test_simulate_refuses_what_cannot_work(
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("USERSTREAM_ADMIN_TOKEN", raising=False)
    assert cli.main(["simulate", *extra, "--duration", "1"]) == 2
    assert message in capsys.readouterr().err.replace("\n", "")


async def test_simulate_with_a_wrong_token_stops_before_publishing(
    server: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["simulate", "--url", server.url, "--admin-token", "wrong", "--duration", "1"]
    assert await asyncio.to_thread(cli.main, args) == 2
    assert "not authorized" in capsys.readouterr().err.replace("\n", "")
