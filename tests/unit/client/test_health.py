"""Health snapshots, gap markers and the bounded hand-over buffer."""

from __future__ import annotations

from decimal import Decimal

from userstream.client.buffer import EventBuffer, Received
from userstream.client.health import (
    ConnectionState,
    GapReason,
    HealthTracker,
    StreamGap,
)
from userstream.protocol.events import MarginCall


def event(e: int) -> MarginCall:
    return MarginCall(event_time=e, cross_wallet_balance=Decimal("1"), positions=())


def received(e: int) -> Received:
    return Received(event(e), f'{{"n":{e}}}'.encode(), e)


def test_snapshot_ages_move_with_now() -> None:
    tracker = HealthTracker()
    tracker.key_issued(1000)
    tracker.state = ConnectionState.CONNECTED
    tracker.connected_ms = 1500
    tracker.keepalive(2000, None)
    first = tracker.snapshot(3000)
    later = tracker.snapshot(9000)
    assert (first.key_age_ms, first.connection_age_ms) == (2000, 1500)
    assert (later.key_age_ms, later.connection_age_ms) == (8000, 7500)
    assert later.last_keepalive_ok is True
    assert later.keys_issued == 1


def test_no_connection_age_while_disconnected() -> None:
    tracker = HealthTracker(state=ConnectionState.RECONNECTING, connected_ms=5)
    assert tracker.snapshot(10).connection_age_ms is None


def test_failed_keepalive_is_recorded() -> None:
    tracker = HealthTracker()
    tracker.keepalive(5, "timeout")
    snap = tracker.snapshot(6)
    assert (snap.last_keepalive_ok, snap.last_keepalive_error) == (False, "timeout")


def test_merged_gap_keeps_the_earliest_start() -> None:
    a = StreamGap(100, GapReason.DISCONNECTED)
    b = StreamGap(50, GapReason.OVERFLOW)
    assert a.merged(b).since_ms == 50
    assert b.merged(a) == b


def test_drop_oldest_puts_one_gap_in_front() -> None:
    buffer = EventBuffer(2, "drop_oldest")
    assert buffer.offer_event(received(1)) is None
    assert buffer.offer_event(received(2)) is None
    gap = buffer.offer_event(received(3))
    assert gap == StreamGap(1, GapReason.OVERFLOW, "consumer too slow")
    assert buffer.offer_event(received(4)) is None  # folded into the same marker
    assert buffer.events == 2
    assert buffer.dropped == 2
    items = [buffer.take(), buffer.take(), buffer.take(), buffer.take()]
    assert items == [gap, received(3), received(4), None]


def test_block_policy_reports_no_room_and_gaps_do_not_count() -> None:
    buffer = EventBuffer(1, "block")
    buffer.offer_event(received(1))
    assert not buffer.has_room()
    assert buffer.offer_gap(StreamGap(5, GapReason.DISCONNECTED))
    assert not buffer.offer_gap(StreamGap(3, GapReason.KEY_EXPIRED))  # merged
    assert buffer.take() == received(1)
    assert buffer.has_room()
    assert buffer.take() == StreamGap(3, GapReason.KEY_EXPIRED)
