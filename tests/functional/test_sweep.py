"""The hostile-input sweep (`python -m bench.sweep`), small: a real server process survives
every phase with no finding, and both bystander streams keep receiving only their own events."""

from __future__ import annotations

from bench.sweep import run_sweep


async def test_a_small_sweep_finds_nothing() -> None:
    results = await run_sweep(seed=7, count=40, phase_seconds=15.0)
    assert [r.name for r in results] == [
        "http",
        "websocket",
        "control",
        "flood",
        "slow",
        "admin",
        "isolation",
        "sigkill",
    ]
    assert all(r.sent > 0 for r in results), [(r.name, r.sent) for r in results]
    assert [f"{r.name}: {f}" for r in results for f in r.findings] == []
    # The server was SIGKILLed once, after some batches had been acknowledged.
    sigkill = results[-1]
    assert sigkill.closed == 1, sigkill
    assert sigkill.answered > 0, sigkill
