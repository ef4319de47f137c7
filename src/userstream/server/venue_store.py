"""The venue's state in the data folder's SQLite database (issue #12 item 7).

Saves are incremental (`venue/journal.py`): each one writes, in one transaction, the live
export (accounts, open orders, id counters, the risk state) into the single row of
`venue_live` and appends the orders that became final and the trades made since the previous
save as one row of `venue_chunks`: the save's orders and trades encoded together, one SQLite
row and index entry per save instead of one per order and trade. A save's size follows what
changed and the open state, never the order and trade history. Same database and conventions
as `storage.py` (WAL, 0600 files in a 0700 folder).

Loading reads the chunks in the order they were written and keeps one copy of each order and
trade, the last written: after a failed write the journal writes every final order and trade
again (`StateJournal.forget`), so they can be in several chunks. Rows of `venue_orders` and
`venue_trades`, written one per order and trade before the chunks, still load (before the
chunks) and are kept as they are.

The server saves `SAVE_INTERVAL_S` after a change (later when saves are slow:
`VenueService.save`) and once more on shutdown, so a clean restart (SIGTERM) restores exactly
the state it stopped with, and a crash (SIGKILL) loses at most the changes since the last
committed save, one interval (docs/deployment.md). The store's connection checkpoints the
write-ahead log every `CHECKPOINT_PAGES`. A database from before the split holds a
full export in `venue_state`; it loads as it is and the first save moves it into the tables.
"""

from __future__ import annotations

import sqlite3
from typing import Final

import msgspec

from userstream.venue.journal import Row, SaveBatch, restore
from userstream.venue.state import EngineState

SCHEMA = """
CREATE TABLE IF NOT EXISTS venue_live (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    saved_ms  INTEGER NOT NULL,
    state     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS venue_orders (
    order_id    INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    body        BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS venue_trades (
    trade_id    INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    body        BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS venue_chunks (
    chunk_id  INTEGER PRIMARY KEY,
    orders    BLOB NOT NULL,
    trades    BLOB NOT NULL
);
"""
# A chunk's `orders` and `trades`: a JSON array of [id, account_id, body] (the body is the
# order's or trade's own JSON, kept raw so loading decodes it once, in `restore`).
_CHUNK: Final = msgspec.json.Decoder(list[tuple[int, int, msgspec.Raw]])

# The server runs on one core: a save's encoding (on the loop) and its write (on a worker
# thread, sharing the core and the GIL) each delay whatever the loop has to do meanwhile, as
# one block, so saves are kept small. At 2,800 orders/s a 50 ms interval made saves of ~140
# orders: 0.8 ms of encoding, then 1.1 ms of writing during which the loop waited; at 10 ms
# they are 0.1 and 0.4 ms (docs/benchmarks-venue.md).
SAVE_INTERVAL_S = 0.01
# Pages of write-ahead log the store's connection lets accumulate before a commit copies them
# into the database (a checkpoint, on the writing thread). SQLite's default of 1000 made a
# checkpoint about once a second at that rate, each 8-10 ms of CPU on the server's core;
# 100 pages spread the same copying over bursts of about 1 ms.
CHECKPOINT_PAGES = 100
# Orders (and trades) per `venue_chunks` row at most: a save writes one row, but the save
# after a failed write holds the whole history again, which would otherwise make one blob
# past SQLite's size limit (1 GB) on a long-lived venue.
CHUNK_ROWS = 10_000


class VenueStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(SCHEMA)
        db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        self._legacy = (
            db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'venue_state'"
            ).fetchone()
            is not None
        )

    def load(self) -> tuple[EngineState, bool] | None:
        """The saved state and whether its final orders and trades are stored as rows
        (False for a full export from before the split), or None on a fresh data folder."""
        row = self._db.execute("SELECT state FROM venue_live WHERE id = 1").fetchone()
        if row is not None:
            db = self._db
            orders = _by_id(db.execute("SELECT order_id, account_id, body FROM venue_orders"))
            trades = _by_id(db.execute("SELECT trade_id, account_id, body FROM venue_trades"))
            for chunk_orders, chunk_trades in db.execute(
                "SELECT orders, trades FROM venue_chunks ORDER BY chunk_id"
            ):
                _add_chunk(orders, chunk_orders)
                _add_chunk(trades, chunk_trades)
            return restore(bytes(row[0]), _sorted(orders), _sorted(trades)), True
        if self._legacy:
            full = self._db.execute("SELECT state FROM venue_state WHERE id = 1").fetchone()
            if full is not None:
                return restore(bytes(full[0]), (), ()), False
        return None

    def close(self) -> None:
        self._db.close()

    def save(self, batch: SaveBatch, now_ms: int) -> None:
        """Write `batch` in one transaction (a crash keeps the previous save or this one)."""
        db = self._db
        db.execute("BEGIN")
        try:
            orders, trades = batch.orders, batch.trades
            for start in range(0, max(len(orders), len(trades)), CHUNK_ROWS):
                end = start + CHUNK_ROWS
                db.execute(
                    "INSERT INTO venue_chunks (orders, trades) VALUES (?, ?)",
                    (_encode_chunk(orders[start:end]), _encode_chunk(trades[start:end])),
                )
            db.execute(
                "INSERT INTO venue_live (id, saved_ms, state) VALUES (1, ?, ?) ON CONFLICT(id) "
                "DO UPDATE SET saved_ms = excluded.saved_ms, state = excluded.state",
                (now_ms, batch.live),
            )
            if self._legacy:
                db.execute("DROP TABLE venue_state")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._legacy = False


def _encode_chunk(rows: list[Row]) -> bytes:
    return b"[" + b",".join([b"[%d,%d,%s]" % row for row in rows]) + b"]"


def _add_chunk(rows: dict[int, Row], chunk: bytes) -> None:
    for row_id, account_id, body in _CHUNK.decode(chunk):
        rows[row_id] = Row(row_id, account_id, bytes(body))


def _by_id(cursor: sqlite3.Cursor) -> dict[int, Row]:
    return {int(i): Row(int(i), int(a), bytes(b)) for i, a, b in cursor}


def _sorted(rows: dict[int, Row]) -> list[Row]:
    return [rows[row_id] for row_id in sorted(rows)]
