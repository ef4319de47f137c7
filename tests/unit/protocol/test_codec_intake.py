"""The admin intake's one path: every golden event goes through it unchanged, each rule is
named by its path, and the integer ranges of `events.py` hold (issue 9 item 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from userstream.exceptions import EventValidationError
from userstream.protocol.codec import encode_event, parse_admin_encoded, parse_admin_events

FIXTURES = Path(__file__).parents[2] / "fixtures" / "events"
PUBLISHABLE = sorted(
    path for path in FIXTURES.glob("*.json") if not path.name.startswith("listen_key_expired")
)
INT64_MAX = 2**63 - 1


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _order() -> dict[str, Any]:
    return _load(FIXTURES / "order_trade_update_real_2026.json")


def _error(body: object) -> EventValidationError:
    with pytest.raises(EventValidationError) as info:
        parse_admin_encoded(json.dumps(body).encode(), now_ms=1)
    return info.value


@pytest.mark.parametrize("path", PUBLISHABLE, ids=lambda p: p.stem)
def test_every_golden_event_is_accepted_as_sent(path: Path) -> None:
    (event,) = parse_admin_events(path.read_bytes(), now_ms=1)
    assert json.loads(encode_event(event)) == _load(path)
    (encoded,) = parse_admin_encoded(path.read_bytes(), now_ms=1)
    assert json.loads(encoded.raw) == _load(path)


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda o: o["o"].update(q=1), "o.q", "decimal string"),  # amount as a JSON number
        (lambda o: o["o"].update(q="1e-3"), "o.q", "plain notation"),  # exponent notation
        (lambda o: o["o"].update(q="1,5"), "o.q", "plain notation"),  # the separator inside
        (lambda o: o["o"].update(AP="nan"), "o.AP", "plain notation"),  # an optional amount
        (lambda o: o["o"].update(N=None), "o.N", "null"),  # null for an optional field
        (lambda o: o["o"].update(zz="x"), "o.zz", "unknown field"),
        (lambda o: o["o"].pop("X"), "o.X", "missing required field"),
        (lambda o: o.update(E="1"), "E", "int"),  # time as a string
    ],
)
def test_each_rule_is_named_by_its_path(mutate: Any, field: str, reason: str) -> None:
    event = _order()
    mutate(event)
    error = _error([_order(), event])
    assert error.path == f"[1].{field}"
    assert reason in error.reason


def test_times_are_filled() -> None:
    body = b'{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"BTCUSDT","l":25}}'
    (event,) = parse_admin_encoded(body, now_ms=42)
    assert event.raw == b'{"e":"ACCOUNT_CONFIG_UPDATE","E":42,"T":42,"ac":{"s":"BTCUSDT","l":25}}'


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (("T",), 2**64 + 1),
        (("E",), -5),
        (("E",), 10**30),
        (("E",), INT64_MAX + 1),
        (("o", "T"), -1),  # trade time
        (("o", "gtd"), 2**64),
        (("o", "i"), -1),  # order id
        (("o", "t"), -1),  # trade id
        (("o", "si"), -3),  # strategy id
        (("o", "ss"), 2**63),  # not a time or id: any int64, and no more
    ],
)
def test_times_and_ids_are_non_negative_int64(field: tuple[str, ...], value: int) -> None:
    event = _order()
    target = event
    for step in field[:-1]:
        target = target[step]
    target[field[-1]] = value
    error = _error(event)
    assert error.path == ".".join(field)
    assert str(value) in error.reason
    assert "integer from" in error.reason


def test_int64_edges_are_accepted() -> None:
    event = _order()
    event["E"] = INT64_MAX
    event["o"]["i"] = INT64_MAX
    event["o"]["t"] = 0
    event["o"]["ss"] = -(2**63)
    (encoded,) = parse_admin_encoded(json.dumps(event).encode(), now_ms=1)
    assert json.loads(encoded.raw) == event


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            {
                "e": "STRATEGY_UPDATE",
                "su": {"si": -1, "st": "GRID", "ss": "NEW", "s": "BTCUSDT", "ut": 1, "c": 8007},
            },
            "su.si",
        ),
        (
            {"e": "CONDITIONAL_ORDER_TRIGGER_REJECT", "or": {"s": "BTCUSDT", "i": -2, "r": "x"}},
            "or.i",
        ),
        (
            {
                "e": "STRATEGY_UPDATE",
                "su": {"si": 1, "st": "GRID", "ss": "NEW", "s": "BTCUSDT", "ut": -1, "c": 8007},
            },
            "su.ut",
        ),
    ],
)
def test_nested_ids_and_times_are_checked(body: dict[str, Any], path: str) -> None:
    assert _error(body).path == path


def test_leading_zeros_anywhere_in_a_batch_are_rewritten_only_where_sent() -> None:
    first, second = _order(), _order()
    second["o"]["q"] = "0012.50"
    encoded = parse_admin_encoded(json.dumps([first, second]).encode(), now_ms=1)
    assert encoded[0].raw == encode_event(parse_admin_events(json.dumps(first).encode(), 1)[0])
    assert b'"q":"12.50"' in encoded[1].raw


@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        (b'[{"e":null}]', "[0].e", "expected a string"),
        (b"null", "", "array"),
        (b'{"e":"ORDER_TRADE_UPDATE","o":null}', "o", "null"),
        (b'[{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"X","l":1}},[]]', "[1]", "object"),
        (b'{"e":"MARGIN_CALL","p":[{"pa":1}]}', "p[0].pa", "decimal string"),
        (b'{"e":"ACCOUNT_UPDATE","a":{"B":[],"P":[],"m":"X"},"T":true}', "T", "bool"),
        (b'{"zz":' + b"[" * 100_000 + b"]" * 100_000 + b',"e":"MARGIN_CALL"}', "", "nested"),
        (b'[{"e":"listenKeyExpired","E":1,"listenKey":"k"}]', "[0].e", "server sends it"),
    ],
)
def test_odd_bodies_get_a_named_error(body: bytes, path: str, reason: str) -> None:
    with pytest.raises(EventValidationError) as info:
        parse_admin_encoded(body, now_ms=1)
    assert info.value.path == path
    assert reason in info.value.reason


@pytest.mark.parametrize(
    "amount",
    ["true", "null", "[1]", "1],[2", "{}", '"1"', "1\t", "\n1", "1\r", "", "1,", ",1", "1,2"],
)
def test_amounts_that_are_other_json_are_refused(amount: str) -> None:
    """The whole-body amount check decodes the amounts as JSON numbers: other JSON values,
    whitespace and separators inside an amount must not pass as numbers."""
    event = _order()
    event["o"]["q"] = amount
    error = _error([_order(), event])
    assert error.path == "[1].o.q"
    assert "plain notation" in error.reason
