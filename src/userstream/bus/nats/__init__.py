"""The distributed backends on NATS JetStream (issue #4): accounts and listenKeys in
key-value buckets, account events on a stream.

    connection = await NatsConnection.connect("nats://127.0.0.1:4222")
    accounts, keys, bus = (NatsAccountStore(connection), NatsKeyStore(connection),
                           NatsEventBus(connection))
    for part in (accounts, keys, bus):
        await part.open()
    ...
    for part in (bus, keys, accounts):
        await part.aclose()
    await connection.aclose()

`open_backends(urls)` does the above and returns them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from userstream.bus.nats.accounts import NatsAccountStore
from userstream.bus.nats.connect import NatsOptions, NatsRefused, NatsStatus
from userstream.bus.nats.connection import NatsConnection, parse_urls
from userstream.bus.nats.events import NatsEventBus
from userstream.bus.nats.keys import NatsKeyStore


@dataclass(slots=True)
class NatsBackends:
    """One node's connection and the three backends on it; `aclose()` closes them all."""

    connection: NatsConnection
    accounts: NatsAccountStore
    keys: NatsKeyStore
    bus: NatsEventBus

    def status(self) -> NatsStatus:
        return NatsStatus(
            bool(self.connection.client.is_connected),
            self.connection.reconnects,
            self.bus.pending,
        )

    async def aclose(self) -> None:
        await self.bus.aclose()
        await self.keys.aclose()
        await self.accounts.aclose()
        await self.connection.aclose()


async def open_backends(
    urls: str | Sequence[str],
    name: str = "userstream",
    replicas: int | None = None,
    options: NatsOptions | None = None,
) -> NatsBackends:
    """Connect to `urls` (`nats://a:4222,nats://b:4222`) and open all three backends."""
    connection = await NatsConnection.connect(urls, name=name, replicas=replicas, options=options)
    backends = NatsBackends(
        connection,
        NatsAccountStore(connection),
        NatsKeyStore(connection),
        NatsEventBus(connection),
    )
    try:
        await backends.accounts.open()
        await backends.keys.open()
        await backends.bus.open()
    except BaseException:
        await backends.aclose()
        raise
    return backends


__all__ = [
    "NatsAccountStore",
    "NatsBackends",
    "NatsConnection",
    "NatsEventBus",
    "NatsKeyStore",
    "NatsOptions",
    "NatsRefused",
    "NatsStatus",
    "open_backends",
    "parse_urls",
]
