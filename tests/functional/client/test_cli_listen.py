"""`userstream listen --local --json` against a server process; Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN, start_server_process, stop_server_process


def admin(url: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        f"{url}/admin/v1/{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_listen_json_prints_events_and_gaps_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    server = start_server_process(tmp_path / "data")
    try:
        port = server.url.rsplit(":", 1)[1]
        listen = subprocess.Popen(
            [sys.executable, "-m", "userstream.cli", "listen", "--local", "--port", port,
             "--api-key", server.api_key, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert listen.stdout is not None
        assert listen.stderr is not None
        try:
            assert "connected" in listen.stderr.readline()
            account = server.demo["accountId"]
            events = [
                {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "BTCUSDT", "l": n}} for n in (5, 6)
            ]
            assert admin(server.url, f"accounts/{account}/events", events) == {
                "accepted": 2,
                "connections": 1,
            }
            lines = [json.loads(listen.stdout.readline()) for _ in range(2)]
            assert [line["ac"]["l"] for line in lines] == [5, 6]
            assert lines[0]["e"] == "ACCOUNT_CONFIG_UPDATE"
            assert admin(server.url, "connections/drop", {"accountId": account}) == {"dropped": 1}
            gap = json.loads(listen.stdout.readline())
            assert gap["gap"]["reason"] == "disconnected"
            listen.send_signal(signal.SIGINT)
            assert listen.wait(timeout=10) == 0
            keepalive = urllib.request.Request(
                f"{server.url}/fapi/v1/listenKey",
                headers={"X-MBX-APIKEY": server.api_key},
                method="PUT",
            )
            with pytest.raises(urllib.error.HTTPError) as closed:
                urllib.request.urlopen(keepalive, timeout=5)
            assert closed.value.code == 400  # -1125: the key was DELETEd on the way out
            closed.value.close()
        finally:
            if listen.poll() is None:
                listen.kill()
                listen.wait()
            listen.stdout.close()
            listen.stderr.close()
    finally:
        stop_server_process(server)
