"""`Publisher`: the producer's side of distributed mode (issue #4).

    async with await Publisher.connect("nats://127.0.0.1:4222") as publisher:
        await publisher.publish_json(account_id, b'{"e":"ORDER_TRADE_UPDATE", ...}')

Events are validated exactly as `POST /admin/v1/accounts/{id}/events` validates them
(`parse_admin_encoded`: every field known and of Binance's wire type, `E`/`T` filled with now
when absent, `listenKeyExpired` refused) and published as one batch. Each batch carries a
message id, the caller's or `<producer>-<n>`, so the bus drops a retried copy.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

from userstream.bus.base import EventBus
from userstream.clock import Clock, SystemClock
from userstream.protocol.codec import Deliverable, parse_admin_encoded


class Publisher:
    """Validates account events and publishes them on an `EventBus` (NATS or memory).

    Publish batches of one account one at a time (await each) to keep their order.
    """

    def __init__(
        self,
        bus: EventBus,
        clock: Clock | None = None,
        producer_id: str | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock or SystemClock()
        self.producer_id = producer_id or secrets.token_hex(8)
        self._counter = itertools.count(1)
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    async def connect(cls, urls: str | Sequence[str], producer_id: str | None = None) -> Publisher:
        """A publisher with its own NATS connection (`nats://a:4222,nats://b:4222`)."""
        from userstream.bus.nats import NatsConnection, NatsEventBus

        connection = await NatsConnection.connect(urls, name="userstream-publisher")
        bus = NatsEventBus(connection, producer_id=producer_id)
        try:
            await bus.open()
        except BaseException:
            await connection.aclose()
            raise
        publisher = cls(bus, producer_id=producer_id)
        publisher._closers = [bus.aclose, connection.aclose]
        return publisher

    def next_msg_id(self) -> str:
        return f"{self.producer_id}-{next(self._counter)}"

    async def publish(
        self, account_id: int, events: Sequence[Deliverable], msg_id: str | None = None
    ) -> int:
        """Publish already-built events (the protocol models, or `EncodedEvent`s); returns how
        many."""
        if events:
            await self._bus.publish(account_id, events, msg_id or self.next_msg_id())
        return len(events)

    async def publish_json(
        self, account_id: int, body: bytes | str, msg_id: str | None = None
    ) -> int:
        """Validate `body` (one event object or a JSON array) like the admin API and publish
        it as one batch; returns how many events.

        Raises:
            EventValidationError: the first offence, with its `path`; nothing is published.
        """
        raw = body.encode() if isinstance(body, str) else body
        events = parse_admin_encoded(raw, self._clock.now_ms())
        return await self.publish(account_id, events, msg_id)

    async def aclose(self) -> None:
        """Close what `connect` opened; a bus passed in stays its owner's to close."""
        closers, self._closers = self._closers, []
        for close in closers:
            await close()

    async def __aenter__(self) -> Publisher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
