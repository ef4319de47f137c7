"""`serve` creates its data folder 0700 and its secrets 0600 (issue #9 item 6)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import START_MS
from userstream.clock import ManualClock
from userstream.server.app import ADMIN_TOKEN_FILE, ServerConfig, UserStreamServer
from userstream.storage import DB_FILENAME


async def test_a_server_on_a_new_folder_keeps_its_secrets_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USERSTREAM_ADMIN_TOKEN", raising=False)
    previous = os.umask(0o022)
    try:
        data = tmp_path / "data"
        server = UserStreamServer(ServerConfig(port=0, data_dir=data, clock=ManualClock(START_MS)))
        await server.start()
        try:
            assert server.admin_token_generated
        finally:
            await server.aclose()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in (DB_FILENAME, ADMIN_TOKEN_FILE):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert (data / ADMIN_TOKEN_FILE).read_text().strip() == server.admin_token
