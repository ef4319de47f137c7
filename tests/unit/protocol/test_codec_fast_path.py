"""The admin path's C fast lane accepts exactly what the field-by-field checker accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from userstream.exceptions import EventValidationError
from userstream.protocol.codec import (
    _parse_admin_batch_fast,
    encode_event,
    parse_admin_events,
)

FIXTURES = sorted(
    path
    for path in (Path(__file__).parents[2] / "fixtures" / "events").glob("*.json")
    if not path.name.startswith("listen_key_expired")
)


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_golden_event_takes_the_fast_lane(path: Path) -> None:
    events = _parse_admin_batch_fast([_load(path)], now_ms=1)
    assert events is not None
    assert json.loads(encode_event(events[0])) == _load(path)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o["o"].update(q=1), "o.q"),  # amount as a JSON number
        (lambda o: o["o"].update(q="1e-3"), "o.q"),  # exponent notation
        (lambda o: o["o"].update(N=None), "o.N"),  # null for an optional field
        (lambda o: o["o"].update(zz="x"), "o.zz"),  # unknown field
        (lambda o: o["o"].pop("X"), "o.X"),  # missing field
        (lambda o: o.update(E="1"), "E"),  # time as a string
    ],
)
def test_rejections_fall_back_to_the_precise_checker(mutate: Any, field: str) -> None:
    event = _load(Path(__file__).parents[2] / "fixtures/events/order_trade_update_real_2026.json")
    mutate(event)
    assert _parse_admin_batch_fast([json.loads(json.dumps(event))], now_ms=1) is None
    with pytest.raises(EventValidationError) as info:
        parse_admin_events(json.dumps([event]).encode(), now_ms=1)
    assert info.value.path == f"[0].{field}"


def test_times_are_filled_on_the_fast_lane() -> None:
    body = b'{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"BTCUSDT","l":25}}'
    (event,) = parse_admin_events(body, now_ms=42)
    assert json.loads(encode_event(event)) == {
        "e": "ACCOUNT_CONFIG_UPDATE",
        "E": 42,
        "T": 42,
        "ac": {"s": "BTCUSDT", "l": 25},
    }
