"""REQUEST_WEIGHT limiter: UTC-minute windows, 429, escalating 418 bans, decay, pruning."""

from __future__ import annotations

import pytest

from userstream.exceptions import RateLimited
from userstream.protocol.limits import (
    MINUTE_MS,
    USED_WEIGHT_HEADER,
    RequestWeightLimiter,
    WeightLimits,
)
from userstream.protocol.wsapi import RateLimitStatus

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a minute boundary
DAY = 24 * 3600 * 1000


def _raises(lim: RequestWeightLimiter, ip: str, weight: int, now: int) -> RateLimited:
    with pytest.raises(RateLimited) as info:
        lim.charge(ip, weight, now)
    return info.value


def test_header_name() -> None:
    assert USED_WEIGHT_HEADER == "X-MBX-USED-WEIGHT-1M"


def test_defaults() -> None:
    limits = WeightLimits()
    assert limits.per_minute == 2400
    assert limits.first_ban_ms == 120_000
    assert limits.max_ban_ms == 3 * DAY


def test_charge_accumulates_and_reports() -> None:
    lim = RequestWeightLimiter()
    assert lim.charge("1.1.1.1", 1, T0) == 1
    assert lim.charge("1.1.1.1", 5, T0 + 10) == 6
    assert lim.charge("2.2.2.2", 1, T0 + 10) == 1
    assert lim.used("1.1.1.1", T0 + 20) == 6
    assert lim.used("9.9.9.9", T0 + 20) == 0
    assert lim.status("1.1.1.1", T0 + 20) == RateLimitStatus("REQUEST_WEIGHT", "MINUTE", 1, 2400, 6)


def test_window_resets_at_the_utc_minute_boundary_not_sliding() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=10))
    lim.charge("ip", 10, T0 + 59_999)
    assert lim.used("ip", T0 + 59_999) == 10
    # One millisecond later is a new clock minute: the whole budget is back.
    assert lim.used("ip", T0 + 60_000) == 0
    assert lim.charge("ip", 10, T0 + 60_000) == 10
    # A sliding 60 s window would still refuse here; the clock-minute window does too, because
    # this is the same minute as the previous charge.
    err = _raises(lim, "ip", 1, T0 + 60_001)
    assert err.status == 429


def test_429_message_status_and_retry_after() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=2400))
    lim.charge("ip", 2400, T0 + 15_000)
    err = _raises(lim, "ip", 1, T0 + 15_000)
    assert (err.status, err.code) == (429, -1003)
    assert err.msg.startswith("Too many requests; current limit is 2400 requests per minute.")
    assert err.retry_after_ms == 45_000


def test_rejected_requests_still_count_weight() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=10, ban_after_violations=100))
    lim.charge("ip", 10, T0)
    _raises(lim, "ip", 3, T0 + 1)
    assert lim.used("ip", T0 + 2) == 13
    assert lim.status("ip", T0 + 2).count == 13


def test_single_request_heavier_than_limit_is_refused() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=10))
    assert _raises(lim, "ip", 11, T0).status == 429


def test_zero_weight_is_free_and_negative_is_a_bug() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=1))
    assert lim.charge("ip", 0, T0) == 0
    with pytest.raises(ValueError, match="weight"):
        lim.charge("ip", -1, T0)


def _drive_to_ban(lim: RequestWeightLimiter, ip: str, now: int) -> RateLimited:
    """Use the minute's budget, then send over-limit requests until one is answered 418."""
    lim.charge(ip, lim.limits.per_minute - lim.used(ip, now), now)
    for _ in range(lim.limits.ban_after_violations + 1):
        assert _raises(lim, ip, 1, now).status == 429
    err = _raises(lim, ip, 1, now)
    assert err.status == 418
    return err


def test_ban_starts_after_n_further_requests_following_the_first_429() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=5, ban_after_violations=3))
    lim.charge("ip", 5, T0)
    statuses = [_raises(lim, "ip", 1, T0 + i).status for i in range(5)]
    # first 429, then 3 more 429s are tolerated, the next one starts the ban
    assert statuses == [429, 429, 429, 429, 418]


def test_ban_message_until_and_retry_after() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=5, ban_after_violations=0))
    now = T0 + 30_000
    err = _drive_to_ban(lim, "ip", now)
    until = now + 120_000
    assert err.code == -1003
    assert err.msg.startswith(f"Way too many requests; IP banned until {until}.")
    assert err.retry_after_ms == 120_000
    assert lim.banned_until("ip", now) == until


