"""`bench.run`'s nats-server row of the fan-out table: a tiny run of `bench.nats_fanout`
delivers every event to every connection, and the table shows it."""

from __future__ import annotations

from bench.common import encoded_events
from bench.fanout import Shape
from bench.nats_fanout import NAME, throughput
from bench.run import ShapeResults, shape_table


async def test_tiny_nats_fanout_delivers_every_event_and_renders_its_row() -> None:
    shape = Shape(3, 2)
    result, command = await throughput(shape, encoded_events(50), 50, 10)
    assert result.server == NAME
    assert result.delivered == 50 * shape.connections
    assert result.lost == 0
    assert result.per_second > 0
    assert command.startswith("nats-server -c ")
    rows = ShapeResults(shape, 50, 10, 10)
    rows.throughput[NAME] = result
    table = "\n".join(shape_table(rows))
    assert f"| {NAME} | 1 (pipelined PUB) | " in table
