"""Event delivery over real stream connections (issue #2 items 8-9, DESIGN.md rule 3).

Golden payloads from tests/fixtures/events go in through the admin API and must come out
exactly as the server encodes them; order, completeness, account isolation, listenKey end,
and the slow-consumer cut-off are checked on several connections at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.conftest import ADMIN_TOKEN, START_MS, Harness, event_fixture, running_harness
from tests.functional.stream_helpers import (
    PUBLISHABLE_FIXTURES,
    RawClient,
    assert_quiet,
    new_account,
    numbered,
    open_ws,
    recv_json,
    recv_text,
)
from userstream.protocol.codec import combined_envelope, encode_event, parse_admin_events
from userstream.server.streams import StreamSession

ORDER = event_fixture("order_trade_update_doc")
ACCOUNT = event_fixture("account_update_doc")


def encoded(event: dict[str, Any]) -> str:
    """The exact text the server sends for `event` in a raw envelope."""
    body = json.dumps(event).encode()
    return encode_event(parse_admin_events(body, START_MS)[0]).decode()


async def stats(server: Harness) -> dict[str, Any]:
    status, body = await server.admin("GET", "stats")
    assert status == 200
    result: dict[str, Any] = body
    return result


async def delete_key(server: Harness, api_key: str) -> None:
    async with server.http.delete(
        f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}
    ) as response:
        assert response.status == 200
        assert await response.json() == {}


async def test_every_event_type_arrives_exactly_as_encoded(server: Harness) -> None:
    account, key = await new_account(server)
    events = [event_fixture(name) for name in PUBLISHABLE_FIXTURES]
    async with (
        open_ws(server, f"/private/ws/{key}") as raw,
        open_ws(server, f"/private/stream?streams={key}") as combined,
    ):
        assert await server.publish(account, events) == len(events)
        for event in events:
            text = encoded(event)
            assert await recv_text(raw) == text
            assert json.loads(text) == event  # E and T exactly as sent
            wrapped = await recv_text(combined)
            assert wrapped == combined_envelope(key, text.encode()).decode()
            assert json.loads(wrapped) == {"stream": key, "data": event}
        await assert_quiet(raw)
        await assert_quiet(combined)


async def test_missing_event_and_transaction_time_come_from_the_clock(server: Harness) -> None:
    account, key = await new_account(server)
    event = event_fixture("trade_lite_doc")
    del event["E"], event["T"]
    async with open_ws(server, f"/ws/{key}") as ws:
        await server.advance(1234)
        await server.publish(account, event)
        assert await recv_json(ws) == {**event, "E": START_MS + 1234, "T": START_MS + 1234}


async def test_listen_key_expired_on_delete_matches_the_fixture_shape(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as ws:
        await server.advance(5000)
        await delete_key(server, account.api_key)
        text = await recv_text(ws)
        golden = event_fixture("listen_key_expired")
        assert text == f'{{"e":"listenKeyExpired","E":{START_MS + 5000},"listenKey":"{key}"}}'
        assert list(json.loads(text)) == list(golden)


async def test_thousand_events_arrive_complete_and_in_order_everywhere(server: Harness) -> None:
    account, key = await new_account(server)
    targets = [
        f"/ws/{key}",
        f"/stream?streams={key}",
        f"/private/ws?listenKey={key}",
        f"/private/stream?listenKey={key}&events=TRADE_LITE",
    ]
    async with (
        open_ws(server, targets[0]) as a,
        open_ws(server, targets[1]) as b,
        open_ws(server, targets[2]) as c,
        open_ws(server, targets[3]) as d,
    ):
        assert await server.publish(account, [numbered(n) for n in range(1000)]) == 1000
        streams = {b: key, d: f"{key}@TRADE_LITE"}
        for ws in (a, b, c, d):
            for n in range(1000):
                frame = await recv_json(ws)
                if ws in streams:
                    assert frame["stream"] == streams[ws]
                    frame = frame["data"]
                assert frame == numbered(n)
            await assert_quiet(ws)
    assert (await stats(server))["events"]["delivered"] == 4000


async def test_batches_keep_acceptance_order(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as ws:
        for start in range(0, 50, 10):
            await server.publish(account, [numbered(n) for n in range(start, start + 10)])
        assert [(await recv_json(ws))["t"] for _ in range(50)] == list(range(50))


async def test_pipelined_batches_from_two_publishers_arrive_complete_and_in_order(
    server: Harness,
) -> None:
    """Two connections pipeline 60 batches each: their workers take turns, yielding the loop
    between turns (server/http.py `TURN_BUDGET_S`), and every event still arrives once, in
    the order it was published, at the connection of its own account only."""
    batches, size = 60, 50
    accounts = [await new_account(server, name) for name in ("alice", "bob")]

    def requests(account_id: int) -> bytes:
        out = []
        for start in range(0, batches * size, size):
            body = json.dumps([numbered(n) for n in range(start, start + size)]).encode()
            head = (
                f"POST /admin/v1/accounts/{account_id}/events HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            out.append(head.encode() + body)
        return b"".join(out)

    async with (
        open_ws(server, f"/ws/{accounts[0][1]}") as first,
        open_ws(server, f"/ws/{accounts[1][1]}") as second,
    ):
        publishers = [
            await asyncio.open_connection("127.0.0.1", server.server.port) for _ in accounts
        ]
        try:
            for (_, writer), (account, _) in zip(publishers, accounts, strict=True):
                writer.write(requests(account.id))
            for ws in (first, second):
                received = [(await recv_json(ws))["t"] for _ in range(batches * size)]
                assert received == list(range(batches * size))
                await assert_quiet(ws)
            for reader, _ in publishers:
                answers = b""
                while answers.count(b"HTTP/1.1 200") < batches:
                    chunk = await asyncio.wait_for(reader.read(65536), 5)
                    assert chunk, "closed before every answer arrived"
                    answers += chunk
                assert answers.count(b'{"accepted":%d,' % size) == batches
        finally:
            for _, writer in publishers:
                writer.close()


async def test_events_of_one_account_never_reach_another(server: Harness) -> None:
    alice, ka = await new_account(server, "alice")
    bob, kb = await new_account(server, "bob")
    async with (
        open_ws(server, f"/ws/{ka}") as a,
        open_ws(server, f"/private/stream?streams={kb}") as b,
        open_ws(server, f"/private/ws?listenKey={kb}") as b2,
    ):
        await server.publish(alice, [ORDER, ACCOUNT])
        assert await recv_json(a) == ORDER
        assert await recv_json(a) == ACCOUNT
        await assert_quiet(b)
        await assert_quiet(b2)
        await server.publish(bob, ACCOUNT)
        assert await recv_json(b) == {"stream": kb, "data": ACCOUNT}
        assert await recv_json(b2) == ACCOUNT
        await assert_quiet(a)


async def test_events_without_an_active_key_are_accepted_and_go_nowhere(server: Harness) -> None:
    account = server.account("keyless")
    before = await stats(server)
    assert await server.publish(account, [ORDER, ACCOUNT]) == 2
    after = await stats(server)
    assert after["events"]["accepted"] == before["events"]["accepted"] + 2
    assert after["events"]["delivered"] == before["events"]["delivered"]
    # Nothing was kept for later: a key issued now sees only what comes after it.
    key = await server.listen_key(account)
    async with open_ws(server, f"/ws/{key}") as ws:
        await server.publish(account, numbered(1))
        assert await recv_json(ws) == numbered(1)
        await assert_quiet(ws)


async def test_delete_sends_listen_key_expired_respecting_filters(server: Harness) -> None:
    account, key = await new_account(server)
    expired = {"e": "listenKeyExpired", "E": START_MS + 60_000, "listenKey": key}
    async with (
        open_ws(server, f"/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE") as orders,
        open_ws(server, f"/private/ws?listenKey={key}&events=listenKeyExpired") as wanted,
        open_ws(server, f"/private/ws?listenKey={key}") as unfiltered,
        open_ws(server, f"/ws/{key}") as legacy,
        open_ws(server, f"/private/stream?streams={key}") as combined,
        open_ws(server, f"/private/stream?listenKey={key}&events=listenKeyExpired") as named,
    ):
        await server.advance(60_000)
        await delete_key(server, account.api_key)
        assert await recv_json(wanted) == expired
        assert await recv_json(unfiltered) == expired
        assert await recv_json(legacy) == expired
        assert await recv_json(combined) == {"stream": key, "data": expired}
        assert await recv_json(named) == {"stream": f"{key}@listenKeyExpired", "data": expired}
        await assert_quiet(orders)

        # The old key delivers nothing more; every old connection stays open.
        assert await server.publish(account, [ORDER, ACCOUNT]) == 2
        for ws in (orders, wanted, unfiltered, legacy, combined, named):
            await assert_quiet(ws)

        new_key = await server.listen_key(account)
        assert new_key != key
        async with open_ws(server, f"/private/ws?listenKey={new_key}") as fresh:
            await server.publish(account, ORDER)
            assert await recv_json(fresh) == ORDER
        for ws in (orders, unfiltered, legacy):
            await assert_quiet(ws)


# --- slow consumer --------------------------------------------------------------------------

MAX_UNSENT = 256 * 1024


@pytest.fixture
async def small_outbox_server(tmp_path: Path) -> AsyncIterator[Harness]:
    """Like `server`, with a 256 KiB cap on each connection's unsent bytes."""
    async with running_harness(tmp_path / "data", max_unsent_bytes=MAX_UNSENT) as harness:
        yield harness


