"""Server CPU per venue order, repeated on one server (issue #12, "Speed").

    .venv/bin/python -m bench.venue_cpu [--seconds 2] [--repeat 3]

`bench.venue` measures every figure of the issue once per server; this script measures only
the server's CPU per signed MARKET order, over the WebSocket API and over REST, `--repeat`
times on the same server (after one warm-up round each), and prints each round and the
medians. Every fill's events go to a connected user stream, as in `bench.venue`. To see where the
time goes, attach `py-spy record -p PID` (not `--native`) to the server meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from websockets.asyncio.client import connect

from bench.common import (
    TOKEN,
    UNLIMITED_WEIGHT,
    cpu_seconds,
    pin_load,
    start_pinned,
    stop,
)
from bench.venue import Fills, pipelined_rate, signed_order, ws_orders
from userstream.protocol.signing import ws_payload


async def measure(
    pid: int, url: str, demo: dict[str, Any], seconds: float, repeat: int
) -> tuple[list[float], list[float], list[float]]:
    """(WS API µs/order per round, REST µs/order per round, WS API orders/s per round)."""
    port = int(url.rsplit(":", 1)[1])
    ws_url = url.replace("http://", "ws://")
    api_key, secret = demo["apiKey"], demo["secretKey"].encode()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}
        ) as response:
            listen_key = (await response.json())["listenKey"]
        private = Ed25519PrivateKey.generate()
        pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        async with http.post(
            f"{url}/admin/v1/accounts/{demo['accountId']}/apiKeys",
            json={"publicKey": pem.decode()},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response:
            ed_key = (await response.json())["apiKey"]
    stream = await connect(f"{ws_url}/private/ws?listenKey={listen_key}", max_queue=None)
    fills = Fills()
    reader = asyncio.create_task(fills.read(stream))
    ws_cpu: list[float] = []
    rest_cpu: list[float] = []
    ws_rates: list[float] = []
    try:
        ws = await connect(f"{ws_url}/ws-fapi/v1", max_queue=None)
        logon: dict[str, Any] = {"apiKey": ed_key, "timestamp": int(time.time() * 1000)}
        logon["signature"] = base64.b64encode(private.sign(ws_payload(logon))).decode()
        await ws.send(json.dumps({"id": "logon", "method": "session.logon", "params": logon}))
        assert json.loads(await ws.recv())["status"] == 200
        count = int(6000 * seconds)
        for round_ in range(repeat + 1):
            before, cpu_before = fills.count, cpu_seconds(pid)
            rate = await ws_orders(ws, count, 64, None, {})
            cpu = cpu_seconds(pid) - cpu_before
            await fills.wait(before + count)
            assert fills.count - before == count, "fills missing on the stream"
            if round_:
                ws_cpu.append(cpu / count * 1e6)
                ws_rates.append(rate)
        await ws.close()
        counter = [0]

        def order() -> bytes:
            counter[0] += 1
            return signed_order(api_key, secret, "BUY" if counter[0] % 2 else "SELL")

        for round_ in range(repeat + 1):
            counter[0] = 0
            before, cpu_before = fills.count, cpu_seconds(pid)
            _, failed = await pipelined_rate(port, order, 4, 32, seconds)
            cpu = cpu_seconds(pid) - cpu_before
            assert not failed
            await fills.wait(before + counter[0])
            if round_:
                rest_cpu.append(cpu / counter[0] * 1e6)
    finally:
        reader.cancel()
        await stream.close()
    return ws_cpu, rest_cpu, ws_rates


async def run(seconds: float, repeat: int) -> None:
    seen: dict[str, str] = {}

    def ready(line: str) -> str | None:
        if line.startswith("userstream listening on "):
            seen["url"] = line.split()[-1]
        elif line.startswith('{"demoAccount"'):
            return line
        return None

    with tempfile.TemporaryDirectory() as data:
        process, line = start_pinned(
            [
                sys.executable,
                *("-m", "userstream.cli", "serve", "--port", "0", "--data", data),
                *("--admin-token", TOKEN, "--initial-balance", "1000000000"),
                *("--weight-per-minute", str(UNLIMITED_WEIGHT)),
                *("--orders-per-10s", str(UNLIMITED_WEIGHT)),
                *("--orders-per-minute", str(UNLIMITED_WEIGHT)),
            ],
            ready,
        )
        try:
            ws_cpu, rest_cpu, rates = await measure(
                process.pid, seen["url"], json.loads(line)["demoAccount"], seconds, repeat
            )
        finally:
            stop(process)
    print("WS API µs/order:", " ".join(f"{v:.1f}" for v in ws_cpu))
    print("WS API orders/s:", " ".join(f"{v:,.0f}" for v in rates))
    print("REST µs/order:  ", " ".join(f"{v:.1f}" for v in rest_cpu))
    print(
        f"median: WS API {statistics.median(ws_cpu):.1f} µs/order "
        f"({statistics.median(rates):,.0f}/s), REST {statistics.median(rest_cpu):.1f} µs/order"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="about how long each round")
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds of each kind")
    args = parser.parse_args()
    pin_load()
    asyncio.run(run(args.seconds, args.repeat))


if __name__ == "__main__":
    main()
