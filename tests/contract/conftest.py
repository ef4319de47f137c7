"""Backends for the contract suite: every test runs once per backend.

A backend hands out *nodes*: the stores and the bus one gateway node would use. The embedded
backend is one process, so all its nodes share one SQLite database, one key store and one
bus; the NATS backend gives each node its own connection and stores on one real
`nats-server -js` (started by the `nats_server` fixture), as separate gateway processes have.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from tests.nats_fixtures import NatsServer
from userstream.accounts import AccountStore, SqliteAccountStore
from userstream.bus.base import EventBus, KeyStore
from userstream.bus.memory import MemoryEventBus, SqliteKeyStore
from userstream.bus.nats import NatsBackends, open_backends
from userstream.storage import open_database


@dataclass
class Node:
    accounts: AccountStore
    keys: KeyStore
    bus: EventBus


class Backend(Protocol):
    name: str

    async def node(self) -> Node: ...

    async def aclose(self) -> None: ...


@dataclass
class EmbeddedBackend:
    directory: Path
    name: str = "memory"
    _db: sqlite3.Connection | None = None
    _node: Node | None = None

    async def node(self) -> Node:
        if self._node is None:
            self._db = open_database(self.directory)
            self._node = Node(
                SqliteAccountStore(self._db), SqliteKeyStore(self._db), MemoryEventBus()
            )
        return self._node

    async def aclose(self) -> None:
        if self._db is not None:
            self._db.close()


@dataclass
class NatsBackend:
    server: NatsServer
    name: str = "nats"
    _opened: list[NatsBackends] = field(default_factory=list)

    async def node(self) -> Node:
        backends = await open_backends(self.server.url)
        self._opened.append(backends)
        return Node(backends.accounts, backends.keys, backends.bus)

    async def aclose(self) -> None:
        for backends in reversed(self._opened):
            await backends.aclose()


@pytest.fixture(params=["memory", "nats"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made: Backend
    if request.param == "memory":
        made = EmbeddedBackend(tmp_path / "data")
    else:
        made = NatsBackend(request.getfixturevalue("nats_server"))
    try:
        yield made
    finally:
        await made.aclose()
