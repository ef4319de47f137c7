"""`SnapshotPlanner`: snapshots are coalesced, rate-limited and retried with backoff."""

from __future__ import annotations

import itertools

from userstream.protocol.resync import SnapshotPlanner


def test_a_burst_of_gaps_costs_one_snapshot_per_interval() -> None:
    planner = SnapshotPlanner(min_interval_ms=1_000)
    planner.request("start")
    assert planner.due(0)
    assert planner.started(0) == ["start"]
    planner.request("disconnected")  # while in flight: one more after it, not three
    planner.request("disconnected")
    planner.request("key_expired")
    assert not planner.due(10)
    planner.finished(True, ["start"])
    assert planner.state.value == "wanted"
    assert not planner.due(999)
    assert planner.due(1_000)
    assert planner.started(1_000) == ["disconnected", "disconnected", "key_expired"]
    planner.finished(True, [])
    assert planner.state.value == "idle"
    assert not planner.due(10_000)


def test_a_failed_snapshot_is_retried_later_and_later() -> None:
    planner = SnapshotPlanner(min_interval_ms=0, retry_first_ms=500, retry_max_ms=2_000)
    planner.request("start")
    starts = []
    now = 0
    for _ in range(5):
        while not planner.due(now):
            now += 100
        starts.append(now)
        reasons = planner.started(now)
        planner.finished(False, reasons, now)
    assert [b - a for a, b in itertools.pairwise(starts)] == [500, 1_000, 2_000, 2_000]
    assert planner.reasons == ["start"]


def test_retry_after_is_honoured() -> None:
    planner = SnapshotPlanner(min_interval_ms=0)
    planner.request("start")
    planner.finished(False, planner.started(0), now_ms=0, retry_after_ms=30_000)
    assert not planner.due(29_999)
    assert planner.due(30_000)
