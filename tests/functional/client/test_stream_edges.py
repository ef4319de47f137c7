"""Client paths that unit tests alone covered, now against the real server on the virtual
clock: keepalives failing for the whole 60 minutes, a rejected or revoked API key, a finite
backoff against a vanished server, the WebSocket API transport losing its connection, a
non-zero reorder window, a server restart, 429 answers with Retry-After, and closing the
stream the moment a gap arrives. Each test also reads `stream.health` afterwards."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Harness, running_harness
from tests.functional.client.helpers import (
    MINUTE,
    RECV_TIMEOUT_S,
    advance,
    endpoints,
    leverage,
    make_stream,
    next_gap,
    next_item,
    number,
    settle,
    wait_for,
)
from tests.functional.client.relay import Relay
from userstream import (
    Backoff,
    ConnectionState,
    Delivery,
    Endpoints,
    GapReason,
    InvalidAPIKey,
    Keepalive,
    Reconnect,
    ReconnectGaveUp,
    StreamGap,
    UserDataStream,
)
from userstream.client.buffer import Item
from userstream.protocol.limits import WeightLimits
from userstream.server.app import UserStreamServer

# --- a REST path that can be cut while the stream connection stays up --------------------


def rest_via(server: Harness, relay: Relay) -> Endpoints:
    direct = endpoints(server)
    return Endpoints(f"http://127.0.0.1:{relay.port}", direct.ws_api_url, direct.stream_url)


async def drain(stream: UserDataStream) -> list[Item]:
    """Everything the stream holds for the consumer once in-flight frames have landed."""
    await settle()
    return [await next_item(stream) for _ in range(stream.health.buffered)]


def connected(stream: UserDataStream) -> bool:
    return stream.health.state is ConnectionState.CONNECTED


def client_tasks() -> set[asyncio.Task[Any]]:
    """Live tasks running client code (the server's own tasks come and go meanwhile)."""

    def is_client(task: asyncio.Task[Any]) -> bool:
        frames = task.get_stack(limit=None)
        return task.get_name().startswith("userstream") or any(
            "/userstream/client/" in frame.f_code.co_filename for frame in frames
        )

    return {t for t in asyncio.all_tasks() if not t.done() and is_client(t)}


# --- 1. keepalives failing for the key's whole 60 minutes ---------------------------------


async def test_keepalives_failing_for_60_minutes_issue_a_new_key_and_mark_key_lost(
    server: Harness, relay: Relay
) -> None:
    account = server.account()
    stream = make_stream(server, account, endpoints=rest_via(server, relay))
    async with stream:
        old = stream.listen_key
        await server.publish(account, [leverage(1)])
        assert number(await next_item(stream)) == 1
        received_at = server.clock.now_ms()

        await relay.cut()  # REST unreachable; the stream connection stays up
        await advance(server, 57 * MINUTE)  # keepalives from minute 30 on all fail
        health = stream.health
        assert health.last_keepalive_ok is False
        assert health.last_keepalive_error is not None
        assert (health.keys_issued, health.reconnects, health.gaps) == (1, 0, 0)
        assert health.state is ConnectionState.CONNECTED
        await server.publish(account, [leverage(2)])  # the connection still delivers
        assert number(await next_item(stream)) == 2

        relay.restore()  # in time for the POST, not for a keepalive inside the 60 min
        await server.advance(3 * MINUTE)  # minute 60: the key's validity runs out
        gap = await next_gap(stream)
        assert gap.reason is GapReason.KEY_LOST
        assert gap.since_ms >= received_at
        await wait_for(lambda: stream.health.reconnects == 1)
        assert stream.listen_key not in (None, old)

        await server.publish(account, [leverage(3), leverage(4)])
        assert [number(await next_item(stream)), number(await next_item(stream))] == [3, 4]
        assert await drain(stream) == []  # nothing twice
        health = stream.health
        assert (health.keys_issued, health.reconnects, health.gaps) == (2, 1, 1)
        assert health.state is ConnectionState.CONNECTED
        assert health.key_age_ms == 0
        assert health.last_keepalive_ok is False  # no keepalive on the new key yet
        assert health.last_reason is not None
        assert health.last_reason.startswith("key_lost")

        await advance(server, 30 * MINUTE)
        assert stream.health.last_keepalive_ok is True
        assert stream.health.keys_issued == 2


# --- 2. a rejected API key ---------------------------------------------------------------


@pytest.mark.parametrize("transport", ["rest", "ws_api"])
@pytest.mark.parametrize(
    ("api_key", "code"),
    [("A" * 64, -2015), ("not-a-key", -2014)],
    ids=["unknown", "malformed"],
)
async def test_a_rejected_api_key_fails_on_enter_and_leaves_no_task(
    server: Harness, transport: Any, api_key: str, code: int
) -> None:
    assert client_tasks() == set()
    stream = UserDataStream(
        api_key,
        endpoints=endpoints(server),
        clock=server.clock,
        key_transport=transport,
        keepalive=Keepalive(ping_interval_s=None),
    )
    with pytest.raises(InvalidAPIKey) as rejected:
        async with asyncio.timeout(RECV_TIMEOUT_S):
            await stream.__aenter__()
    assert rejected.value.code == code
    assert api_key not in str(rejected.value)
    await settle()
    assert client_tasks() == set()
    assert stream.health.state is ConnectionState.CLOSED
    assert stream.health.keys_issued == 0
    with pytest.raises(StopAsyncIteration):
        await next_item(stream)


# --- 3. a finite backoff against a server that is gone -----------------------------------


def via(relay: Relay) -> Endpoints:
    """Every URL through `relay`: cutting it is what the server process dying looks like
    to the client (every connection reset, nothing answers)."""
    return Endpoints(
        f"http://127.0.0.1:{relay.port}",
        f"ws://127.0.0.1:{relay.port}/ws-fapi/v1",
        f"ws://127.0.0.1:{relay.port}",
    )


async def stop_server(harness: Harness, relay: Relay, stream: UserDataStream) -> None:
    """Shut the server down (streams get 1001), then reset whatever is left, e.g. pooled
    HTTP keep-alive connections, which `UserStreamServer.aclose()` leaves open."""
    await harness.server.aclose()
    gap = await next_gap(stream)
    assert gap.reason is GapReason.DISCONNECTED
    assert gap.detail.startswith("1001")
    await relay.cut()


async def test_finite_backoff_gives_up_after_its_attempts_when_the_server_is_gone(
    server: Harness, relay: Relay
) -> None:
    attempts = 4
    states: list[ConnectionState] = []
    account = server.account()
    stream = make_stream(
        server,
        account,
        endpoints=via(relay),
        reconnect=Reconnect(
            Backoff(first_ms=0, base_ms=1_000, early_cap_ms=None, jitter=0, max_attempts=attempts)
        ),
        on_state_change=lambda _old, new, _why: states.append(new),
    )
    async with stream:
        await server.publish(account, [leverage(1)])  # a delivered frame restarts the backoff
        assert number(await next_item(stream)) == 1
        await stop_server(server, relay, stream)
        started = server.clock.now_ms()
        consumer = asyncio.ensure_future(anext(stream))
        async with asyncio.timeout(RECV_TIMEOUT_S):
            while not consumer.done():
                await server.clock.advance(250)
                await settle(1)
        # Retries wait 0, 1, 2 and 4 s (no jitter); each try took under one 250 ms step.
        assert server.clock.now_ms() - started <= 7_000 + attempts * 250
        with pytest.raises(ReconnectGaveUp) as gave_up:
            consumer.result()
        assert "no reconnect attempts left" in str(gave_up.value)
        assert states.count(ConnectionState.CONNECTING) == 1 + attempts
        with pytest.raises(ReconnectGaveUp):  # it stays failed
            await next_item(stream)
        health = stream.health
        assert (health.reconnects, health.gaps, health.keys_issued) == (0, 1, 1)
        assert health.state is not ConnectionState.CONNECTED
        assert health.last_reason is not None
        assert health.last_reason.startswith("disconnected: 1001")
        async with asyncio.timeout(RECV_TIMEOUT_S):
            await stream.aclose()  # the DELETE fails at once; closing still completes
    assert stream.health.state is ConnectionState.CLOSED
    assert client_tasks() == set()


# --- 4. the WebSocket API key transport after its connection dropped -------------------


async def test_ws_api_transport_reopens_its_connection_after_a_drop(server: Harness) -> None:
    account = server.account()
    async with make_stream(server, account, key_transport="ws_api") as stream:
        key = stream.listen_key
        _, stats = await server.admin("GET", "stats")
        assert stats["connections"] == {"streams": 1, "wsApi": 1}
        status, body = await server.admin("POST", "connections/drop", {})
        assert (status, body) == (200, {"dropped": 2})
        gap = await next_gap(stream)
        assert gap.reason is GapReason.DISCONNECTED
        # The reconnect's key check (once the stream is open again) is a
        # userDataStream.ping: it reopens the WS API. (If it raced the close of the old WS
        # API connection, a retry follows on the clock.)
        async with asyncio.timeout(RECV_TIMEOUT_S):
            while stream.health.reconnects == 0 or stream.health.last_keepalive_ok is not True:
                await advance(server, 250)
        assert stream.listen_key == key
        assert stream.health.last_keepalive_ok is True
        _, stats = await server.admin("GET", "stats")
        assert stats["connections"] == {"streams": 1, "wsApi": 1}
        await server.publish(account, [leverage(5)])
        assert number(await next_item(stream)) == 5
        await advance(server, 70 * MINUTE)
        health = stream.health
        assert health.last_keepalive_ok is True
        assert (health.keys_issued, health.reconnects, health.gaps) == (1, 1, 1)
        await server.publish(account, [leverage(6)])
        assert number(await next_item(stream)) == 6
        assert await drain(stream) == []


async def test_ws_api_transport_reopens_its_connection_at_the_next_keepalive(
    server: Harness, relay: Relay
) -> None:
    account = server.account()
    direct = endpoints(server)
    ws_api_via_relay = Endpoints(
        direct.rest_url, f"ws://127.0.0.1:{relay.port}/ws-fapi/v1", direct.stream_url
    )
    options: dict[str, Any] = {"key_transport": "ws_api", "endpoints": ws_api_via_relay}
    async with make_stream(server, account, **options) as stream:
        await relay.cut()  # the WS API connection alone dies; the stream stays up
        relay.restore()
        await settle()
        _, stats = await server.admin("GET", "stats")
        assert stats["connections"] == {"streams": 1, "wsApi": 0}
        await advance(server, 30 * MINUTE)  # the keepalive reconnects the WS API first
        health = stream.health
        assert health.last_keepalive_ok is True
        assert (health.keys_issued, health.reconnects, health.gaps) == (1, 0, 0)
        _, stats = await server.admin("GET", "stats")
        assert stats["connections"] == {"streams": 1, "wsApi": 1}
        await server.publish(account, [leverage(7)])
        assert number(await next_item(stream)) == 7


# --- 5. a non-zero reorder window --------------------------------------------------------


def at(n: int, event_time: int) -> dict[str, Any]:
    return {**leverage(n), "E": event_time}


async def test_reorder_window_yields_in_event_time_order_and_holds_no_longer(
    server: Harness,
) -> None:
    account = server.account()
    window = 500
    t = server.clock.now_ms()
    async with make_stream(server, account, delivery=Delivery(reorder_window_ms=window)) as stream:
        await server.publish(account, [at(3, t + 30), at(1, t + 10), at(2, t + 20)])
        await wait_for(lambda: stream.health.events == 3)
        await settle()
        assert stream.health.buffered == 0  # all three held for the window
        await server.advance(window - 1)
        await settle()
        assert stream.health.buffered == 0
        await server.advance(1)  # the window has passed for the first arrival
        got = [number(await next_item(stream)) for _ in range(3)]
        assert got == [1, 2, 3]

        # An event older than one already released cannot be put in order: not held at all.
        await server.publish(account, [at(4, t + 5)])
        assert number(await next_item(stream)) == 4

        # A held event is released once its window passed even if nothing follows it.
        await server.publish(account, [at(6, t + 60)])
        await wait_for(lambda: stream.health.events == 5)
        await server.advance(window // 2)
        await server.publish(account, [at(5, t + 50)])
        await wait_for(lambda: stream.health.events == 6)
        await settle()
        assert stream.health.buffered == 0
        await server.advance(window // 2)  # the window of event 6 is over, not that of 5
        assert [number(await next_item(stream)) for _ in range(2)] == [5, 6]
        assert await drain(stream) == []
        health = stream.health
        assert (health.events, health.gaps, health.reconnects, health.keys_issued) == (6, 0, 0, 1)


# --- 6. a server restart -----------------------------------------------------------------


async def test_server_restart_reconnects_on_the_same_key_with_one_gap(
    server: Harness, relay: Relay
) -> None:
    account = server.account()
    port = server.server.port
    async with make_stream(server, account, endpoints=via(relay)) as stream:
        key = stream.listen_key
        await server.publish(account, [leverage(1)])
        assert number(await next_item(stream)) == 1
        await stop_server(server, relay, stream)
        await advance(server, 2_000, step_ms=250)  # a few retries fail meanwhile
        assert not connected(stream)
        # The same data directory, port and clock: the key and its deadline survive.
        restarted = UserStreamServer(replace(server.server.config, port=port))
        await restarted.start()
        # A session of its own: the harness's pooled connection is one of the leftovers.
        http = aiohttp.ClientSession()
        try:
            relay.restore()
            again = Harness(restarted, server.clock, http)
            async with asyncio.timeout(RECV_TIMEOUT_S):
                # Connected, and the key check that follows a reconnect has answered.
                while not connected(stream) or stream.health.last_keepalive_ok is not True:
                    await advance(again, 250)
            assert stream.listen_key == key
            await again.publish(account, [leverage(2), leverage(3)])
            assert [number(await next_item(stream)) for _ in range(2)] == [2, 3]
            assert await drain(stream) == []
            health = stream.health
            assert (health.keys_issued, health.reconnects, health.gaps) == (1, 1, 1)
            assert health.last_keepalive_ok is True  # the key check on reconnect
            assert health.last_reason is not None
            assert health.last_reason.startswith("disconnected: 1001")
        finally:
            await stream.aclose()
            await restarted.aclose()
            await http.close()


# --- closing at once on a gap --------------------------------------------------------------


async def test_closing_as_soon_as_a_gap_arrives_leaves_no_coroutine_unawaited(
    server: Harness,
) -> None:
    account = server.account()
    stream = make_stream(server, account)
    await stream.start()
    status, _ = await server.admin("POST", f"listenKeys/{stream.listen_key}/expire")
    assert status == 200
    async with asyncio.timeout(RECV_TIMEOUT_S):
        item = await anext(stream)  # in this task: no hop through wait_for's task
    assert isinstance(item, StreamGap)
    assert item.reason is GapReason.KEY_EXPIRED
    # The gap woke this task before the old connection's retire task had run once.
    await stream.aclose()
    gc.collect()  # an unawaited coroutine warns here; pytest turns it into an error
    assert client_tasks() == set()


# --- a rate-limited keepalive ------------------------------------------------------------


async def put_key(harness: Harness, api_key: str) -> int:
    async with harness.http.put(
        f"{harness.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}
    ) as response:
        return response.status


async def test_a_keepalive_answered_429_waits_for_retry_after_instead_of_earning_a_ban(
    tmp_path: Path,
) -> None:
    limits = WeightLimits(per_minute=5)
    async with running_harness(tmp_path / "data", weight_limits=limits) as harness:
        account = harness.account()
        interval = 30 * MINUTE + 30_000  # the keepalive falls half-way into a minute
        async with make_stream(
            harness, account, keepalive=Keepalive(interval, ping_interval_s=None)
        ) as stream:
            await advance(harness, 30 * MINUTE)
            # The bot itself used this minute's weight, and ran into five 429s already: one
            # more over-limit request from this IP in this minute starts a 418 ban.
            statuses = [await put_key(harness, account.api_key) for _ in range(10)]
            assert statuses == [200] * 5 + [429] * 5
            await advance(harness, 30_000, step_ms=500)  # the keepalive: 429
            assert stream.health.last_keepalive_ok is False
            assert stream.health.last_keepalive_error is not None
            assert "-1003" in stream.health.last_keepalive_error
            await advance(harness, 30_000, step_ms=500)  # retries until the next minute
            # Retry-After said "next minute": the IP was not pushed into a 418 ban.
            await wait_for(lambda: stream.health.last_keepalive_ok is True)
            assert await put_key(harness, account.api_key) == 200
            health = stream.health
            assert (health.keys_issued, health.reconnects, health.gaps) == (1, 0, 0)


async def test_a_reconnect_whose_key_check_is_answered_429_waits_for_retry_after(
    tmp_path: Path,
) -> None:
    limits = WeightLimits(per_minute=5)
    async with running_harness(tmp_path / "data", weight_limits=limits) as harness:
        account = harness.account()
        async with make_stream(harness, account) as stream:
            await advance(harness, MINUTE)  # a fresh minute
            statuses = [await put_key(harness, account.api_key) for _ in range(10)]
            assert statuses == [200] * 5 + [429] * 5
            status, _ = await harness.admin("POST", "connections/drop", {"accountId": account.id})
            assert status == 200
            assert (await next_gap(stream)).reason is GapReason.DISCONNECTED
            await advance(harness, MINUTE + 5_000, step_ms=500)  # the key check got 429: wait
            await wait_for(lambda: connected(stream))
            assert await put_key(harness, account.api_key) == 200  # no 418 ban
            await harness.publish(account, [leverage(8)])
            assert number(await next_item(stream)) == 8
            health = stream.health
            assert (health.keys_issued, health.reconnects, health.gaps) == (1, 1, 1)
            assert health.last_keepalive_ok is True


# --- an API key revoked while the stream runs --------------------------------------------


async def test_a_keepalive_answered_2015_fails_the_stream_once_without_spinning(
    server: Harness, relay: Relay, tmp_path: Path
) -> None:
    account = server.account()
    stream = make_stream(server, account, endpoints=rest_via(server, relay))
    async with running_harness(tmp_path / "elsewhere", clock=server.clock) as other, stream:
        # REST now reaches a server that does not know the API key: it is "revoked".
        await relay.retarget(other.server.port)
        await advance(server, 30 * MINUTE)  # one keepalive: -2015
        with pytest.raises(InvalidAPIKey) as rejected:
            await next_item(stream)
        assert rejected.value.code == -2015
        await settle(10)
        # One PUT, not a loop of them hammering the venue until it answers 429.
        assert other.server.limiter.used("127.0.0.1", server.clock.now_ms()) == 1
        assert stream.health.last_keepalive_ok is False
        with pytest.raises(InvalidAPIKey):
            await next_item(stream)
