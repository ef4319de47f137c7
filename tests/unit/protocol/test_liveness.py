"""The pong rule of one connection (spec §4.5; change log 2023-08-31, 2024-02-09)."""

from __future__ import annotations

from userstream.protocol.liveness import MINUTE_MS, LivenessPolicy, PongRule
from userstream.protocol.wsframes import CloseCode

T0 = 1_767_225_600_000


def test_binance_figures_are_the_default() -> None:
    policy = LivenessPolicy()
    assert policy.ping_interval_ms == 3 * MINUTE_MS
    assert policy.pong_timeout_ms == 10 * MINUTE_MS
    assert policy.max_lifetime_ms == 24 * 60 * MINUTE_MS
    rule = PongRule(policy, T0)
    assert rule.first_ping_ms == T0 + 3 * MINUTE_MS
    assert rule.lifetime_end_ms == T0 + 24 * 60 * MINUTE_MS


def test_first_unanswered_ping_starts_the_pong_deadline_later_ones_do_not() -> None:
    rule = PongRule(LivenessPolicy(), T0)
    first = rule.ping(T0 + 3 * MINUTE_MS)
    assert first.payload == str(T0 + 3 * MINUTE_MS).encode()
    assert first.next_ping_ms == T0 + 6 * MINUTE_MS
    assert first.pong_deadline_ms == T0 + 13 * MINUTE_MS
    second = rule.ping(first.next_ping_ms)
    assert second.pong_deadline_ms is None  # the deadline runs from the oldest unanswered ping
    assert second.payload != first.payload


def test_a_pong_echoing_any_outstanding_ping_ends_the_wait() -> None:
    rule = PongRule(LivenessPolicy(), T0)
    first = rule.ping(T0 + 3 * MINUTE_MS)
    rule.ping(T0 + 6 * MINUTE_MS)
    assert rule.pong(first.payload)
    assert rule.waiting_since_ms is None
    assert not rule.pong(first.payload)  # every outstanding ping is settled by one echo
    after = rule.ping(T0 + 9 * MINUTE_MS)
    assert after.pong_deadline_ms == T0 + 19 * MINUTE_MS


def test_unsolicited_pongs_do_not_end_the_wait() -> None:
    rule = PongRule(LivenessPolicy(), T0)
    rule.ping(T0 + 3 * MINUTE_MS)
    assert not rule.pong(b"")
    assert not rule.pong(b"keepalive")
    assert rule.waiting_since_ms == T0 + 3 * MINUTE_MS


def test_close_reasons() -> None:
    rule = PongRule(LivenessPolicy(pong_timeout_ms=90_000), T0)
    overdue = rule.pong_overdue()
    assert (overdue.code, overdue.reason) == (
        CloseCode.POLICY_VIOLATION,
        "no pong received within 1.5 minutes",
    )
    over = rule.lifetime_over()
    assert (over.code, over.reason) == (CloseCode.NORMAL, "connection reached the 24-hour limit")
