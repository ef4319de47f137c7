"""The hostile-input sweep (`python -m bench.sweep`), small: a real server process survives
every phase with no finding, both bystander streams keep receiving only their own events, and a
server SIGKILLed mid-publish comes back on its data folder with its accounts, listenKeys and a
sound database; the SIGKILL phase's delivery and database checks catch what they look for."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.sweep import (
    KILL_TIME_BASE,
    Delivery,
    PhaseResult,
    check_delivery,
    read_database,
    run_sweep,
)

from userstream.storage import DB_FILENAME, open_database


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


def test_an_acknowledged_event_missing_before_a_delivered_one_is_a_finding() -> None:
    base = KILL_TIME_BASE
    posted = [[base, base + 1, base + 2], [base + 10**7]]
    acked = {base, base + 1, base + 10**7}
    # What never came after the last event received is in flight, and `base + 2` came
    # without its acknowledgement: no finding.
    result, counts = PhaseResult("sigkill"), Delivery()
    check_delivery(result, "reading", counts, posted, acked, [base, base + 1, base + 2])
    assert result.findings == []
    assert (counts.delivered, counts.in_flight, counts.early) == (2, 1, 1)
    gap = "reading: publisher 0's events came out of order, twice or with a gap"
    for received in ([base, base + 2], [base + 1, base], [base, base, base + 1]):
        result = PhaseResult("sigkill")
        check_delivery(result, "reading", Delivery(), posted, acked, received)
        assert result.findings == [gap], received
    result = PhaseResult("sigkill")
    check_delivery(result, "reading", Delivery(), posted, acked, [base + 3 * 10**7])
    assert result.findings == ["reading: 1 events arrived that were never posted"]


def test_a_damaged_database_is_told_apart(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    db.execute(
        "INSERT INTO accounts (name, api_key, secret_key, created_ms) VALUES ('a', 'k', 's', 0)"
    )
    db.execute("INSERT INTO listen_keys VALUES (1, 'L', 0)")
    db.close()  # the last connection checkpoints the WAL into the file
    assert read_database(tmp_path) == (["ok"], {"k": "L"})
    path = tmp_path / DB_FILENAME
    data = bytearray(path.read_bytes())
    page = 4096
    data[page : page + 64] = b"\xff" * 64  # the first table's page
    path.write_bytes(bytes(data))
    try:
        integrity, _ = read_database(tmp_path)
    except sqlite3.DatabaseError:
        return
    assert integrity != ["ok"]
