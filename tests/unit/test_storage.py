"""The data folder keeps API secrets from other local users (issue #9 item 6), on real files."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from userstream.storage import DB_FILENAME, open_database, write_secret


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common umask 022, under which plain creation gives 0755 folders and 0644 files."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_folder_and_its_database_are_private(tmp_path: Path) -> None:
    data = tmp_path / "parent" / "data"
    db = open_database(data)
    try:
        db.execute("INSERT INTO accounts VALUES (1, 'a', 'k', 's', 0)")
        assert mode(data) == 0o700
        files = sorted(p.name for p in data.iterdir())
        assert files == [DB_FILENAME, f"{DB_FILENAME}-shm", f"{DB_FILENAME}-wal"]
        for name in files:
            assert mode(data / name) == 0o600, name
    finally:
        db.close()


def test_an_open_existing_folder_is_reported_with_the_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="userstream.storage"):
        open_database(data).close()
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert f"chmod 700 {data}" in record.getMessage()
    assert "0755" in record.getMessage()
    assert mode(data) == 0o755  # reported, not changed behind the user's back
    assert mode(data / DB_FILENAME) == 0o600


def test_a_private_existing_folder_is_quiet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    with caplog.at_level(logging.WARNING, logger="userstream.storage"):
        open_database(data).close()
        open_database(data).close()
    assert caplog.records == []


def test_write_secret_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    write_secret(path, "t\n")
    assert path.read_text() == "t\n"
    assert mode(path) == 0o600
