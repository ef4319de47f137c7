"""E-ordering within a window of the caller's clock; nothing held longer than the window."""

from __future__ import annotations

import pytest

from userstream.client.reorder import Reorderer


def test_window_zero_passes_everything_through_at_once() -> None:
    reorder: Reorderer[str] = Reorderer(window_ms=0)
    assert reorder.push("b", 2, now_ms=100) == ["b"]
    assert reorder.push("a", 1, now_ms=100) == ["a"]  # too late to reorder: released at once
    assert reorder.next_deadline() is None


def test_events_inside_the_window_come_out_in_e_order() -> None:
    reorder: Reorderer[str] = Reorderer(window_ms=50)
    assert reorder.push("c", 30, now_ms=1000) == []
    assert reorder.push("a", 10, now_ms=1010) == []
    assert reorder.push("b", 20, now_ms=1020) == []
    assert reorder.next_deadline() == 1050
    assert reorder.pop_due(1049) == []
    # "c" is due; everything with a smaller E goes first.
    assert reorder.pop_due(1050) == ["a", "b", "c"]
    assert reorder.next_deadline() is None


def test_no_event_is_held_longer_than_the_window() -> None:
    reorder: Reorderer[int] = Reorderer(window_ms=10)
    released: dict[int, int] = {}
    arrivals = {n: 100 + 3 * n for n in range(20)}
    times = sorted(set(arrivals.values()) | {t + 10 for t in arrivals.values()})
    for now in times:
        for n, at in arrivals.items():
            if at == now:
                for item in reorder.push(n, event_time=1000 - n, now_ms=now):
                    released[item] = now
        for item in reorder.pop_due(now):
            released[item] = now
    assert set(released) == set(arrivals)
    for n, at in arrivals.items():
        assert released[n] - at <= 10


def test_equal_event_times_keep_arrival_order() -> None:
    reorder: Reorderer[str] = Reorderer(window_ms=5)
    for name in "xyz":
        reorder.push(name, 7, now_ms=0)
    assert reorder.pop_due(5) == ["x", "y", "z"]


def test_count_bound_releases_the_smallest_first() -> None:
    reorder: Reorderer[int] = Reorderer(window_ms=1_000_000, max_held=2)
    assert reorder.push(3, 3, now_ms=0) == []
    assert reorder.push(1, 1, now_ms=0) == []
    assert reorder.push(2, 2, now_ms=0) == [1]
    assert len(reorder) == 2


def test_flush_releases_everything_in_order() -> None:
    reorder: Reorderer[int] = Reorderer(window_ms=100)
    for n in (5, 1, 4):
        reorder.push(n, n, now_ms=0)
    assert reorder.flush() == [1, 4, 5]
    assert reorder.next_deadline() is None
    assert reorder.push(2, 2, now_ms=0) == [2]  # older than 5, already released


def test_rejects_negative_window() -> None:
    with pytest.raises(ValueError, match="window_ms"):
        Reorderer(window_ms=-1)
