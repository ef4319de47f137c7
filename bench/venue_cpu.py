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
import json
import statistics
import sys
import tempfile
from typing import Any

from bench.common import (
    cpu_seconds,
    pin_load,
    start_pinned,
    stop,
)
from bench.venue import (
    AlternatingOrders,
    DemoTrader,
    Fills,
    ServerReady,
    WsApi,
    pipelined_rate,
    serve_args,
    ws_orders,
)


async def measure(
    pid: int, url: str, demo: dict[str, Any], seconds: float, repeat: int
) -> tuple[list[float], list[float], list[float]]:
    """(WS API µs/order per round, REST µs/order per round, WS API orders/s per round)."""
    port = int(url.rsplit(":", 1)[1])
    ws_url = url.replace("http://", "ws://")
    trader = await DemoTrader.open(url, demo)
    fills = await Fills.open(ws_url, trader.listen_key)
    ws_cpu: list[float] = []
    rest_cpu: list[float] = []
    ws_rates: list[float] = []
    try:
        ws = await WsApi.open(ws_url)
        await trader.logon(ws)
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
        ws.close()
        for round_ in range(repeat + 1):
            orders = AlternatingOrders(trader)
            before, cpu_before = fills.count, cpu_seconds(pid)
            _, failed = await pipelined_rate(port, orders, 4, 32, seconds)
            cpu = cpu_seconds(pid) - cpu_before
            assert not failed
            await fills.wait(before + orders.count)
            if round_:
                rest_cpu.append(cpu / orders.count * 1e6)
    finally:
        fills.close()
    return ws_cpu, rest_cpu, ws_rates


async def run(seconds: float, repeat: int) -> None:
    ready = ServerReady()
    with tempfile.TemporaryDirectory() as data:
        process, line = start_pinned([sys.executable, *serve_args(data)], ready)
        try:
            ws_cpu, rest_cpu, rates = await measure(
                process.pid, ready.url, json.loads(line)["demoAccount"], seconds, repeat
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
