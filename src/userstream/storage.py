"""The embedded default's SQLite database under the data directory.

One file, WAL mode, created on first use. Accounts and listenKeys live here so keys and their
deadlines survive a restart (issue #2 item 2).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    api_key     TEXT NOT NULL UNIQUE,
    secret_key  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS listen_keys (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts(id),
    listen_key  TEXT NOT NULL UNIQUE,
    expires_ms  INTEGER NOT NULL
);
"""

DB_FILENAME = "userstream.sqlite3"


def open_database(data_dir: Path) -> sqlite3.Connection:
    data_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(data_dir / DB_FILENAME, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    return db
