"""Exact-duplicate detection by raw bytes within a bounded window."""

from __future__ import annotations

from userstream.client.dedupe import Deduplicator


def frame(n: int) -> bytes:
    return b'{"e":"ORDER_TRADE_UPDATE","T":%d,"E":%d}' % (n, n)


def test_second_copy_of_a_frame_is_a_duplicate() -> None:
    dedupe = Deduplicator()
    assert not dedupe.is_duplicate(frame(1))
    assert dedupe.is_duplicate(frame(1))
    assert not dedupe.is_duplicate(frame(2))
    assert dedupe.duplicates == 1


def test_a_single_byte_makes_a_different_frame() -> None:
    dedupe = Deduplicator()
    assert not dedupe.is_duplicate(b'{"E":1}')
    assert not dedupe.is_duplicate(b'{"E":1} ')


def test_memory_is_bounded_by_the_window() -> None:
    dedupe = Deduplicator(window=3)
    for n in range(100):
        assert not dedupe.is_duplicate(frame(n))
    assert len(dedupe) == 3
    assert dedupe.is_duplicate(frame(99))
    assert not dedupe.is_duplicate(frame(0))  # forgotten long ago


def test_a_repeated_frame_stays_remembered() -> None:
    dedupe = Deduplicator(window=2)
    dedupe.is_duplicate(frame(1))
    dedupe.is_duplicate(frame(2))
    assert dedupe.is_duplicate(frame(1))  # refreshed: now the newest
    dedupe.is_duplicate(frame(3))
    assert dedupe.is_duplicate(frame(1))
