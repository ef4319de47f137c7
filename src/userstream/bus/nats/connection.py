"""One NATS connection per node, shared by the key store, account store and event bus.

`NatsConnection.connect("nats://a:4222,nats://b:4222")` reconnects forever on its own (the
client library walks the server list and the cluster's discovered members); components
register `on_reconnect` callbacks to re-read what they may have missed while cut off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from nats import errors as nats_errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from userstream.bus.nats.connect import NatsOptions, NatsRefused, is_refusal
from userstream.exceptions import ConfigurationError

log = logging.getLogger(__name__)

RECONNECT_WAIT_S = 0.25
REQUEST_TIMEOUT_S = 5.0
REFUSED_GRACE_S = 2.0

ReconnectHandler = Callable[[], Awaitable[None]]


def parse_urls(urls: str | Sequence[str]) -> list[str]:
    """`nats://a:4222,nats://b:4222` (the `--bus` form) or a list, as the client's server list."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    servers = [item.strip() for item in items if item.strip()]
    if not servers:
        raise ConfigurationError("no NATS server URL given")
    return servers


class NatsConnection:
    """A connected NATS client and its JetStream context, with reconnect notifications.

    Call `await NatsConnection.connect(urls)`, hand it to the stores and the bus, and
    `await aclose()` after closing them.
    """

    def __init__(self, client: Client, replicas: int) -> None:
        self.client = client
        self.js: JetStreamContext = client.jetstream(timeout=REQUEST_TIMEOUT_S)
        self.replicas = replicas
        self._reconnect_handlers: list[ReconnectHandler] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.reconnects = 0
        self.closing = False

    @classmethod
    async def connect(
        cls,
        urls: str | Sequence[str],
        name: str = "userstream",
        replicas: int | None = None,
        options: NatsOptions | None = None,
    ) -> NatsConnection:
        """Connect (failing if no server answers now); `replicas` for the buckets and
        the stream defaults to 3 on a cluster and 1 on a single server."""
        holder: list[NatsConnection] = []

        async def reconnected() -> None:
            if holder:
                holder[0]._reconnected()

        async def disconnected() -> None:
            if not (holder and holder[0].closing):
                log.warning("NATS connection lost; reconnecting")

        refused: list[Exception] = []

        async def error(exc: Exception) -> None:
            # nats-py retries a first connection forever; a refusal (wrong credentials, TLS)
            # ends it instead, so a misconfigured gateway says so rather than hang.
            if not holder and is_refusal(exc):
                refused.append(exc)
                # Give up once every server has refused twice (nats-py then raises
                # NoServersError, closing its sockets itself); restored below if one accepts.
                client.options["max_reconnect_attempts"] = 1
                # ...and a failed TLS handshake can leave nats-py waiting on a socket that
                # never finishes closing: stop waiting after a grace.
                loop = asyncio.get_running_loop()
                loop.call_later(REFUSED_GRACE_S, connecting.cancel)
            log.info("NATS: %s", exc)

        client = Client()
        connecting = asyncio.ensure_future(
            client.connect(
                servers=parse_urls(urls),
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=RECONNECT_WAIT_S,  # type: ignore[arg-type]  # seconds
                connect_timeout=2,
                reconnected_cb=reconnected,
                disconnected_cb=disconnected,
                error_cb=error,
                **(options or NatsOptions()).connect_kwargs(),
            )
        )
        try:
            await connecting
        except (nats_errors.NoServersError, asyncio.CancelledError):
            if not refused:
                raise
            raise NatsRefused(f"NATS refused this gateway: {refused[-1]}") from None
        client.options["max_reconnect_attempts"] = -1  # reconnect forever from now on

        if replicas is None:
            info = client._server_info  # the INFO the server sent: names a cluster if any
            replicas = 3 if info.get("cluster") else 1
        connection = cls(client, replicas)
        holder.append(connection)
        return connection

    def on_reconnect(self, handler: ReconnectHandler) -> None:
        self._reconnect_handlers.append(handler)

    def _reconnected(self) -> None:
        self.reconnects += 1
        log.warning("NATS connection back (%d reconnects)", self.reconnects)
        for handler in self._reconnect_handlers:
            task = asyncio.ensure_future(self._run(handler))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(handler: ReconnectHandler) -> None:
        try:
            await handler()
        except Exception:  # the next reconnect or periodic pass retries
            log.exception("re-read after reconnect failed")

    async def aclose(self) -> None:
        self.closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if not self.client.is_closed:
            await self.client.close()
