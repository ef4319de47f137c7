"""Recovery after an outage (issue 9 item 12): back within the early backoff cap of the
server answering again, with few attempts while it was down (`test_stream_restart.py`:
within 100 ms after a restart). Virtual time: the clock moves
in 100 ms steps, so the figures are the policy's, not this machine's."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiohttp
import pytest

from tests.conftest import Harness
from tests.functional.client.helpers import (
    RECV_TIMEOUT_S,
    advance,
    leverage,
    make_stream,
    next_item,
    number,
)
from tests.functional.client.relay import Relay
from tests.functional.client.test_stream_edges import connected, stop_server, via
from userstream import Backoff, Reconnect
from userstream.server.app import UserStreamServer

STEP_MS = 100


@pytest.mark.parametrize("outage_ms", [1_000, 30_000, 60_000])
async def test_back_within_the_early_cap_of_the_server_answering(
    server: Harness, relay: Relay, outage_ms: int
) -> None:
    account = server.account()
    port = server.server.port
    early_cap_ms = Backoff().early_cap_ms
    assert early_cap_ms is not None
    async with make_stream(server, account, endpoints=via(relay)) as stream:
        await server.publish(account, [leverage(1)])
        assert number(await next_item(stream)) == 1
        await stop_server(server, relay, stream)
        refused_before = relay.refused
        await advance(server, outage_ms, step_ms=STEP_MS)
        attempts = relay.refused - refused_before
        assert not connected(stream)
        restarted = UserStreamServer(replace(server.server.config, port=port))
        await restarted.start()
        http = aiohttp.ClientSession()
        try:
            relay.restore()
            again = Harness(restarted, server.clock, http)
            answering_since = server.clock.now_ms()
            async with asyncio.timeout(RECV_TIMEOUT_S * 4):
                while not connected(stream):
                    await advance(again, STEP_MS, step_ms=STEP_MS)
            recovery_ms = server.clock.now_ms() - answering_since
            # The wait in progress when the server came back is at most the early cap.
            assert recovery_ms <= early_cap_ms + STEP_MS
            # At most 100 ms apart for the first 2 s (a restart; here at most one per
            # clock step), then full jitter under a 3 s cap: about one attempt per 1.5 s.
            fast = Reconnect().backoff.fast_ms // STEP_MS
            assert 1 <= attempts <= fast + 6 + outage_ms // 500
            await again.publish(account, [leverage(2)])
            assert number(await next_item(stream)) == 2
        finally:
            await stream.aclose()
            await restarted.aclose()
            await http.close()
