"""Backoff delays: pure, repeatable with a seeded rng, unlimited by default."""

from __future__ import annotations

import itertools
import random

import pytest

from userstream.client.backoff import Backoff
from userstream.exceptions import ConfigurationError


def test_first_retry_is_immediate_then_exponential_without_jitter() -> None:
    delays = Backoff(jitter=0).delays(random.Random(1))
    assert list(itertools.islice(delays, 9)) == [
        0, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000,
    ]  # fmt: skip


def test_unlimited_by_default() -> None:
    delays = Backoff().delays(random.Random(1))
    assert len(list(itertools.islice(delays, 10_000))) == 10_000


def test_jitter_stays_within_bounds_and_repeats_with_the_same_seed() -> None:
    backoff = Backoff(base_ms=1000, cap_ms=8000, jitter=0.5)
    first = list(itertools.islice(backoff.delays(random.Random(7)), 50))
    again = list(itertools.islice(backoff.delays(random.Random(7)), 50))
    assert first == again
    assert first[0] == 0
    nominal = [1000, 2000, 4000] + [8000] * 46
    for delay, top in zip(first[1:], nominal, strict=True):
        assert top // 2 <= delay <= top
    assert len(set(first[4:])) > 1  # jittered, not lock-step


def test_max_attempts_ends_the_sequence() -> None:
    assert list(Backoff(max_attempts=3, jitter=0).delays(random.Random())) == [0, 500, 1000]
    assert list(Backoff(max_attempts=0).delays(random.Random())) == []


def test_a_fresh_generator_is_a_reset() -> None:
    backoff = Backoff(jitter=0)
    used = backoff.delays(random.Random())
    list(itertools.islice(used, 5))
    assert next(used) == 8000
    assert next(backoff.delays(random.Random())) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"base_ms": -1}, {"factor": 0.5}, {"jitter": 1.5}, {"max_attempts": -1}],
)
def test_rejects_impossible_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Backoff(**kwargs)  # type: ignore[arg-type]
