"""A paced latency run, window by window: what was offered, what arrived, how busy the server was.

`bench.fanout --latency --rate R --timeline PATH` writes PATH (CSV) and PATH with `.png`.
It shows whether a latency tail is a stall (the server's CPU share drops while frames stop
arriving) or a backlog (the server at its whole core, delivering less than is offered, with
the same offered load as the windows before). The server's CPU is its main thread's time on
a CPU, from `/proc/<pid>/schedstat` (nanoseconds), read on the publisher's ticks.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import ticker

from bench.common import Received

WINDOW_S = 0.02


@dataclass
class Window:
    start_s: float
    offered_per_s: float
    delivered_per_s: float
    server_cpu_share: float
    worst_ms: float  # the latest stamped frame received in the window


@dataclass
class Timeline:
    pid: int
    windows: list[Window] = field(default_factory=list)
    _started: float = 0.0
    _at: float = 0.0
    _sent: int = 0
    _received: int = 0
    _cpu_ns: int = 0
    _read_stamps: int = 0

    def _server_cpu_ns(self) -> int:
        return int(Path(f"/proc/{self.pid}/schedstat").read_text().split()[0])

    def start(self, received: Received) -> None:
        self._started = self._at = time.perf_counter()
        self._received = received.count
        self._cpu_ns = self._server_cpu_ns()
        self._read_stamps = len(received.latencies_ns or [])

    def tick(self, sent_frames: int, received: Received) -> None:
        """Close the window if `WINDOW_S` has passed (called on every publisher tick)."""
        now = time.perf_counter()
        span = now - self._at
        if span < WINDOW_S:
            return
        cpu_ns = self._server_cpu_ns()
        stamps = received.latencies_ns or []
        new = stamps[self._read_stamps :]
        self.windows.append(
            Window(
                start_s=self._at - self._started,
                offered_per_s=(sent_frames - self._sent) / span,
                delivered_per_s=(received.count - self._received) / span,
                server_cpu_share=(cpu_ns - self._cpu_ns) / 1e9 / span,
                worst_ms=max(new) / 1e6 if new else 0.0,
            )
        )
        self._at, self._sent, self._received = now, sent_frames, received.count
        self._cpu_ns, self._read_stamps = cpu_ns, len(stamps)

    def write(self, path: Path) -> Path:
        """Write the windows as CSV at `path` and their plot beside it; returns the plot."""
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(
                ["start_s", "offered_per_s", "delivered_per_s", "server_cpu_share", "worst_ms"]
            )
            for w in self.windows:
                writer.writerow(
                    [
                        f"{w.start_s:.3f}",
                        f"{w.offered_per_s:.0f}",
                        f"{w.delivered_per_s:.0f}",
                        f"{w.server_cpu_share:.3f}",
                        f"{w.worst_ms:.2f}",
                    ]
                )
        starts = [w.start_s for w in self.windows]
        fig, (load, late) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
        load.plot(starts, [w.offered_per_s / 1000 for w in self.windows], label="offered")
        load.plot(starts, [w.delivered_per_s / 1000 for w in self.windows], label="delivered")
        load.set_ylabel("frames/s (thousands)")
        share = load.twinx()
        share.plot(
            starts, [100 * w.server_cpu_share for w in self.windows], color="tab:red", lw=0.8
        )
        share.set_ylabel("server main thread CPU (%)", color="tab:red")
        share.set_ylim(0, 110)
        load.legend(loc="lower left")
        late.plot(starts, [w.worst_ms for w in self.windows], color="tab:purple")
        late.set_yscale("log")
        worst = max((w.worst_ms for w in self.windows), default=1.0)
        late.set_yticks([t for t in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) if t < 2 * worst])
        late.yaxis.set_major_formatter(ticker.ScalarFormatter())
        late.yaxis.set_minor_formatter(ticker.NullFormatter())
        late.set_ylabel("latest frame in window (ms)")
        late.set_xlabel(f"time into the run (s), {WINDOW_S * 1000:.0f} ms windows")
        fig.tight_layout()
        image = path.with_suffix(".png")
        fig.savefig(image)
        plt.close(fig)
        return image
