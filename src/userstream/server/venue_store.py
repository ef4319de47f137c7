"""The venue's state in the data folder's SQLite database (issue #12 item 7).

The engine exports its whole state (orders, positions, balances, trades, settings, id
counters) as bytes; this store keeps the latest export in one row of `venue_state`, in the
same database and with the same conventions as `storage.py` (WAL, 0600 files in a 0700
folder). The server saves `SAVE_INTERVAL_S` after a change (later when saves are slow:
`VenueService.save`) and once more on shutdown, so a clean restart loses nothing and a crash
loses at most the last interval's changes (docs/deployment.md).
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS venue_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    saved_ms  INTEGER NOT NULL,
    state     BLOB NOT NULL
);
"""

SAVE_INTERVAL_S = 0.2


class VenueStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(SCHEMA)

    def load(self) -> bytes | None:
        """The last saved export, or None on a fresh data folder."""
        row = self._db.execute("SELECT state FROM venue_state WHERE id = 1").fetchone()
        return None if row is None else bytes(row[0])

    def save(self, state: bytes, now_ms: int) -> None:
        self._db.execute(
            "INSERT INTO venue_state (id, saved_ms, state) VALUES (1, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET saved_ms = excluded.saved_ms, state = excluded.state",
            (now_ms, state),
        )
