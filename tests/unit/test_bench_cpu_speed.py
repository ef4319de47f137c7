"""`bench.cpu_speed`: the spread figures of a probe, and a real probe of one core."""

from __future__ import annotations

import os

from bench.cpu_speed import Speed, measure


def test_slow_windows_are_counted_against_the_median_and_their_longest_stretch_timed() -> None:
    # Ten windows of 20 ms: the median is 100; 60 and 70 are slow (< 85), 90 is not.
    speed = Speed(0, 20.0, [100, 100, 60, 70, 100, 90, 100, 60, 100, 100])
    assert speed.median == 100
    assert speed.slow_share == 0.3
    assert speed.longest_slow_ms == 40.0  # the 60, 70 pair
    assert speed.quantile(0.0) == 0.6
    assert speed.quantile(1.0) == 1.0
    assert "30% of windows below 85%, longest such stretch 40 ms" in speed.summary()


def test_a_real_probe_of_a_core_gives_one_speed_per_window() -> None:
    core = min(os.sched_getaffinity(0))
    speed = measure(core, seconds=0.3, window_ms=20)
    assert speed.core == core
    assert 10 <= len(speed.speeds) <= 16  # 0.3 s of 20 ms windows, each at least 20 ms
    assert all(value > 0 for value in speed.speeds)
    assert 0 < speed.quantile(0.0) <= 1.0
