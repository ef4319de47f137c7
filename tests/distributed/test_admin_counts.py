"""What the admin API and `/admin/v1/stats` count in distributed mode (issue 9 item 7, issue
15 item 14): a publish answers `"connections": null` (each gateway delivers to its own), and
a node counts as accepted every producer's events for the accounts it follows."""

from __future__ import annotations

from pathlib import Path

import msgspec

from tests.distributed.conftest import Gateways, numbered, receive_numbered
from tests.nats_fixtures import NatsServer
from userstream import Publisher


async def test_publish_answer_and_stats_count_every_producer(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with Gateways(nats_server.url, tmp_path) as gateways:
        a, b = gateways.start(2)
        account = await a.create_account()
        key = await a.listen_key(account)
        async with b.stream(key) as ws:
            await b.wait_following(1)
            path = f"accounts/{account.id}/events"
            assert await a.admin("POST", path, [numbered(1)]) == (
                200,
                {"accepted": 1, "connections": None},
            )
            async with Publisher.connect(nats_server.url) as publisher:
                body = b"[" + b",".join(_json(numbered(n)) for n in (2, 3)) + b"]"
                assert await publisher.publish_json(account.id, body) == 2
            assert await receive_numbered(ws, 3) == [1, 2, 3]
        events = (await b.stats())["events"]
        assert events == {"accepted": 3, "delivered": 3}


def _json(event: object) -> bytes:
    return msgspec.json.encode(event)
