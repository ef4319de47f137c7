"""The keepalive plan: every 30 minutes; retries inside the 60-minute validity; then lost."""

from __future__ import annotations

import random

import pytest

from userstream.client.backoff import Backoff
from userstream.client.keepalive import KeepaliveAction, KeepaliveSchedule
from userstream.exceptions import ConfigurationError

MIN = 60_000


def test_pings_every_thirty_minutes_after_each_success() -> None:
    plan = KeepaliveSchedule()
    plan.key_created(0)
    assert plan.next_due_ms == 30 * MIN
    assert plan.due(30 * MIN - 1) is KeepaliveAction.WAIT
    assert plan.due(30 * MIN) is KeepaliveAction.PING
    plan.succeeded(30 * MIN + 5)
    assert plan.next_due_ms == 60 * MIN + 5
    assert plan.valid_until_ms == 90 * MIN + 5


def test_failures_retry_with_backoff_inside_the_validity() -> None:
    retry = Backoff(
        first_ms=1000, base_ms=60_000, factor=2, early_cap_ms=None, cap_ms=20 * MIN, jitter=0
    )
    plan = KeepaliveSchedule(retry=retry, rng=random.Random(1))
    plan.key_created(0)
    now = 30 * MIN
    waits = []
    while (action := plan.failed(now)) is KeepaliveAction.WAIT:
        waits.append(plan.next_due_ms - now)
        now = plan.next_due_ms
        if plan.due(now) is KeepaliveAction.KEY_LOST:
            break
    assert waits[:4] == [1000, 60_000, 120_000, 240_000]
    assert now == 60 * MIN  # the last retry is clamped to the deadline, where the key is lost
    assert plan.due(now) is KeepaliveAction.KEY_LOST
    assert action is KeepaliveAction.WAIT


def test_a_success_after_failures_resets_the_retries() -> None:
    plan = KeepaliveSchedule(retry=Backoff(first_ms=10, jitter=0), rng=random.Random(1))
    plan.key_created(0)
    plan.failed(30 * MIN)
    plan.failed(30 * MIN + 10)
    assert plan.failures == 2
    plan.succeeded(31 * MIN)
    assert plan.failures == 0
    assert plan.failed(61 * MIN) is KeepaliveAction.WAIT
    assert plan.next_due_ms == 61 * MIN + 10  # the first retry delay again


def test_a_retry_after_from_a_429_delays_the_retry_but_not_past_the_deadline() -> None:
    plan = KeepaliveSchedule(retry=Backoff(first_ms=1000, jitter=0))
    plan.key_created(0)
    assert plan.failed(30 * MIN, retry_after_ms=30_000) is KeepaliveAction.WAIT
    assert plan.next_due_ms == 30 * MIN + 30_000  # not the 1 s backoff
    assert plan.failed(59 * MIN, retry_after_ms=2 * MIN) is KeepaliveAction.WAIT
    assert plan.next_due_ms == 60 * MIN  # clamped: at the deadline the key is lost


def test_failing_at_or_past_the_deadline_is_key_lost() -> None:
    plan = KeepaliveSchedule()
    plan.key_created(0)
    assert plan.failed(60 * MIN) is KeepaliveAction.KEY_LOST


def test_exhausted_retry_budget_is_key_lost() -> None:
    plan = KeepaliveSchedule(retry=Backoff(max_attempts=1, jitter=0))
    plan.key_created(0)
    assert plan.failed(30 * MIN) is KeepaliveAction.WAIT
    assert plan.failed(30 * MIN) is KeepaliveAction.KEY_LOST


def test_interval_must_fit_inside_the_validity() -> None:
    with pytest.raises(ConfigurationError):
        KeepaliveSchedule(interval_ms=60 * MIN)


def test_a_reconnect_moves_the_next_keepalive_to_now() -> None:
    plan = KeepaliveSchedule()
    plan.key_created(0)
    plan.check_soon(5 * MIN)
    assert plan.next_due_ms == 5 * MIN
    assert plan.due(5 * MIN) is KeepaliveAction.PING
    plan.check_soon(10 * MIN)  # already due earlier: stays
    assert plan.next_due_ms == 5 * MIN


def test_a_reconnect_keeps_a_retry_that_waits_for_retry_after() -> None:
    plan = KeepaliveSchedule(retry=Backoff(first_ms=1000, jitter=0))
    plan.key_created(0)
    plan.failed(30 * MIN, retry_after_ms=30_000)
    plan.check_soon(30 * MIN + 1_000)
    assert plan.next_due_ms == 30 * MIN + 30_000
    assert plan.due(30 * MIN + 1_000) is KeepaliveAction.WAIT
