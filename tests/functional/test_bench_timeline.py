"""`bench.fanout --latency --rate R --timeline PATH`: a short paced run against a real server
writes one row per window, with what was offered and delivered and the server's CPU share."""

from __future__ import annotations

import csv
from pathlib import Path

from bench.common import encoded_events
from bench.fanout import Result, Shape, Target, UserstreamTarget, latency, measure
from bench.timeline import WINDOW_S, Timeline


async def test_a_paced_run_is_recorded_window_by_window(tmp_path: Path) -> None:
    shape = Shape(1, 1)
    target = UserstreamTarget(shape, encoded_events(100), 25, 25)
    timelines: list[Timeline] = []

    async def traced(target: Target) -> Result:
        timelines.append(Timeline(target.pid))
        return await latency(target, shape, 20_000, 0.5, timeline=timelines[0])

    await measure(target, traced)
    (timeline,) = timelines
    path = tmp_path / "run.csv"
    image = timeline.write(path)
    assert image == tmp_path / "run.png"
    assert image.stat().st_size > 0
    with path.open() as lines:
        rows = list(csv.DictReader(lines))
    assert len(rows) >= 0.5 / WINDOW_S * 0.7  # windows close on publisher ticks past 20 ms
    offered = sum(float(row["offered_per_s"]) for row in rows) / len(rows)
    assert 15_000 < offered < 25_000  # 20,000 frames/s offered
    assert all(0 <= float(row["server_cpu_share"]) <= 1.2 for row in rows)
    assert any(float(row["server_cpu_share"]) > 0 for row in rows)
    assert any(float(row["worst_ms"]) > 0 for row in rows)
