"""`Backends.open`: the backends a config names, opened before anything is wired to them and
closed on leaving, embedded or on a real `nats-server`."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.nats_fixtures import NatsServer
from userstream import ConfigurationError, ManualClock
from userstream.bus.backends import Backends
from userstream.bus.memory import MemoryEventBus


@dataclass
class Settings:
    bus: str | None
    data_dir: Path
    nats_creds: Path | None = None
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None


async def test_embedded_backends_are_sqlite_and_memory_and_close(tmp_path: Path) -> None:
    async with Backends.open(Settings(None, tmp_path)) as backends:
        assert not backends.shared
        assert backends.clock is None
        assert isinstance(backends.bus, MemoryEventBus)
        account = await backends.accounts.create("one", 0)
        record = await backends.keys.start(account.id, 0)
    async with Backends.open(Settings(None, tmp_path)) as reopened:
        assert await reopened.accounts.by_id(account.id) == account
        assert reopened.keys.get(record.key) == record
    with pytest.raises(sqlite3.ProgrammingError):  # the first opening's database is closed
        await backends.accounts.by_id(account.id + 1)


async def test_nats_backends_are_shared_and_carry_a_shared_clock(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    settings = Settings(nats_server.url, tmp_path)
    async with Backends.open(settings) as first, Backends.open(settings) as second:
        assert first.shared
        assert second.shared
        assert first.clock is not None
        assert second.clock is not None
        account = await first.accounts.create("shared", 0)
        assert await second.accounts.by_id(account.id) == account
        one, other = ManualClock(1_000), ManualClock(0)

        first_reached_the_end = asyncio.Event()

        async def step_one(now_ms: int) -> None:
            await one.set(now_ms)
            if now_ms == 1_500:
                first_reached_the_end.set()

        async def step_other(now_ms: int) -> None:
            await other.set(now_ms)

        await first.clock.join(one, step_one)
        await second.clock.join(other, step_other)  # joins later: adopts the shared time
        assert other.now_ms() == 1_000
        await second.clock.advance(500, 250)
        assert other.now_ms() == 1_500
        await asyncio.wait_for(first_reached_the_end.wait(), 5)  # every node follows


async def test_an_empty_bus_url_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        async with Backends.open(Settings(" , ", tmp_path)):
            pass
