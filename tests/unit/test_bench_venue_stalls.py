"""`bench.venue --stall-log` reads the lines `server.stalls.StallLog` writes: the format is
pinned here by producing it, so a change to one side shows up without running the bench."""

from __future__ import annotations

import logging
from pathlib import Path

from bench.venue import paced_stalls

from userstream.server.stalls import StallLog, log


def test_the_paced_phase_stalls_are_read_from_a_real_stall_log(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        stalls = StallLog(threshold_ms=1.0)
        stalls.record(4.0, wall_ms=5.0, cpu_ms=1.0)  # before the phase: not counted
        stalls.restart()  # the SIGUSR1 as the paced phase starts
        stalls.record(2.5, wall_ms=3.5, cpu_ms=3.5)
        stalls.record(0.2, wall_ms=1.2, cpu_ms=1.2)  # under the threshold: not a stall
        stalls.record(7.25, wall_ms=8.25, cpu_ms=0.5)
        stalls.restart()  # the SIGUSR1 once every frame is in
    finally:
        log.removeHandler(handler)
        handler.close()
    lines = paced_stalls(str(path))
    assert lines[0] == "server loop stalls in the paced phase: 2 (2.5, 7.2 ms longest)"
    assert lines[1] == "slow garbage collections in the paced phase: 0"
    assert lines[2].startswith("long stalls: 2 of at least 1 ms")
