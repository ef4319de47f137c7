"""`parse_admin_encoded`: the admin path's rules and errors, with the bytes `encode_event`
would write for the equivalent model (so the intake's bytes can go to the sockets as is)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from userstream.exceptions import EventValidationError
from userstream.protocol.codec import (
    EncodedEvent,
    decode_event,
    deliverable_raw,
    encode_event,
    encode_events,
    event_name,
    parse_admin_encoded,
    parse_admin_events,
    to_encoded,
    to_event,
)
from userstream.simulator import Simulator

FIXTURES = Path(__file__).parents[2] / "fixtures" / "events"
PUBLISHABLE = sorted(p.name for p in FIXTURES.glob("*.json") if "listen_key" not in p.name)
NOW = 1_800_000_000_000


def both(body: bytes) -> tuple[object, object]:
    """What each intake makes of `body`: the bytes and names, or the error's path and text."""
    results: list[object] = []
    for parse in (parse_admin_encoded, parse_admin_events):
        try:
            items = parse(body, NOW)
        except EventValidationError as exc:
            results.append(("error", type(exc), exc.path, str(exc)))
        else:
            results.append([(to_encoded(e).name, to_encoded(e).raw) for e in items])
    return results[0], results[1]


@pytest.mark.parametrize("name", PUBLISHABLE)
def test_golden_fixture_bytes_equal_encode_event_of_the_model(name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    encoded = parse_admin_encoded(body, NOW)
    models = parse_admin_events(body, NOW)
    assert [e.raw for e in encoded] == [encode_event(m) for m in models]
    assert [e.name for e in encoded] == [event_name(m) for m in models]


def test_simulator_output_round_trips_byte_for_byte() -> None:
    sim = Simulator((1, 2, 3, 4), seed=11)
    seen: set[str] = set()
    for step in range(3_000):
        events = [event for _, event in sim.step(1_767_225_600_000 + step)]
        if not events:
            continue
        sent = [encode_event(event) for event in events]
        encoded = parse_admin_encoded(b"[" + b",".join(sent) + b"]", NOW)
        assert [e.raw for e in encoded] == sent
        assert [e.name for e in encoded] == [event_name(event) for event in events]
        seen.update(e.name for e in encoded)
    assert len(seen) >= 7  # most event types went through


def test_times_are_filled_like_the_model_path() -> None:
    order = json.loads((FIXTURES / "order_trade_update_real_2026.json").read_bytes())
    del order["E"], order["T"]
    config = {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "BTCUSDT", "l": 5}}
    margin = json.loads((FIXTURES / "margin_call.json").read_bytes())
    del margin["E"]
    encoded, models = both(json.dumps([order, config, margin]).encode())
    assert encoded == models
    assert (
        b'"T":%d,"E":%d' % (NOW, NOW) in parse_admin_encoded(json.dumps(order).encode(), NOW)[0].raw
    )


def test_amounts_with_leading_zeros_are_accepted_and_written_as_the_model_writes_them() -> None:
    order = json.loads((FIXTURES / "order_trade_update_real_2026.json").read_bytes())
    order["o"]["q"] = "007.50"
    order["o"]["p"] = "0.00000000"
    (event,) = parse_admin_encoded(json.dumps(order).encode(), NOW)
    assert event.raw == encode_event(parse_admin_events(json.dumps(order).encode(), NOW)[0])
    assert b'"q":"7.50"' in event.raw
    assert b'"p":"0.00000000"' in event.raw


# What msgspec's lax number parser accepts beyond plain notation (exponents, nan/inf spelled
# any way, huge values), what it refuses (and so does plain notation), and plain notation at
# its edges. The encoded lane must agree with the model path on every one, wherever it sits.
TRICKY_AMOUNTS = [
    *("1e5", "1E5", "1.5e-8", "1.5E+3", "0e0", "-1e-0", "1e400"),
    *("nan", "NaN", "-nan", "inf", "-Inf", "INF", "Infinity", "-infinity", "iNfInItY"),
    *("1.", ".5", "+1", " 1", "1 ", "1_000", "0x10", "1,5", "--1", "-", "", "1.2.3", "٣", "１"),
    *("-0", "-0.0", "0", "0.00000000", "123456789012345678901234567890.123456789", "1" * 400),
    *("007.5", "-01", "00", "0.", "12.50", "-12.50", "\u0000", "\x00"),
]
AMOUNT_PLACES = [
    ("order_trade_update_real_2026.json", ("o", "q")),  # required, in a struct
    ("order_trade_update_real_2026.json", ("o", "AP")),  # optional
    ("account_update_real_2026.json", ("a", "B", 0, "wb")),  # in a tuple of structs
    ("trade_lite_real_2026.json", ("q",)),  # top level
]


