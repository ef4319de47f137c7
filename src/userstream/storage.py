"""The embedded default's data folder: the SQLite database and the admin token.

One database file, WAL mode, created on first use. Accounts and listenKeys live here so keys and
their deadlines survive a restart (issue #2 item 2). The database holds every account's apiKey
and secretKey, so a folder this module creates is 0700 and the files in it 0600; an existing
folder that other local users can enter is reported at start with the command that fixes it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from pathlib import Path

__all__ = ["DB_FILENAME", "SCHEMA", "open_data_dir", "open_database", "write_secret"]

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
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600
_GROUP_OR_OTHERS = stat.S_IRWXG | stat.S_IRWXO

logger = logging.getLogger(__name__)


def open_data_dir(data_dir: Path) -> None:
    """Create `data_dir` (0700) if missing; warn if an existing one is open to other users."""
    if not data_dir.exists():
        data_dir.mkdir(mode=_PRIVATE_DIR, parents=True)
        # mkdir's mode passes through the umask; the folder must not be wider than 0700.
        data_dir.chmod(_PRIVATE_DIR)
        return
    if not data_dir.is_dir():
        return  # opening the database reports what is in the way
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & _GROUP_OR_OTHERS:
        logger.warning(
            "data folder %s (mode %04o) holds API secrets and other local users can open it:"
            " run chmod 700 %s",
            data_dir,
            mode,
            data_dir,
        )


def _create_private(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist (never wider, not even briefly)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def write_secret(path: Path, text: str) -> None:
    """Write `text` to a new file `path` that only its owner can read (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def open_database(data_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database in `data_dir`; see `open_data_dir`.

    SQLite creates the `-wal` and `-shm` files with the database file's mode, so they are
    0600 as well.
    """
    open_data_dir(data_dir)
    path = data_dir / DB_FILENAME
    _create_private(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    return db
