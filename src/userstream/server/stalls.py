"""An opt-in record of the event loop's stalls: `USERSTREAM_STALL_LOG=<ms>` for `serve`.

A task asks to wake every millisecond and measures how late each wake-up is: anything that
fell due meanwhile (a timer, a read, a request queued behind a long loop turn) waited that
long too. A lag of at least the threshold is logged at WARNING with its length and the share of
it the process spent on a CPU (its CPU time over the wall time of the wait): near 100 % the
server was busy with its own work, near 0 % it was not running at all (the machine gave its
core to something else). When the server stops one line gives the distribution of every lag
(p50, p99, p99.9 and the maximum) and the on-CPU share over all the long ones. This is how
the latency tail of docs/benchmarks.md is looked for. The sampler costs about 2 % of a core (a
thousand wake-ups a second), so it runs only when asked for.

While it runs, every garbage collection is timed too (`gc.callbacks`): a pass that takes at
least the threshold is logged with its generation, and the summary counts the passes of each
generation with their longest, so a stall can be told apart from a collection.

SIGUSR1 logs the summary so far and starts over: a benchmark sends it around the phase it
measures, so the distribution covers that phase only (bench/venue.py `--stall-log`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import signal
import time
from typing import Any

from userstream.exceptions import ConfigurationError

log = logging.getLogger(__name__)

ENV = "USERSTREAM_STALL_LOG"
PERIOD_S = 0.001
BUCKET_MS = 0.05  # lags are counted in buckets this wide, up to `BUCKETS` of them
BUCKETS = 4000  # 200 ms; longer lags share the last bucket (the maximum is kept exactly)


class StallLog:
    """Samples the running loop's lag until `stop()`; see the module docstring."""

    def __init__(self, threshold_ms: float) -> None:
        self.threshold_ms = threshold_ms
        self.counts = [0] * BUCKETS
        self.samples = 0
        self.worst_ms = 0.0
        # The lags of at least the threshold: how many, their wall time and CPU time, in ms.
        self.long_stalls = 0
        self.long_wall_ms = 0.0
        self.long_cpu_ms = 0.0
        # Per generation: how many collections ran and the longest, in ms.
        self.collections = [0, 0, 0]
        self.longest_collection_ms = [0.0, 0.0, 0.0]
        self._collecting_since = 0.0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(cls) -> StallLog | None:
        """A log with the threshold `$USERSTREAM_STALL_LOG` gives in ms, or None if unset.

        Raises:
            ConfigurationError: The variable is set but is not a number of milliseconds ≥ 0.
        """
        given = os.environ.get(ENV)
        if not given:
            return None
        try:
            threshold = float(given)
        except ValueError:
            threshold = math.nan
        if not threshold >= 0:
            raise ConfigurationError(f"{ENV} must be a number of milliseconds >= 0, not {given!r}")
        return cls(threshold)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._sample())
        gc.callbacks.append(self._on_gc)
        loop.add_signal_handler(signal.SIGUSR1, self.restart)

    def stop(self) -> None:
        """Stop sampling and log the distribution of the lags seen."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
            asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
            gc.callbacks.remove(self._on_gc)
        self._report()

    def restart(self) -> None:
        """Log the distribution so far and start counting afresh (on SIGUSR1)."""
        self._report()
        self.counts = [0] * BUCKETS
        self.samples = 0
        self.worst_ms = 0.0
        self.long_stalls = 0
        self.long_wall_ms = 0.0
        self.long_cpu_ms = 0.0
        self.collections = [0, 0, 0]
        self.longest_collection_ms = [0.0, 0.0, 0.0]

    def _report(self) -> None:
        log.warning("event loop lag over %d samples: %s", self.samples, self.summary())
        log.warning("long stalls: %s", self.long_summary())
        log.warning("garbage collections: %s", self.collection_summary())

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._collecting_since = time.perf_counter()
            return
        took_ms = (time.perf_counter() - self._collecting_since) * 1000
        generation = int(info["generation"])
        self.collections[generation] += 1
        if took_ms > self.longest_collection_ms[generation]:
            self.longest_collection_ms[generation] = took_ms
        if took_ms >= self.threshold_ms:
            log.warning("garbage collection of generation %d took %.2f ms", generation, took_ms)

    def collection_summary(self) -> str:
        return ", ".join(
            f"gen{g} {n} (longest {ms:.2f} ms)"
            for g, (n, ms) in enumerate(
                zip(self.collections, self.longest_collection_ms, strict=True)
            )
        )

    def record(self, lag_ms: float, wall_ms: float = 0.0, cpu_ms: float = 0.0) -> None:
        """Count one lag; `wall_ms` and `cpu_ms` are the wait it ended (the asked period
        included) and the process's CPU time over that wait."""
        self.samples += 1
        self.counts[min(BUCKETS - 1, max(0, int(lag_ms / BUCKET_MS)))] += 1
        if lag_ms > self.worst_ms:
            self.worst_ms = lag_ms
        if lag_ms >= self.threshold_ms:
            self.long_stalls += 1
            self.long_wall_ms += wall_ms
            self.long_cpu_ms += cpu_ms
            log.warning(
                "event loop stalled %.2f ms (on a CPU %.0f%% of it)",
                lag_ms,
                100 * cpu_ms / wall_ms if wall_ms > 0 else 0.0,
            )

    def long_summary(self) -> str:
        """How many lags reached the threshold and the process's on-CPU share of their time."""
        share = self.long_cpu_ms / self.long_wall_ms if self.long_wall_ms > 0 else 0.0
        return (
            f"{self.long_stalls} of at least {self.threshold_ms:g} ms, "
            f"on a CPU {share:.0%} of their {self.long_wall_ms:.1f} ms"
        )

    def percentile_ms(self, q: float) -> float:
        """The upper edge of the bucket holding the `q`-th percentile lag (0 with none)."""
        rank = q / 100 * self.samples
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if count and seen >= rank:
                return min((index + 1) * BUCKET_MS, self.worst_ms)
        return 0.0

    def summary(self) -> str:
        quantiles = ", ".join(f"p{q:g} {self.percentile_ms(q):.2f}" for q in (50, 99, 99.9))
        return f"{quantiles}, max {self.worst_ms:.2f} ms"

    async def _sample(self) -> None:
        clock, cpu = time.perf_counter, time.process_time
        while True:
            asked, cpu_before = clock(), cpu()
            await asyncio.sleep(PERIOD_S)
            wall_ms = (clock() - asked) * 1000
            self.record(wall_ms - PERIOD_S * 1000, wall_ms, (cpu() - cpu_before) * 1000)
