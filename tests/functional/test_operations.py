"""What an operator sees of a real server (issue #15 item 6 and "What an operator of a gateway
expects"): log lines without secrets, Prometheus metrics, /health and /ready, the drain on
SIGTERM, and TLS on the server's own port."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.conftest import (
    ADMIN_TOKEN,
    Harness,
    event_fixture,
    running_harness,
    start_server_process,
    stop_server_process,
)
from tests.functional.wsclient import MINUTE, recv_json, sync, wait_closed, ws_connect
from userstream.protocol.limits import WeightLimits
from userstream.server.ops import drain


def order() -> dict[str, Any]:
    return event_fixture("order_trade_update_doc")


async def get(server: Harness, path: str) -> tuple[int, str]:
    async with server.http.get(f"{server.url}{path}") as response:
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by prometheus_client's own parser."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


# --- logging ---------------------------------------------------------------------------------


async def test_info_logs_connections_keys_and_rejections_without_secrets(
    server: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="userstream")
    account = server.account()
    key = await server.listen_key(account)
    async with server.http.put(
        f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
    ) as response:
        assert response.status == 200
    wrong_key = account.api_key[:-4] + "zzzz"
    async with server.http.post(
        f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": wrong_key}
    ) as response:
        assert response.status == 401
    async with server.http.get(
        f"{server.url}/admin/v1/stats", headers={"Authorization": "Bearer not-the-token"}
    ) as response:
        assert response.status == 401
    unknown = "x" * 64
    async with ws_connect(f"{server.ws}/private/ws?listenKey={unknown}") as silent:
        await sync(silent)
    async with ws_connect(f"{server.ws}/ws/{key}") as ws:
        await server.publish(account, [order()])
        assert (await recv_json(ws))["e"] == "ORDER_TRADE_UPDATE"
        await ws.close(1000, "bye")
    async with ws_connect(f"{server.ws}/ws-fapi/v1") as api:
        await api.send(
            json.dumps({"id": 1, "method": "userDataStream.ping", "params": {"apiKey": wrong_key}})
        )
        assert (await recv_json(api))["status"] == 401
    async with server.http.delete(
        f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
    ) as response:
        assert response.status == 200
    await server.listen_key(account)
    await server.advance(61 * MINUTE)
    for _ in range(100):  # the server sees the last close a loop turn after the client
        if not server.server.streams and not server.server.ws_api_sessions:
            break
        await asyncio.sleep(0.01)

    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    short = key[:8] + "…"

    def one(*parts: str) -> str:
        matching = [line for line in info if all(part in line for part in parts)]
        assert matching, f"no info line with {parts}:\n" + "\n".join(info)
        return matching[0]

    one("listenKey", short, "started", f"account {account.id}")
    one("listenKey", short, "kept alive")
    one("listenKey", short, "closed")
    one("listenKey", "expired")
    one("rejected POST /fapi/v1/listenKey", "401 -2015", account.api_key[:8] + "…")
    one("rejected userDataStream.ping", "401 -2015")
    one("rejected GET /admin/v1/stats", "401 -1002")
    one("stream opened on /private", unknown[:8] + "…", "no events will arrive")
    one("stream opened on /legacy", short)
    one("stream on /legacy closed", "1000 bye")
    one("WebSocket API connection opened")
    one("WebSocket API connection closed")
    assert any(f"account {account.id}: 1 events, 1 frames queued" in line for line in debug)

    everything = caplog.text + "\n".join(info + debug)
    for secret in (
        key,
        account.api_key,
        wrong_key,
        account.secret_key,
        unknown,
        ADMIN_TOKEN,
        "not-the-token",
    ):
        assert secret not in everything


def test_serve_logs_json_lines(tmp_path: Path) -> None:
    proc = start_server_process(tmp_path / "data", "--log-level", "info", "--log-format", "json")
    try:
        request = urllib.request.Request(
            f"{proc.url}/fapi/v1/listenKey",
            method="POST",
            headers={"X-MBX-APIKEY": proc.api_key},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            key = json.load(response)["listenKey"]
    finally:
        assert stop_server_process(proc) == 0
    stderr = (tmp_path / "data.stderr.log").read_text()
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    started = [e for e in entries if "started for account" in e["message"]]
    assert started
    assert started[0]["level"] == "INFO"
    assert set(started[0]) == {"time", "level", "logger", "message"}
    # The start banner shows the demo API key on purpose (to copy into a client); the log
    # lines never carry it, and nothing carries a listenKey, secret key or token whole.
    logged = "\n".join(json.dumps(entry) for entry in entries)
    assert proc.api_key not in logged
    for secret in (key, proc.secret_key, ADMIN_TOKEN):
        assert secret not in stderr


# --- metrics ---------------------------------------------------------------------------------


async def test_metrics_scrape_counts_what_happened(tmp_path: Path) -> None:
    limits = WeightLimits(per_minute=30)
    async with running_harness(tmp_path / "data", weight_limits=limits) as server:
        account = server.account()
        key = await server.listen_key(account)
        async with (
            ws_connect(f"{server.ws}/ws/{key}") as legacy,
            ws_connect(f"{server.ws}/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE") as p,
            ws_connect(f"{server.ws}/ws-fapi/v1") as api,
        ):
            ping = {"id": 1, "method": "userDataStream.ping", "params": {"apiKey": account.api_key}}
            await api.send(json.dumps(ping))
            assert (await recv_json(api))["status"] == 200
            await server.publish(account, [order(), order(), event_fixture("trade_lite_doc")])
            for _ in range(3):
                await recv_json(legacy)
            for _ in range(2):
                await recv_json(p)
            statuses = []
            for _ in range(40):
                async with server.http.get(f"{server.url}/fapi/v1/time") as response:
                    statuses.append(response.status)
            assert 429 in statuses
            status, text = await get(server, "/metrics")
            assert status == 200

        # A second server in the same process keeps its own registry.
        async with running_harness(tmp_path / "other") as other:
            _, other_text = await get(other, "/metrics")

    found = samples(text)
    assert found["userstream_connections", (("route", "legacy"),)] == 1
    assert found["userstream_connections", (("route", "private"),)] == 1
    assert found["userstream_connections", (("route", "ws-api"),)] == 1
    assert found["userstream_connections", (("route", "market"),)] == 0
    assert found["userstream_listen_keys_active", ()] == 1
    assert found["userstream_events_accepted_total", ()] == 3
    assert found["userstream_events_received_total", (("type", "ORDER_TRADE_UPDATE"),)] == 2
    assert found["userstream_events_received_total", (("type", "TRADE_LITE"),)] == 1
    assert found["userstream_events_delivered_total", (("type", "ORDER_TRADE_UPDATE"),)] == 4
    assert found["userstream_events_delivered_total", (("type", "TRADE_LITE"),)] == 1
    assert found["userstream_sent_bytes_total", ()] > 0
    assert found["userstream_slow_consumer_disconnects_total", ()] == 0
    assert found["userstream_rate_limit_rejections_total", ()] == len(
        [s for s in statuses if s in (418, 429)]
    )
    assert found["userstream_ready", ()] == 1
    time_path = (("le", "+Inf"), ("path", "/fapi/v1/time"))
    assert found["userstream_request_duration_seconds_bucket", time_path] == 40
    assert found["userstream_request_duration_seconds_count", (("path", "/admin/v1"),)] == 1
    assert found["userstream_request_duration_seconds_count", (("path", "/ws-fapi/v1"),)] == 1

    other_found = samples(other_text)
    assert other_found["userstream_events_accepted_total", ()] == 0
    assert ("userstream_request_duration_seconds_count", (("path", "/admin/v1"),)) not in (
        other_found
    )


# --- health, readiness, drain ----------------------------------------------------------------


async def test_health_and_ready_then_drain_closes_with_1001(server: Harness) -> None:
    assert (await get(server, "/health"))[0] == 200
    assert (await get(server, "/ready"))[0] == 200
    account = server.account()
    key = await server.listen_key(account)
    async with (
        ws_connect(f"{server.ws}/ws/{key}") as a,
        ws_connect(f"{server.ws}/ws/{key}") as b,
    ):
        draining = asyncio.ensure_future(drain(server.server, 0.2))
        closed = await asyncio.gather(wait_closed(a), wait_closed(b))
        assert list(closed) == [(1001, "server draining")] * 2
        status, body = await get(server, "/ready")
        assert (status, json.loads(body)["reason"]) == (503, "draining")
        assert (await get(server, "/health"))[0] == 200
        await draining
    async with server.http.get(
        f"{server.url}/ws/{key}",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    ) as refused:
        assert refused.status == 503


async def test_sigterm_drains_over_the_window(tmp_path: Path) -> None:
    """`serve --drain-seconds 2` (embedded mode drains too when asked; with --bus it is on by
    default): /ready fails at once and the closes are spread, not all at once."""
    proc = start_server_process(tmp_path / "data", "--drain-seconds", "2")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{proc.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": proc.api_key}
            ) as response:
                key = (await response.json())["listenKey"]
            conns = [await ws_connect(f"{proc.ws}/ws/{key}").__aenter__() for _ in range(5)]
            proc.process.send_signal(signal.SIGTERM)
            ready = 200
            for _ in range(100):
                async with http.get(f"{proc.url}/ready") as response:
                    ready = response.status
                if ready == 503:
                    break
                await asyncio.sleep(0.01)
            assert ready == 503

            async def closed_at(ws: Any) -> tuple[int | None, float]:
                await ws.wait_closed()
                return ws.close_code, time.monotonic()

            results = await asyncio.wait_for(asyncio.gather(*(closed_at(ws) for ws in conns)), 10)
        assert {code for code, _ in results} == {1001}
        times = sorted(t for _, t in results)
        # Five closes over 2 s: 0.4 s apart by design; all within a moment would mean no spread.
        assert times[-1] - times[0] >= 1.0
    finally:
        assert stop_server_process(proc) == 0


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return chain, key


async def test_tls_serves_rest_streams_and_websocket_api(
    tmp_path: Path, ca: trustme.CA, tls_files: tuple[Path, Path]
) -> None:
    chain, key_file = tls_files
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    async with running_harness(tmp_path / "data", tls_cert=chain, tls_key=key_file) as server:
        assert server.url.startswith("https://")
        assert server.ws.startswith("wss://")
        account = server.account()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as http:
            async with http.post(
                f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
            ) as response:
                assert response.status == 200
                key = (await response.json())["listenKey"]
            async with http.post(
                f"{server.url}/admin/v1/accounts/{account.id}/events",
                json=[order()],
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as published:
                assert published.status == 200
        async with connect(f"{server.ws}/ws/{key}", ssl=client_ssl) as ws:
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as http,
                http.post(
                    f"{server.url}/admin/v1/accounts/{account.id}/events",
                    json=[order()],
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                ) as published,
            ):
                assert published.status == 200
            assert (await recv_json(ws))["e"] == "ORDER_TRADE_UPDATE"
        async with connect(f"{server.ws}/ws-fapi/v1", ssl=client_ssl) as api:
            request = {
                "id": 7,
                "method": "userDataStream.ping",
                "params": {"apiKey": account.api_key},
            }
            await api.send(json.dumps(request))
            answer = await recv_json(api)
            assert (answer["id"], answer["status"], answer["result"]["listenKey"]) == (7, 200, key)
        # A plain-text client gets nothing useful from a TLS port.
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                async with plain.get(
                    server.url.replace("https://", "http://") + "/fapi/v1/time"
                ) as response:
                    await response.read()


async def test_metrics_port_moves_metrics_off_the_main_port(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "data", metrics_port=0) as server:
        port = server.server.ops.port
        assert port is not None
        assert port != server.server.port
        ops_url = f"http://127.0.0.1:{port}"
        async with server.http.get(f"{ops_url}/metrics") as response:
            assert response.status == 200
            assert "userstream_listen_keys_active" in samples_names(await response.text())
        for path in ("/health", "/ready"):
            async with server.http.get(f"{ops_url}{path}") as response:
                assert response.status == 200
            assert (await get(server, path))[0] == 200
        assert (await get(server, "/metrics"))[0] == 404
        async with server.http.get(f"{ops_url}/fapi/v1/time") as response:
            assert response.status == 404


def samples_names(text: str) -> set[str]:
    return {name for name, _ in samples(text)}
