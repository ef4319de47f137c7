"""`FollowingClock`: real time plus the server's lead, never backwards; a jump wakes sleepers."""

from __future__ import annotations

import asyncio

from userstream.cli.serverclock import JITTER_MS, FollowingClock

HOUR = 3_600_000


def test_a_lead_beyond_the_jitter_moves_the_clock_and_it_never_goes_back() -> None:
    clock = FollowingClock("http://127.0.0.1:1")
    start = clock.now_ms()
    clock.follow(start + JITTER_MS // 2)  # network delay, not a jump
    assert clock.now_ms() - start < JITTER_MS // 2
    clock.follow(start + HOUR)
    assert clock.now_ms() >= start + HOUR
    clock.follow(start)  # a server behind us: ignored
    assert clock.now_ms() >= start + HOUR


async def test_a_jump_wakes_a_sleeper_whose_deadline_it_passed() -> None:
    clock = FollowingClock("http://127.0.0.1:1")
    deadline = clock.now_ms() + HOUR
    sleeper = asyncio.create_task(clock.sleep_until(deadline))
    await asyncio.sleep(0.01)
    assert not sleeper.done()
    clock.follow(deadline + 1)
    await asyncio.wait_for(sleeper, 1)
    assert clock.now_ms() >= deadline
