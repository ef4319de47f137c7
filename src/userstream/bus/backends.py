"""Choose and open the backends before anything is wired to them.

    async with Backends.open(config) as backends:      # embedded, or NATS with `config.bus`
        server = build(backends)                       # built once, never swapped
        ...
                                                       # closed in reverse order of opening

Start-up and clean-up are paired the way aiohttp's `cleanup_ctx` pairs them: each resource
is pushed on one `AsyncExitStack` as soon as it is open, so a failure halfway through closes
what was opened and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from userstream.accounts import AccountStore, SqliteAccountStore
from userstream.bus.base import EventBus, KeyStore, SharedClock
from userstream.bus.memory import MemoryEventBus, SqliteKeyStore
from userstream.storage import open_database

if TYPE_CHECKING:
    from userstream.bus.nats import NatsStatus

log = logging.getLogger(__name__)

# Closing may wait on NATS; a node told to stop while NATS is down or reconnecting must still
# exit promptly (its state lives in JetStream, nothing is lost by leaving).
CLOSE_TIMEOUT_S = 3.0

ReconnectHandler = Callable[[], Awaitable[None]]


class BackendSettings(Protocol):
    """What `Backends.open` reads from a config (`ServerConfig` has both)."""

    @property
    def bus(self) -> str | None:
        """`nats://a:4222[,nats://b:4222]` for NATS JetStream; None for memory + SQLite."""
        ...

    @property
    def data_dir(self) -> Path:
        """Where the embedded backends keep their SQLite database."""
        ...

    @property
    def nats_creds(self) -> Path | None:
        """A `.creds` file (JWT + nkey seed) the gateway presents to NATS."""
        ...

    @property
    def nats_tls_ca(self) -> Path | None: ...

    @property
    def nats_tls_cert(self) -> Path | None: ...

    @property
    def nats_tls_key(self) -> Path | None: ...


async def _bounded(close: Callable[[], Awaitable[None]], what: str) -> None:
    try:
        await asyncio.wait_for(close(), CLOSE_TIMEOUT_S)
    except TimeoutError:
        log.warning("%s did not close within %.0f s; leaving it", what, CLOSE_TIMEOUT_S)


def _never(_handler: ReconnectHandler) -> None:
    """The embedded backends live in this process: they never reconnect."""


@dataclass(frozen=True, slots=True)
class Backends:
    """One node's opened backends.

    `shared` is true when other nodes use the same key store and bus (NATS): the server then
    routes through a cluster node. `clock` shares virtual time between nodes (None when
    embedded). `on_reconnect(handler)` runs `handler` each time the backend comes back after
    a disconnection, to re-read what may have been missed. `nats_status()` reports the NATS
    connection for /ready and /metrics (None when embedded).
    """

    accounts: AccountStore
    keys: KeyStore
    bus: EventBus
    shared: bool
    clock: SharedClock | None
    on_reconnect: Callable[[ReconnectHandler], None]
    nats_status: Callable[[], NatsStatus] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: BackendSettings) -> AsyncIterator[Backends]:
        """Open the embedded backends, or the NATS ones when `settings.bus` names servers;
        close them on exit."""
        async with contextlib.AsyncExitStack() as stack:
            if settings.bus is None:
                db = open_database(settings.data_dir)
                stack.callback(db.close)
                yield cls(
                    SqliteAccountStore(db),
                    SqliteKeyStore(db),
                    MemoryEventBus(),
                    shared=False,
                    clock=None,
                    on_reconnect=_never,
                )
                return
            # Imported here: nats-py is the `userstream[nats]` extra.
            from userstream.bus.nats import NatsOptions, open_backends
            from userstream.bus.nats.clock import NatsClockSync

            options = NatsOptions(
                settings.nats_creds,
                settings.nats_tls_ca,
                settings.nats_tls_cert,
                settings.nats_tls_key,
            )
            nats = await open_backends(settings.bus, options=options)
            stack.push_async_callback(_bounded, nats.aclose, "NATS backends")
            clock = NatsClockSync(nats.connection)
            stack.push_async_callback(_bounded, clock.aclose, "clock sync")
            yield cls(
                nats.accounts,
                nats.keys,
                nats.bus,
                shared=True,
                clock=clock,
                on_reconnect=nats.connection.on_reconnect,
                nats_status=nats.status,
            )


__all__ = ["BackendSettings", "Backends"]