def test_requests_during_ban_get_418_and_do_not_count_or_extend() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=5, ban_after_violations=0))
    _drive_to_ban(lim, "ip", T0)
    until = T0 + 120_000
    # Next minute: the window is fresh but the ban still holds.
    later = T0 + 90_000
    err = _raises(lim, "ip", 1, later)
    assert (err.status, err.retry_after_ms) == (418, until - later)
    assert err.msg.startswith(f"Way too many requests; IP banned until {until}.")
    assert lim.used("ip", later) == 0
    assert lim.banned_until("ip", later) == until
    # The ban ends exactly at `until`; other IPs were never affected.
    assert lim.charge("other", 1, later) == 1
    assert lim.charge("ip", 1, until) == 1
    assert lim.banned_until("ip", until) is None


def test_bans_escalate_by_doubling_and_cap_at_three_days() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=1, ban_after_violations=0))
    now = T0
    durations = []
    for _ in range(15):
        err = _drive_to_ban(lim, "ip", now)
        durations.append(err.retry_after_ms)
        until = lim.banned_until("ip", now)
        assert until is not None
        now = (until // MINUTE_MS + 1) * MINUTE_MS  # start of the next minute after the ban
    minute2 = 120_000
    assert durations[:5] == [minute2, 2 * minute2, 4 * minute2, 8 * minute2, 16 * minute2]
    assert durations[11] == minute2 * 2**11  # 4096 min, just under 3 days
    assert durations[12:] == [3 * DAY] * 3


def test_ban_duration_formula() -> None:
    limits = WeightLimits()
    assert [limits.ban_duration_ms(n) for n in range(3)] == [120_000, 240_000, 480_000]
    assert limits.ban_duration_ms(12) == 3 * DAY
    assert limits.ban_duration_ms(10_000) == 3 * DAY


def test_escalation_decays_after_a_ban_free_day() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=1, ban_after_violations=0))
    _drive_to_ban(lim, "ip", T0)  # 2 min
    end = T0 + 120_000
    assert _drive_to_ban(lim, "ip", end).retry_after_ms == 240_000  # escalated
    end2 = end + 240_000
    # Less than a day after the last ban ended: still escalated.
    just_short = end2 + DAY - MINUTE_MS
    assert _drive_to_ban(lim, "ip", just_short).retry_after_ms == 480_000
    end3 = just_short + 480_000
    # A full ban-free day later: back to the first step.
    assert _drive_to_ban(lim, "ip", end3 + DAY).retry_after_ms == 120_000


def test_prune_drops_idle_ips_after_their_minute() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=100))
    for i in range(1000):
        lim.charge(f"10.0.{i // 256}.{i % 256}", 1, T0 + i)
    assert len(lim) == 1000
    # The first call in a new minute sweeps every IP whose minute is over.
    lim.charge("fresh", 1, T0 + MINUTE_MS)
    assert len(lim) == 1


def test_prune_keeps_banned_and_escalated_ips_until_decay() -> None:
    lim = RequestWeightLimiter(WeightLimits(per_minute=1, ban_after_violations=0))
    _drive_to_ban(lim, "bad", T0)
    lim.charge("good", 1, T0)
    lim.charge("x", 1, T0 + 5 * MINUTE_MS)  # ban over, but escalation is remembered
    assert len(lim) == 2
    assert lim.used("good", T0 + 5 * MINUTE_MS) == 0
    end = T0 + 120_000
    lim.charge("x", 1, end + DAY)  # a ban-free day later: forgotten
    assert len(lim) == 1
    # Forgetting it is harmless: the next ban starts at the first step again.
    assert _drive_to_ban(lim, "bad", end + DAY + MINUTE_MS).retry_after_ms == 120_000


def test_status_for_unknown_ip_does_not_allocate_state() -> None:
    lim = RequestWeightLimiter()
    assert lim.status("nobody", T0).count == 0
    assert lim.banned_until("nobody", T0) is None
    assert len(lim) == 0


@pytest.mark.parametrize(
    "limits",
    [
        WeightLimits(per_minute=0),
        WeightLimits(first_ban_ms=0),
        WeightLimits(max_ban_ms=-1),
        WeightLimits(ban_after_violations=-1),
    ],
)
def test_invalid_limits_are_rejected(limits: WeightLimits) -> None:
    with pytest.raises(ValueError, match="must be"):
        RequestWeightLimiter(limits)