@pytest.mark.parametrize(("name", "path"), AMOUNT_PLACES)
def test_tricky_amounts_get_the_same_answer_from_both_intakes(
    name: str, path: tuple[Any, ...]
) -> None:
    obj = json.loads((FIXTURES / name).read_bytes())
    for amount in TRICKY_AMOUNTS:
        body = json.dumps(_apply(obj, path, amount)).encode()
        encoded, models = both(body)
        assert encoded == models, amount
        if amount in ("12.50", "-0", "0.00000000"):
            assert isinstance(encoded, list), amount  # accepted, as sent
            assert f'"{amount}"'.encode() in encoded[0][1]


def test_escaped_amounts_get_the_same_answer_from_both_intakes() -> None:
    """An escape can spell a digit or an exponent the raw bytes do not show."""
    raw = (FIXTURES / "order_trade_update_real_2026.json").read_bytes()
    assert b'"q":"' in raw
    start = raw.index(b'"q":"') + len(b'"q":"')
    end = raw.index(b'"', start)
    for spelled in (rb"\u0031e5", rb"1\u00655", rb"\u0031", rb"\u0000", rb"1\/2"):
        body = raw[:start] + spelled + raw[end:]
        encoded, models = both(body)
        assert encoded == models, spelled


def _mutations(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, replacement) pairs: every value nulled, stringified, numbered; `...` deletes."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _mutations(value, (*path, key))
        yield (*path, "zz"), 1  # an unknown field
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from _mutations(value, (*path, index))
    if path:
        yield path, None
        yield path, ...
        if isinstance(obj, str):
            yield path, 1.5
            yield path, "1E-8"
            yield path, "01"
            yield path, "-0"
            yield path, "x"
        elif isinstance(obj, bool):
            yield path, 1
        elif isinstance(obj, int):
            yield path, str(obj)
            yield path, float(obj)
            yield path, True


def _apply(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(obj)
    target = out
    for step in path[:-1]:
        target = target[step]
    if value is ...:
        if isinstance(target, dict):
            target.pop(path[-1], None)
        else:
            del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


@pytest.mark.parametrize("name", PUBLISHABLE)
def test_every_mutation_gets_the_same_answer_from_both_intakes(name: str) -> None:
    obj = json.loads((FIXTURES / name).read_bytes())
    other = json.loads((FIXTURES / "margin_call.json").read_bytes())
    for path, value in _mutations(obj):
        mutated = _apply(obj, path, value)
        for body in (mutated, [other, mutated]):
            encoded, models = both(json.dumps(body).encode())
            assert encoded == models, (path, value)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"{}",
        b"[1]",
        b'"x"',
        b"[" * 10_000,
        b'{"e":"listenKeyExpired","E":1,"listenKey":"k"}',
        b'{"e":"NEW_THING","E":1}',
        b'{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"BTCUSDT","l":5},"ai":{"j":true}}',
        b'{"e":"ACCOUNT_CONFIG_UPDATE"}',
        b'{"e":"ACCOUNT_CONFIG_UPDATE","e":"MARGIN_CALL","ac":{"s":"BTCUSDT","l":5}}',
    ],
)
def test_refused_bodies_get_the_model_paths_error(body: bytes) -> None:
    encoded, models = both(body)
    assert encoded == models
    assert isinstance(encoded, tuple)
    assert encoded[0] == "error"


def test_deliverable_helpers() -> None:
    body = (FIXTURES / "trade_lite_real_2026.json").read_bytes()
    (encoded,) = parse_admin_encoded(body, NOW)
    (model,) = parse_admin_events(body, NOW)
    assert isinstance(encoded, EncodedEvent)
    assert to_event(encoded) == model == decode_event(encoded.raw)
    assert to_event(model) is model
    assert deliverable_raw(model) == deliverable_raw(encoded) == encoded.raw
    assert to_encoded(model) == to_encoded(encoded) == encoded
    assert encoded.name == "TRADE_LITE"


def test_encode_events_is_to_encoded_of_each() -> None:
    models = [decode_event((FIXTURES / name).read_bytes()) for name in PUBLISHABLE]
    assert encode_events(models) == [to_encoded(model) for model in models]
    assert encode_events([]) == []
