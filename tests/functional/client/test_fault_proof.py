"""Issue 3 "Proof": numbered events around every fault, against real servers on the real clock.

`test_stream_basic.py` and `test_stream_faults.py` prove each mechanism on the virtual clock
(reasons, health counters, one event after each fault). This file proves the contract on
whole sequences, with the fault injected while events keep coming and the server counting
what it queued to the client's sockets (`scenarios.py` has the definitions): nothing lost
that the server accepted while a connection was up, every loss window announced by a
`StreamGap` before the next event, no duplicates, no reordering, bounded reconnect time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.client.scenarios import QUICK, SCENARIOS, OurSubject, run_scenario

RECOVERY_BOUND_S = 2.5  # the early backoff cap is 3 s, full jitter: mostly well under
# Real-time scenarios of a minute each, for `bench/compare_clients.py`; the mechanisms they
# exercise are tested on the virtual clock (`test_stream_recovery.py`, `test_stream_faults.py`).
BENCH_ONLY = {"outage_30s", "half_open"}


@pytest.mark.parametrize("key", [key for key in SCENARIOS if key not in BENCH_ONLY])
async def test_nothing_lost_on_air_every_gap_announced(key: str, tmp_path: Path) -> None:
    subject = OurSubject()
    result = await run_scenario(SCENARIOS[key], subject, QUICK, tmp_path / "data")
    detail = result.summary()
    assert result.received > 0, detail
    assert result.lost_on_air == 0, detail
    assert result.unannounced_windows == [], detail
    assert (result.duplicates, result.out_of_order) == (0, 0), detail
    assert result.recovered, detail
    assert result.recovery_s is not None
    assert result.recovery_s < RECOVERY_BOUND_S, detail
    assert result.notes == [], detail
    if key in ("cap_24h", "stall"):  # make-before-break and "block": nothing lost at all
        assert (result.lost, result.gaps) == (0, 0), detail
    if key == "cap_24h":
        assert subject.stream is not None
        assert subject.stream.health.rotations >= 1, detail  # the cap was really crossed
