"""How steady each core's speed is: a fixed pure-Python loop, timed in short windows.

    .venv/bin/python -m bench.cpu_speed [--seconds 10] [--window-ms 20] [--cores 0,1]

Each core is probed alone, by a child process pinned to it. A window's speed is loop
iterations per second of the child's own CPU time (`time.thread_time`), so time the core gave
to other tasks does not count: what varies is how fast the core runs while it runs the probe.
On a virtual machine that is the host's business (other tenants on the same physical core or
its SMT sibling, frequency), and nothing inside the guest shows it: `/proc/stat` counts no
steal time on this machine while the probe's speed swings by a third.

Why the benchmarks care: the latency rows run at half of the maximum the server reached in an
earlier run. While the server's core runs at 60% of its usual speed, that half load takes
~85% of the core, and the queueing that follows is the latency tail (bench/analysis.md,
"The host's speed"). `bench.run` probes the server's core before its sections and reports
the spread beside the latency figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.common import LOAD_CORE, SERVER_CORE

SLOW = 0.85  # a window below this share of the median speed counts as slow
ITERATIONS_PER_CHECK = 200


@dataclass
class Speed:
    core: int
    window_ms: float
    speeds: list[float]  # iterations per CPU-second, window by window, in time order

    @property
    def median(self) -> float:
        return statistics.median(self.speeds)

    def quantile(self, q: float) -> float:
        """The q-quantile window's speed as a share of the median (0.6 = 40% slower)."""
        ordered = sorted(self.speeds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / self.median

    @property
    def slow_share(self) -> float:
        """Share of the windows below `SLOW` of the median speed."""
        limit = SLOW * self.median
        return sum(1 for speed in self.speeds if speed < limit) / len(self.speeds)

    @property
    def longest_slow_ms(self) -> float:
        """The longest run of consecutive slow windows, in ms."""
        limit, longest, run = SLOW * self.median, 0, 0
        for speed in self.speeds:
            run = run + 1 if speed < limit else 0
            longest = max(longest, run)
        return longest * self.window_ms

    def summary(self) -> str:
        return (
            f"core {self.core}: {self.median / 1e6:.1f} M iterations/CPU-s (median of "
            f"{len(self.speeds)} windows of {self.window_ms:g} ms); p10 {self.quantile(0.1):.2f}, "
            f"p1 {self.quantile(0.01):.2f}, slowest {self.quantile(0.0):.2f} of the median; "
            f"{self.slow_share:.0%} of windows below {SLOW:.0%}, longest such stretch "
            f"{self.longest_slow_ms:.0f} ms"
        )


def probe(seconds: float, window_s: float) -> list[float]:
    """Speed of this process's core, window by window (run pinned to one core)."""
    speeds = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        wall0, cpu0, count = time.perf_counter(), time.thread_time(), 0
        while time.perf_counter() - wall0 < window_s:
            for _ in range(ITERATIONS_PER_CHECK):
                count += 1
        cpu = time.thread_time() - cpu0
        if cpu > 0:
            speeds.append(count / cpu)
    return speeds


def measure(core: int, seconds: float, window_ms: float = 20.0) -> Speed:
    """Probe `core` from a child process pinned to it."""
    command = [
        "taskset",
        "-c",
        str(core),
        sys.executable,
        "-m",
        "bench.cpu_speed",
        "--child",
        "--seconds",
        str(seconds),
        "--window-ms",
        str(window_ms),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return Speed(core, window_ms, json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="probe length per core")
    parser.add_argument("--window-ms", type=float, default=20.0)
    parser.add_argument("--cores", default=f"{SERVER_CORE},{LOAD_CORE}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(probe(args.seconds, args.window_ms / 1000)))
        return
    for core in (int(text) for text in args.cores.split(",")):
        print(measure(core, args.seconds, args.window_ms).summary())


if __name__ == "__main__":
    main()
