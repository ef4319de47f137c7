"""A server restart costs no more events than the time it takes (issue 9 item 12).

The server process stops (SIGTERM: its streams get 1001; SIGKILL: every connection is reset)
and comes back on the same port and data folder about a second later, as `userstream serve`
does under an orchestrator. Events published once it answers again, one every 50 ms, are
lost until the client's redial lands: the redial must not be asleep in a long backoff wait
when the server returns. Virtual time in 50 ms steps, so the count is the policy's, not this
machine's; the relay is the network path (cut: nothing answers).
"""

from __future__ import annotations

import random
from dataclasses import replace

import aiohttp
import pytest

from tests.conftest import Harness
from tests.functional.client.helpers import (
    advance,
    leverage,
    make_stream,
    next_gap,
    next_item,
    number,
)
from tests.functional.client.relay import Relay
from tests.functional.client.test_stream_drop import unannounced_losses
from tests.functional.client.test_stream_edges import connected, via
from userstream import GapReason, StreamGap
from userstream.client.buffer import Item
from userstream.server.app import UserStreamServer

CADENCE_MS = 50
RESTART_MS = 1_000
"""From the process stopping to its port answering again: a Python server's start."""
AFTER = 20
"""Events published once the server answers (a second of them)."""
MOST_LOST = 3
"""The redial waits at most 100 ms while the failure is 2 s young: two events, and one more
if the handshake straddles a step. The former 0.25-0.5-1-2 s schedule (a redial asleep for
up to 2 s when the server came back) lost 4-20 here."""


@pytest.mark.parametrize("seed", range(1, 5))
@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_a_restart_loses_only_the_events_published_before_the_redial_lands(
    server: Harness, relay: Relay, kill: bool, seed: int
) -> None:
    account = server.account()
    port = server.server.port
    # The seed is the client's jitter: each one is a different draw of redial times.
    stream = make_stream(server, account, endpoints=via(relay), rng=random.Random(seed))
    async with stream:
        await server.publish(account, [leverage(1)])
        items: list[Item] = [await next_item(stream)]
        assert number(items[0]) == 1
        if kill:
            await relay.cut()  # every connection reset, no close frame: 1006
            await server.server.aclose()
        else:
            await server.server.aclose()  # 1001 to every stream, then the process is gone
            await relay.cut()
        gap = await next_gap(stream)
        items.append(gap)
        assert gap.reason is GapReason.DISCONNECTED
        assert gap.detail.startswith("1006" if kill else "1001"), gap
        await advance(server, RESTART_MS, step_ms=CADENCE_MS)
        assert not connected(stream)
        # The same data directory, port and clock: the key survives.
        restarted = UserStreamServer(replace(server.server.config, port=port))
        await restarted.start()
        http = aiohttp.ClientSession()
        try:
            relay.restore()
            again = Harness(restarted, server.clock, http)
            for n in range(2, AFTER + 2):
                await again.publish(account, [leverage(n)])
                await advance(again, CADENCE_MS, step_ms=CADENCE_MS)
            await again.publish(account, [leverage(AFTER + 2)])  # the end marker
            while isinstance(items[-1], StreamGap) or number(items[-1]) < AFTER + 2:
                items.append(await next_item(stream))
            assert unannounced_losses(items, AFTER + 2) == []
            received = [number(i) for i in items[2:] if not isinstance(i, StreamGap)]
            # Every event from the first one after the redial on, in order.
            assert received == list(range(received[0], AFTER + 3)), received
            lost = received[0] - 2
            assert lost <= MOST_LOST, received
            assert stream.health.reconnects == 1
        finally:
            await stream.aclose()
            await restarted.aclose()
            await http.close()
