"""`Publisher`: the producer's side of distributed mode (issue #4).

    async with Publisher.connect("nats://127.0.0.1:4222") as publisher:
        await publisher.publish_json(account_id, b'{"e":"ORDER_TRADE_UPDATE", ...}')

Events are validated exactly as `POST /admin/v1/accounts/{id}/events` validates them
(`parse_admin_encoded`: every field known and of Binance's wire type, `E`/`T` filled with now
when absent, `listenKeyExpired` refused) and published as one batch. Each batch carries a
message id, the caller's or `<producer>-<n>`, so the bus drops a retried copy.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
from collections.abc import AsyncIterator, Sequence

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

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, urls: str | Sequence[str], producer_id: str | None = None
    ) -> AsyncIterator[Publisher]:
        """A publisher with its own NATS connection (`nats://a:4222,nats://b:4222`), open
        inside the `async with` and closed on leaving it."""
        # Imported here: nats-py is the `userstream[nats]` extra.
        from userstream.bus.nats import NatsConnection, NatsEventBus

        async with contextlib.AsyncExitStack() as stack:
            connection = await NatsConnection.connect(urls, name="userstream-publisher")
            stack.push_async_callback(connection.aclose)
            bus = NatsEventBus(connection, producer_id=producer_id)
            await bus.open()
            stack.push_async_callback(bus.aclose)
            yield cls(bus, producer_id=producer_id)

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