def large_event(n: int) -> dict[str, Any]:
    """An ACCOUNT_UPDATE of about 6 KB whose `E` numbers it."""
    event = event_fixture("account_update_doc")
    event["E"] = START_MS + n
    event["a"]["P"] = event["a"]["P"] * 14
    return event


async def read_all(ws: ClientConnection, count: int, into: list[int]) -> None:
    for _ in range(count):
        into.append(json.loads(await recv_text(ws))["E"] - START_MS)


async def test_slow_consumer_is_cut_off_while_a_healthy_one_gets_everything(
    small_outbox_server: Harness,
) -> None:
    server = small_outbox_server
    account, key = await new_account(server)
    slow = await RawClient.connect(server, f"/ws/{key}", receive_buffer=4096)
    (slow_session,) = server.server.streams
    batch, max_batches = 16, 200  # ~100 KB per publish, ~20 MB at most
    received: list[int] = []
    async with open_ws(server, f"/ws/{key}") as healthy:
        published = 0
        while slow_session.conn is not None and slow_session.conn.open_:
            assert published < batch * max_batches, "the slow consumer was never cut off"
            await server.publish(account, [large_event(published + i) for i in range(batch)])
            published += batch
            await read_all(healthy, batch, received)
        assert slow_session.conn is not None
        assert slow_session.conn.close_code == 1008
        assert server.server.flusher.slow_consumers == 1  # /metrics reads this count
        # The healthy connection of the same account keeps receiving, in order.
        await server.publish(account, [large_event(published + i) for i in range(batch)])
        published += batch
        await read_all(healthy, batch, received)
        assert received == list(range(published))
        await assert_quiet(healthy)

    code, reason, skipped = await slow.read_close()
    assert code == 1008
    assert "slow consumer" in reason
    assert 0 < skipped < published
    await slow.aclose()
    await wait_until_gone(server, slow_session)


async def wait_until_gone(server: Harness, session: StreamSession) -> None:
    for _ in range(100):
        if session not in server.server.streams:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server kept the closed connection")


async def test_closed_client_does_not_disturb_delivery(server: Harness) -> None:
    account, key = await new_account(server)
    async with open_ws(server, f"/ws/{key}") as stays:
        async with open_ws(server, f"/ws/{key}") as leaves:
            await server.publish(account, numbered(0))
            assert await recv_json(leaves) == numbered(0)
        with pytest.raises(ConnectionClosed):
            await leaves.recv()
        await server.publish(account, numbered(1))
        assert await recv_json(stays) == numbered(0)
        assert await recv_json(stays) == numbered(1)
