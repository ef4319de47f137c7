"""`USERSTREAM_STALL_LOG`: the loop-lag sampler reports a blocked loop and sums up the lags."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time

import pytest

from userstream.exceptions import ConfigurationError
from userstream.server.stalls import ENV, StallLog


def _busy(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def _off_cpu(seconds: float) -> None:
    """Block the loop without running: as when the machine gives the core to another process."""
    time.sleep(seconds)


async def test_a_blocked_loop_is_logged_as_a_stall_and_summed_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stalls = StallLog(threshold_ms=10)
    stalls.start()
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="userstream.server.stalls"):
        _busy(0.03)  # the loop is blocked: no timer fires meanwhile
        await asyncio.sleep(0.01)
        stalls.stop()
    stalled = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalled) == 1
    assert float(stalled[0].split()[3]) >= 25
    assert stalls.worst_ms >= 25
    assert stalls.samples >= 2
    (summary,) = [r.getMessage() for r in caplog.records if "samples" in r.getMessage()]
    assert summary.endswith(f"max {stalls.worst_ms:.2f} ms")
    assert stalls.long_stalls == 1
    assert stalls.long_cpu_ms > 0  # the loop was blocked by this process's own work


async def test_a_stall_off_the_cpu_is_told_apart_from_one_on_it() -> None:
    stalls = StallLog(threshold_ms=10)
    stalls.start()
    await asyncio.sleep(0.01)
    _off_cpu(0.05)
    await asyncio.sleep(0.01)
    stalls.stop()
    assert stalls.long_stalls == 1
    assert stalls.long_cpu_ms < stalls.long_wall_ms / 2


def test_long_stalls_sum_up_their_share_on_a_cpu() -> None:
    stalls = StallLog(threshold_ms=5)
    stalls.record(0.2, 1.2, 1.0)  # short: not counted
    stalls.record(9.0, 10.0, 1.0)
    stalls.record(29.0, 30.0, 3.0)
    assert stalls.long_stalls == 2
    assert stalls.long_summary() == "2 of at least 5 ms, on a CPU 10% of their 40.0 ms"


def test_percentiles_come_from_the_buckets() -> None:
    stalls = StallLog(threshold_ms=1000)
    for lag in [0.01] * 98 + [2.0, 7.3]:
        stalls.record(lag)
    assert stalls.percentile_ms(50) == pytest.approx(0.05)
    assert stalls.percentile_ms(99) == pytest.approx(2.05)
    assert stalls.percentile_ms(99.9) == pytest.approx(7.3)  # the exact maximum caps it
    assert stalls.summary() == "p50 0.05, p99 2.05, p99.9 7.30, max 7.30 ms"


def test_the_environment_turns_it_on_with_a_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert StallLog.from_env() is None
    monkeypatch.setenv(ENV, "2.5")
    stalls = StallLog.from_env()
    assert stalls is not None
    assert stalls.threshold_ms == 2.5
    for bad in ("fast", "-1", "nan"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ConfigurationError, match=ENV):
            StallLog.from_env()


async def test_sigusr1_logs_the_distribution_so_far_and_starts_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stalls = StallLog(threshold_ms=10)
    stalls.start()
    try:
        await asyncio.sleep(0.01)
        _busy(0.03)
        await asyncio.sleep(0.01)
        assert stalls.worst_ms >= 25
        with caplog.at_level(logging.WARNING, logger="userstream.server.stalls"):
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.sleep(0.01)  # the loop runs the signal's handler
        (summary,) = [r.getMessage() for r in caplog.records if "samples" in r.getMessage()]
        assert float(summary.split()[-2]) >= 25
        assert stalls.worst_ms < 25  # counting afresh
    finally:
        stalls.stop()


async def test_a_slow_garbage_collection_is_logged_with_its_generation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooked = len(gc.callbacks)
    stalls = StallLog(threshold_ms=0)  # every collection counts as slow
    stalls.start()
    try:
        with caplog.at_level(logging.WARNING, logger="userstream.server.stalls"):
            gc.collect(2)
    finally:
        stalls.stop()
    assert stalls.collections[2] >= 1
    assert any("generation 2 took" in r.getMessage() for r in caplog.records)
    (summary,) = [
        r.getMessage() for r in caplog.records if "garbage collections:" in r.getMessage()
    ]
    assert "gen2 " in summary
    assert len(gc.callbacks) == hooked  # stop() unhooks it
