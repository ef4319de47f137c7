"""A closed stream connection leaves nothing behind (issue #9 item 1).

Each connection used to leave its cancelled 24-hour and ping timers in the scheduler's heap,
which kept the connection, its session, its parser buffer and its subscriptions reachable
for a day. Counts here are objects, not RSS: heap entries, gateway subscribers, and the
connection objects the garbage collector can still reach.
"""

from __future__ import annotations

from bench.closed_connections import churn, reachable_connection_objects, wait_until_closed

from tests.conftest import Harness
from tests.functional.stream_helpers import RawClient, new_account


async def test_thousands_of_closed_connections_leave_nothing_behind(server: Harness) -> None:
    app = server.server
    _, key = await new_account(server)
    live_timers = app.scheduler.pending
    await churn(app, f"/ws/{key}", connections=3000, parallel=100)
    assert not app.streams
    assert app.gateway.subscribers(key) == []
    assert app.scheduler.pending == live_timers
    # Cancelled entries are compacted away once they are most of a heap of 100 or more.
    assert len(app.scheduler) < 100
    assert reachable_connection_objects() == 0


async def test_closed_connections_leave_nothing_after_their_pings(server: Harness) -> None:
    """Connections that lived through a ping (so a pong deadline was armed) are freed too."""
    app = server.server
    _, key = await new_account(server)
    live_timers = app.scheduler.pending
    clients = [await RawClient.connect(server, f"/ws/{key}") for _ in range(200)]
    await server.advance(3 * 60 * 1000)
    assert app.pongs.waiting == 200
    for client in clients:
        await client.aclose()
    await wait_until_closed(app)
    assert app.pongs.waiting == 0
    assert app.scheduler.pending == live_timers
    assert len(app.scheduler) < 100
    del clients
    assert reachable_connection_objects() == 0
