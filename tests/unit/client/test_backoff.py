"""Backoff delays: pure, repeatable with a seeded rng, unlimited by default, a short cap
while the failure is young and, for stream redials, a tiny one while it may be a restart."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from userstream.client.backoff import Backoff
from userstream.client.policy import Reconnect
from userstream.exceptions import ConfigurationError


def test_first_retry_is_immediate_then_exponential_up_to_the_early_cap() -> None:
    delays = Backoff(jitter=0).delays(random.Random(1))
    assert list(itertools.islice(delays, 8)) == [0, 250, 500, 1000, 2000, 3000, 3000, 3000]


def test_the_long_cap_applies_once_the_failure_is_old() -> None:
    backoff = Backoff(jitter=0, early_cap_ms=3_000, early_ms=10_000, cap_ms=30_000)
    delays = list(itertools.islice(backoff.delays(random.Random(1)), 12))
    # the sum passes 10 s at the 8th delay; from the 9th the delays grow on to cap_ms
    assert delays == [0, 250, 500, 1000, 2000, 3000, 3000, 3000, 3000, 6000, 12000, 24000]


def test_without_an_early_cap_the_sequence_grows_to_cap_ms() -> None:
    backoff = Backoff(base_ms=500, early_cap_ms=None, jitter=0)
    delays = list(itertools.islice(backoff.delays(random.Random(1)), 9))
    assert delays == [0, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]


def test_a_fast_phase_caps_the_delays_while_the_failure_counts_as_a_restart() -> None:
    backoff = Backoff(jitter=0, fast_ms=1_000, fast_cap_ms=100)
    delays = list(itertools.islice(backoff.delays(random.Random(1)), 18))
    # ten 100 ms waits make up the first second; then growth goes on from 100 ms
    assert delays == [0] + [100] * 11 + [200, 400, 800, 1600, 3000, 3000]


def test_stream_redials_are_fast_for_two_seconds_then_the_default_schedule() -> None:
    delays = list(itertools.islice(Reconnect().backoff.delays(random.Random(3)), 400))
    at = list(itertools.accumulate(delays))
    fast = [d for d, t in zip(delays[1:], at, strict=False) if t < 2_000]
    assert fast
    assert all(0 <= d <= 100 for d in fast)
    later = [d for d, t in zip(delays[1:], at, strict=False) if t >= 2_000]
    assert max(later) > 1_000  # back to the 3 s cap soon after
    assert Backoff().fast_ms == 0  # other retries (key requests, the CLI) have no such phase


def test_unlimited_by_default() -> None:
    delays = Backoff().delays(random.Random(1))
    assert len(list(itertools.islice(delays, 10_000))) == 10_000


def test_full_jitter_spreads_delays_over_zero_to_the_cap() -> None:
    backoff = Backoff(early_cap_ms=None, cap_ms=4000, base_ms=4000)
    first = list(itertools.islice(backoff.delays(random.Random(7)), 2001))
    assert first == list(itertools.islice(backoff.delays(random.Random(7)), 2001))
    assert first[0] == 0
    assert all(0 <= d <= 4000 for d in first[1:])
    assert min(first[1:]) < 100
    assert max(first[1:]) > 3900
    assert 1800 < statistics.mean(first[1:]) < 2200


def test_partial_jitter_stays_within_bounds() -> None:
    backoff = Backoff(base_ms=1000, early_cap_ms=None, cap_ms=8000, jitter=0.5)
    delays = list(itertools.islice(backoff.delays(random.Random(7)), 50))
    nominal = [1000, 2000, 4000] + [8000] * 46
    for delay, top in zip(delays[1:], nominal, strict=True):
        assert top // 2 <= delay <= top


def test_a_crowd_retrying_against_a_down_server_makes_few_attempts() -> None:
    """The figures docs/client-faults.md reports: 1,000 clients, the stream's redials."""
    backoff, horizon_ms = Reconnect().backoff, 300_000
    attempts_fast = attempts_first_minute = attempts_later = 0
    for seed in range(1000):
        at = 0
        for delay in backoff.delays(random.Random(seed)):
            at += delay
            if at > horizon_ms:
                break
            attempts_fast += at < backoff.fast_ms
            attempts_first_minute += backoff.fast_ms <= at < 60_000
            attempts_later += at >= backoff.fast_ms
    fast_s = backoff.fast_ms / 1000
    assert attempts_fast / fast_s < 25_000  # a restart's 2 s: ~20 refused connects/client/s
    assert attempts_first_minute / (60 - fast_s) < 1000  # then under one per client per s
    assert attempts_later / (300 - fast_s) < 400  # and fewer as the outage ages


def test_max_attempts_ends_the_sequence() -> None:
    assert list(Backoff(max_attempts=3, jitter=0).delays(random.Random())) == [0, 250, 500]
    assert list(Backoff(max_attempts=0).delays(random.Random())) == []


def test_a_fresh_generator_is_a_reset() -> None:
    backoff = Backoff(jitter=0)
    used = backoff.delays(random.Random())
    list(itertools.islice(used, 5))
    assert next(used) == 3000
    assert next(backoff.delays(random.Random())) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_ms": -1},
        {"factor": 0.5},
        {"jitter": 1.5},
        {"max_attempts": -1},
        {"early_cap_ms": 40_000},
        {"fast_ms": 1_000, "fast_cap_ms": 0},
        {"fast_ms": -1},
    ],
)
def test_rejects_impossible_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Backoff(**kwargs)  # type: ignore[arg-type]


def _after(backoff: Backoff, refused: list[bool], seed: int = 1) -> list[int]:
    """The delays of `backoff` when each failed attempt was refused or not, in turn."""
    delays = backoff.delays(random.Random(seed))
    return [next(delays)] + [delays.send(kind) for kind in refused]


def test_refused_connects_keep_the_fast_cap_up_to_the_bound() -> None:
    backoff = Backoff(jitter=0, fast_ms=1_000, fast_cap_ms=100, refused_ms=5_000)
    delays = _after(backoff, [True] * 57)
    # fifty 100 ms waits make up the 5 s; then growth goes on from 100 ms
    assert delays == [0] + [100] * 51 + [200, 400, 800, 1600, 3000, 3000]


def test_a_failure_other_than_refused_ends_the_fast_redials() -> None:
    backoff = Backoff(jitter=0, fast_ms=1_000, fast_cap_ms=100, refused_ms=60_000)
    delays = _after(backoff, [True] * 20 + [False] + [True] * 5)
    # 2 s of refused attempts, then a timeout: growth goes on from 100 ms, and the refusals
    # after it do not bring the fast cap back
    assert delays == [0] + [100] * 21 + [200, 400, 800, 1600, 3000]


def test_the_stream_policy_redials_a_refused_port_fast_for_a_minute() -> None:
    for seed in range(20):
        delays = _after(Reconnect().backoff, [True] * 2_000, seed)
        assert sum(itertools.takewhile(lambda d: d <= 100, delays)) >= 59_900
    # a refused port after a timeout gets the growing delays, as any other failure
    slow = _after(Reconnect().backoff, [True] * 25 + [False] + [True] * 200, seed=3)
    assert max(slow[30:]) > 100
