"""The listenKey service: authentication, and expiry announced on the clock (spec §2, §5.1)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from userstream.accounts import Account, SqliteAccountStore
from userstream.bus.memory import SqliteKeyStore
from userstream.clock import ManualClock
from userstream.exceptions import InvalidAPIKey, ListenKeyNotFound
from userstream.protocol.listenkeys import VALIDITY_MS
from userstream.protocol.routes import parse_stream_name
from userstream.server.gateway import StreamGateway
from userstream.server.keys import ListenKeyService
from userstream.server.scheduler import Scheduler
from userstream.storage import open_database

START = 1_767_225_600_000
MINUTE = 60_000


class Recorder:
    combined = False

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def send_frames(self, frames: list[bytes]) -> None:
        data = b"".join(frames)
        while data:
            length, start = data[1], 2
            if length == 126:
                length, start = int.from_bytes(data[2:4], "big"), 4
            self.events.append(json.loads(data[start : start + length]))
            data = data[start + length :]


@dataclass
class Setup:
    clock: ManualClock
    scheduler: Scheduler
    gateway: StreamGateway
    keys: ListenKeyService
    account: Account
    db: sqlite3.Connection

    def watch(self, listen_key: str) -> Recorder:
        recorder = Recorder()
        self.gateway.subscribe(recorder, parse_stream_name(listen_key))
        return recorder

    async def advance(self, ms: int) -> None:
        await self.clock.advance(ms)
        self.scheduler.run_due()
        await self.keys.aclose()  # the store's end of each expired key completes


def build(
    db: sqlite3.Connection, clock: ManualClock
) -> tuple[ListenKeyService, StreamGateway, Scheduler]:
    scheduler = Scheduler(clock)
    gateway = StreamGateway()
    keys = ListenKeyService(SqliteAccountStore(db), SqliteKeyStore(db), gateway, scheduler)
    return keys, gateway, scheduler


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_database(tmp_path / "data")
    yield connection
    connection.close()


@pytest.fixture
async def setup(db: sqlite3.Connection) -> AsyncIterator[Setup]:
    clock = ManualClock(START)
    keys, gateway, scheduler = build(db, clock)
    accounts = keys.accounts
    assert isinstance(accounts, SqliteAccountStore)
    account = accounts.create_now("trader", START)
    yield Setup(clock, scheduler, gateway, keys, account, db)
    await keys.aclose()


async def test_authenticate(setup: Setup) -> None:
    assert (await setup.keys.authenticate(setup.account.api_key)).id == setup.account.id
    with pytest.raises(InvalidAPIKey) as malformed:
        await setup.keys.authenticate("not a key")
    assert malformed.value.code == -2014
    with pytest.raises(InvalidAPIKey) as unknown:
        await setup.keys.authenticate("A" * 64)
    assert unknown.value.code == -2015
    with pytest.raises(InvalidAPIKey):
        await setup.keys.authenticate(None)


async def test_a_key_expires_at_60_minutes_with_the_deadline_as_e(setup: Setup) -> None:
    record = await setup.keys.start(setup.account)
    assert record.expires_ms == START + VALIDITY_MS
    watcher = setup.watch(record.key)
    await setup.advance(VALIDITY_MS - 1)
    assert watcher.events == []
    await setup.advance(1)
    assert watcher.events == [
        {"e": "listenKeyExpired", "E": START + VALIDITY_MS, "listenKey": record.key}
    ]
    assert setup.keys.expired == 1
    assert setup.keys.store.get(record.key) is None
    with pytest.raises(ListenKeyNotFound):
        await setup.keys.keepalive(setup.account)


async def test_keepalive_moves_the_deadline(setup: Setup) -> None:
    record = await setup.keys.start(setup.account)
    watcher = setup.watch(record.key)
    await setup.advance(30 * MINUTE)
    extended = await setup.keys.keepalive(setup.account)
    assert (extended.key, extended.expires_ms) == (record.key, START + 90 * MINUTE)
    await setup.advance(30 * MINUTE)  # the first deadline passes: nothing happens
    assert watcher.events == []
    await setup.advance(30 * MINUTE)
    assert [event["E"] for event in watcher.events] == [START + 90 * MINUTE]


async def test_start_on_a_live_key_returns_it_extended(setup: Setup) -> None:
    first = await setup.keys.start(setup.account)
    await setup.advance(10 * MINUTE)
    again = await setup.keys.start(setup.account)
    assert (again.key, again.expires_ms) == (first.key, START + 70 * MINUTE)


async def test_close_is_announced_at_once_and_only_once(setup: Setup) -> None:
    record = await setup.keys.start(setup.account)
    watcher = setup.watch(record.key)
    await setup.advance(5 * MINUTE)
    await setup.keys.close(setup.account)
    assert watcher.events == [
        {"e": "listenKeyExpired", "E": START + 5 * MINUTE, "listenKey": record.key}
    ]
    await setup.advance(VALIDITY_MS)  # its old deadline passes: nothing more
    assert len(watcher.events) == 1
    with pytest.raises(ListenKeyNotFound):
        await setup.keys.close(setup.account)


async def test_expire_now_ends_the_key_as_its_deadline_would(setup: Setup) -> None:
    record = await setup.keys.start(setup.account)
    watcher = setup.watch(record.key)
    assert await setup.keys.expire_now(record.key) == record
    assert watcher.events == [{"e": "listenKeyExpired", "E": START, "listenKey": record.key}]
    assert setup.keys.store.get(record.key) is None
    assert await setup.keys.expire_now(record.key) is None


async def test_restore_schedules_keys_that_survived_a_restart(
    setup: Setup, db: sqlite3.Connection
) -> None:
    record = await setup.keys.start(setup.account)
    restarted, gateway, scheduler = build(db, setup.clock)
    restarted.restore()
    watcher = Recorder()
    gateway.subscribe(watcher, parse_stream_name(record.key))
    await setup.clock.advance(VALIDITY_MS)
    scheduler.run_due()
    await restarted.aclose()
    assert [event["E"] for event in watcher.events] == [START + VALIDITY_MS]
