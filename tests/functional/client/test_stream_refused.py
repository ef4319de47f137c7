"""A server down for longer than the 2 s fast phase, its port refusing every connect (issue 9
item 12): the client redials at most 100 ms apart while the kernel refuses (ECONNREFUSED
costs the server nothing), so it is back within a few steps of the port listening again.

The former policy grew the delays after 2 s (up to 3 s apart), so after a 5 s outage its
redial was asleep for up to 3 s when the server came back. Virtual time in 50 ms steps, so
the gap is the policy's, not this machine's.
"""

from __future__ import annotations

import random
from dataclasses import replace

import aiohttp
import pytest

from tests.conftest import Harness
from tests.functional.client.helpers import advance, leverage, make_stream, next_gap, next_item
from tests.functional.client.test_stream_edges import connected
from userstream import GapReason
from userstream.server.app import UserStreamServer

STEP_MS = 50
DOWN_MS = 5_000
"""Past the 2 s fast phase, where the former policy's delays had grown to 1.6-3 s."""
BACK_WITHIN_MS = 500
"""Generous: the 100 ms cap lands a redial within two 50 ms steps (50-100 ms here); the
former policy took 350-2,400 ms over these seeds."""


@pytest.mark.parametrize("seed", range(1, 9))
async def test_a_refused_port_is_redialled_fast_until_it_listens_again(
    server: Harness, seed: int
) -> None:
    account = server.account()
    port = server.server.port
    stream = make_stream(server, account, rng=random.Random(seed))
    async with stream:
        await server.publish(account, [leverage(1)])
        await next_item(stream)
        await server.server.aclose()  # 1001 to the stream, then nothing listens on the port
        gap = await next_gap(stream)
        assert gap.reason is GapReason.DISCONNECTED
        await advance(server, DOWN_MS, step_ms=STEP_MS)
        assert not connected(stream)
        restarted = UserStreamServer(replace(server.server.config, port=port))
        await restarted.start()
        http = aiohttp.ClientSession()
        try:
            again = Harness(restarted, server.clock, http)
            waited = 0
            while not connected(stream) and waited < 10_000:
                await advance(again, STEP_MS, step_ms=STEP_MS)
                waited += STEP_MS
            assert connected(stream)
            assert waited < BACK_WITHIN_MS, waited
        finally:
            await stream.aclose()
            await restarted.aclose()
            await http.close()
