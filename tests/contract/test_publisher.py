"""`Publisher` and `userstream publish`: validated like the admin API, deduplicated by
message id, delivered to a following node over a real nats-server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from tests.conftest import event_fixture
from tests.contract.test_contract import eventually
from tests.nats_fixtures import NatsServer
from userstream import Publisher
from userstream.bus.memory import MemoryEventBus
from userstream.bus.nats import open_backends
from userstream.exceptions import EventValidationError
from userstream.protocol.codec import Deliverable, to_event
from userstream.protocol.events import OrderTradeUpdate

pytestmark = pytest.mark.timeout(30)


def numbered(n: int) -> dict[str, Any]:
    body = event_fixture("order_trade_update_doc")
    body["o"]["i"] = n
    return body


def ids(got: Sequence[Sequence[Deliverable]]) -> list[int]:
    events = [to_event(e) for b in got for e in b]
    return [e.order.order_id for e in events if isinstance(e, OrderTradeUpdate)]


async def test_publisher_validates_like_the_admin_api() -> None:
    bus = MemoryEventBus()
    got: list[Sequence[Deliverable]] = []
    bus.subscribe(lambda account_id, events: got.append(events))
    publisher = Publisher(bus)
    assert await publisher.publish_json(1, json.dumps([numbered(1), numbered(2)])) == 2
    bad = numbered(3)
    bad["o"]["q"] = 1.5  # amounts are JSON strings
    with pytest.raises(EventValidationError) as caught:
        await publisher.publish_json(1, json.dumps([numbered(3), bad]))
    assert caught.value.path == "[1].o.q"
    assert ids(got) == [1, 2]


async def test_publisher_over_nats_dedupes_a_retry(nats_server: NatsServer) -> None:
    node = await open_backends(nats_server.url, name="node")
    try:
        got: list[Sequence[Deliverable]] = []
        node.bus.subscribe(lambda account_id, events: got.append(events))
        await node.bus.follow(12)
        async with Publisher.connect(nats_server.url) as publisher:
            await publisher.publish_json(12, json.dumps(numbered(1)), msg_id="batch-1")
            await publisher.publish_json(12, json.dumps(numbered(1)), msg_id="batch-1")
            await publisher.publish_json(12, json.dumps(numbered(2)))
        await eventually(lambda: ids(got)[-1:] == [2])
        await asyncio.sleep(0.1)
        assert ids(got) == [1, 2]
    finally:
        await node.aclose()


async def test_publish_command_reads_json_lines(nats_server: NatsServer) -> None:
    node = await open_backends(nats_server.url, name="node")
    try:
        got: list[Sequence[Deliverable]] = []
        node.bus.subscribe(lambda account_id, events: got.append(events))
        await node.bus.follow(13)
        lines = "".join(json.dumps(numbered(n)) + "\n" for n in range(1, 6))
        command = [sys.executable, "-m", "userstream.cli", "publish", "--bus", nats_server.url]
        done = await asyncio.to_thread(
            subprocess.run,
            [*command, "--account", "13", "-"],
            input=lines,
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"accepted": 5, "batches": 5}
        await eventually(lambda: len(ids(got)) == 5)
        assert ids(got) == [1, 2, 3, 4, 5]
        bad = await asyncio.to_thread(
            subprocess.run,
            [*command, "--account", "13", "-"],
            input=json.dumps(numbered(6)) + "\n" + '{"e":"ORDER_TRADE_UPDATE","zz":1}\n',
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert bad.returncode == 2
        assert json.loads(bad.stderr)["line"] == 2
    finally:
        await node.aclose()
