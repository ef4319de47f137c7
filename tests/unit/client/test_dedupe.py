"""Rotation overlap matching: only the other connection's copy of a frame is dropped."""

from __future__ import annotations

import pytest

from userstream.client.dedupe import Overlap


def frame(n: int) -> bytes:
    return b'{"e":"ACCOUNT_CONFIG_UPDATE","E":%d}' % n


def test_identical_frames_on_one_connection_are_all_delivered() -> None:
    overlap = Overlap()
    assert overlap.admit("old", frame(1))
    assert overlap.admit("old", frame(1))  # two genuine events with the same bytes
    assert overlap.duplicates == 0
    assert not overlap.joined


def test_each_copy_from_the_other_connection_is_dropped_once() -> None:
    overlap = Overlap()
    assert [overlap.admit("old", f) for f in (frame(1), frame(1), frame(2))] == [True] * 3
    assert [overlap.admit("new", f) for f in (frame(1), frame(1), frame(2))] == [False] * 3
    assert overlap.joined
    assert overlap.duplicates == 3
    assert overlap.old_unmatched == 0
    assert overlap.admit("new", frame(1))  # new: a third identical event, delivered


def test_frames_the_new_connection_subscribed_too_late_for_are_forgotten() -> None:
    overlap = Overlap()
    for n in (1, 2, 3):
        assert overlap.admit("old", frame(n))
    assert not overlap.admit("new", frame(3))  # it never gets 1 and 2
    assert overlap.old_unmatched == 0
    assert overlap.admit("new", frame(1))  # a genuine later event equal to an old frame


def test_the_new_connection_may_be_ahead() -> None:
    overlap = Overlap()
    assert overlap.admit("new", frame(5))
    assert overlap.admit("new", frame(6))
    assert not overlap.admit("old", frame(5))
    assert overlap.joined
    assert not overlap.admit("old", frame(6))
    assert overlap.admit("old", frame(7))  # old is ahead now
    assert overlap.old_unmatched == 1
    assert not overlap.admit("new", frame(7))


def test_a_frame_new_to_both_sides_clears_what_can_no_longer_match() -> None:
    overlap = Overlap()
    overlap.admit("old", frame(1))
    assert overlap.admit("new", frame(2))  # ahead: it will never deliver 1
    assert overlap.old_unmatched == 0
    assert not overlap.admit("old", frame(2))
    assert overlap.admit("old", frame(1))  # a later genuine event equal to frame 1


def test_old_frames_are_counted_and_memory_is_bounded() -> None:
    overlap = Overlap(window=3)
    for n in range(10):
        overlap.admit("old", frame(n))
    assert overlap.old_frames == 10
    assert overlap.old_unmatched == 3
    with pytest.raises(ValueError, match="window"):
        Overlap(window=0)
