"""Encode and decode user-data events; build the combined-stream envelope.

Three paths, all sans-I/O:

* Server hot path: `encode_event` once per event, then `combined_envelope` wraps those bytes
  for `/stream`-style connections without re-encoding (spec §4.3).
* Client path: `decode_event` tolerates fields and enum values Binance adds later.
* Server inbound admin path (`POST /admin/v1/accounts/{id}/events`): `parse_admin_encoded`
  validates the body in one typed pass and returns `EncodedEvent`s, the bytes every
  connection gets, so an accepted event is never decoded or encoded again on its way to the
  sockets. `parse_admin_events` applies the same rules and returns the models. Both are
  strict and report the offending field as a path such as `o.q` or `[2].a.B[0].wb`.

Encoders and decoders are built once, at import.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Final, TypeAlias, Union

import msgspec
from msgspec import inspect as msgspec_inspect

from userstream.exceptions import EventValidationError
from userstream.protocol.events import (
    EVENT_TYPES,
    Event,
    ListenKeyExpired,
)

__all__ = [
    "Deliverable",
    "EncodedEvent",
    "UnknownEventError",
    "combined_envelope",
    "decode_event",
    "deliverable_raw",
    "encode_event",
    "event_name",
    "has_transaction_time",
    "make_listen_key_expired",
    "parse_admin_encoded",
    "parse_admin_events",
    "to_encoded",
    "to_event",
]


class EncodedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event already validated and encoded: `raw` is the exact JSON Binance sends (keys in
    Binance's order, amounts in plain notation), byte for byte what `encode_event` returns for
    the equivalent model, and `name` its `e`.

    What the admin intake hands to the bus and the bus to the gateway, so the bytes a producer
    sent are checked once and then only copied (docs/benchmarks.md, "where the time goes").
    """

    name: str
    raw: bytes


Deliverable: TypeAlias = Event | EncodedEvent
"""What the bus carries and the gateway delivers: a model (server-made `listenKeyExpired`,
the simulator's events), encoded on delivery, or an `EncodedEvent`, delivered as is."""


class UnknownEventError(EventValidationError):
    """The `e` of an event names no event this version knows (path `e`).

    A client should skip such an event: Binance adds event types from time to time.
    """

    def __init__(self, event_type: object) -> None:
        super().__init__("e", f"unknown event type {event_type!r}")
        self.event_type = event_type


_encoder: Final = msgspec.json.Encoder()
_event_decoder: Final[msgspec.json.Decoder[Event]] = msgspec.json.Decoder(Event)
_any_decoder: Final = msgspec.json.Decoder()

_EVENT_NAMES: Final[dict[type[Event], str]] = {cls: name for name, cls in EVENT_TYPES.items()}


def _struct_info(cls: type[Event]) -> msgspec_inspect.StructType:
    info = msgspec_inspect.type_info(cls)
    if not isinstance(info, msgspec_inspect.StructType):
        raise TypeError(f"{cls!r} is not a msgspec Struct")
    return info


_EVENT_INFO: Final = {name: _struct_info(cls) for name, cls in EVENT_TYPES.items()}
_WITH_TRANSACTION_TIME: Final = frozenset(
    name for name, info in _EVENT_INFO.items() if any(f.encode_name == "T" for f in info.fields)
)

# Binance writes amounts in plain notation: optional minus, digits, optional fraction.
_PLAIN_DECIMAL: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# msgspec appends " - at `$.o.q`" to the errors it raises.
_MSGSPEC_LOCATION: Final = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MSGSPEC_MISSING: Final = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


# The admin path's fast lane. For every model we derive, once, a "wire schema" Struct with the
# same keys in which amounts are `str` constrained to plain notation, optional fields may be
# absent but never null, and unknown keys are refused. Validating a batch against it runs in
# msgspec's C code (about 4x faster than walking the fields in Python); only when it fails do
# we walk the fields to name the offence precisely. Nothing here changes what is accepted.
_PlainDecimalStr = Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]+(?:\.[0-9]+)?$")]


def _wire_type(info: msgspec_inspect.Type, lane: bool) -> Any:
    if isinstance(info, msgspec_inspect.DecimalType):
        return str if lane else _PlainDecimalStr
    if isinstance(info, msgspec_inspect.StructType):
        return _wire_struct(info, fill_times=False, lane=lane)
    if isinstance(info, msgspec_inspect.VarTupleType):
        return tuple[_wire_type(info.item_type, lane), ...]  # type: ignore[misc]
    if isinstance(info, msgspec_inspect.UnionType):
        return _wire_type(_non_null(info), lane)
    if isinstance(info, msgspec_inspect.IntType):
        return int
    if isinstance(info, msgspec_inspect.BoolType):
        return bool
    if isinstance(info, msgspec_inspect.StrType):
        return str
    raise TypeError(f"no wire schema for {info!r}")


def _non_null(info: msgspec_inspect.Type) -> msgspec_inspect.Type:
    """`X` of an optional `X | None`; any other type as it is."""
    if isinstance(info, msgspec_inspect.UnionType):
        (info,) = [t for t in info.types if not isinstance(t, msgspec_inspect.NoneType)]
    return info


def _wire_struct(info: msgspec_inspect.StructType, fill_times: bool, lane: bool = False) -> Any:
    fields: list[tuple[str, Any, Any]] = []
    for field in info.fields:
        # Absent optionals (and E/T, which the server fills) default to UNSET, not None, so
        # an explicit null is still refused. In the encoded lane an absent optional amount
        # is `_ABSENT_AMOUNT` instead, so that every amount attribute holds a `str`
        # (`_amounts_canonical`); `omit_defaults` leaves it out of the JSON all the same.
        optional = not field.required or (fill_times and field.encode_name in ("E", "T"))
        kind = _wire_type(field.type, lane)
        if not optional:
            fields.append((field.name, kind, msgspec.field(name=field.encode_name)))
        elif lane and isinstance(_non_null(field.type), msgspec_inspect.DecimalType):
            absent = msgspec.field(name=field.encode_name, default=_ABSENT_AMOUNT)
            fields.append((field.name, kind, absent))
        else:
            unset = msgspec.field(name=field.encode_name, default=msgspec.UNSET)
            fields.append((field.name, kind | msgspec.UnsetType, unset))
    return msgspec.defstruct(
        f"Wire{info.cls.__name__}",
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        omit_defaults=lane,
        tag_field=info.tag_field,
        tag=info.tag,
        gc=False,  # like the models: scalars, tuples and structs only, so no cycles
    )


_WIRE_EVENTS: Final = tuple(
    _wire_struct(info, fill_times=True)
    for name, info in _EVENT_INFO.items()
    if name != "listenKeyExpired"
)
# A union of classes generated at run time: built through the typing API, not written out.
_WIRE_BATCH: Final[Any] = list.__class_getitem__(Union.__getitem__(_WIRE_EVENTS))
_EVENT_BATCH: Final[Any] = list[Event]

# The encoded intake decodes the body straight into the wire structs (one pass in C, no dicts)
# and encodes each back: a wire struct encodes with the model's keys in the model's order,
# absent optionals omitted like the model's `None`s (every optional defaults to `None` and
# models omit defaults), and amounts exactly as sent. Only one spelling differs from
# `encode_event`: `Decimal` drops leading zeros ("007.5" -> "7.5"), so this lane takes amounts
# in canonical plain notation only, `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, and leaves the rest to the
# model path, which accepts them.
#
# The lane's structs take amounts as plain `str`; `_amounts_canonical` then checks all the
# amounts of a body at once. A pattern on each amount field cost msgspec ~180 ns a field
# (3.7 of the lane's 4.7 µs per event when it did that); reading the amounts out of the
# decoded structs and checking them together costs ~0.9 µs an event (`python -m bench.intake`
# times the whole intake). The check rests on
# msgspec's lax mode, which parses a string as a number with the JSON number grammar
# `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?` or as nan/inf/infinity in any case
# (msgspec `_core.c`, `parse_number_inline`, `parse_number_nonfinite`): refuse every "e"/"E"
# (exponents) and "n"/"N" (every spelling of nan and inf has one), and what is left is
# exactly canonical.
_lax_amounts: Final = msgspec.json.Decoder(list[float], strict=False)
# An absent optional amount in a lane struct. Valid JSON cannot spell a NUL without an escape,
# and the lane refuses bodies with escapes, so no amount a producer sends can equal it.
_ABSENT_AMOUNT: Final = "\x00"

_AmountReader: TypeAlias = Callable[[Any, list[str]], None]


def _carries_amounts(info: msgspec_inspect.Type) -> bool:
    if isinstance(info, msgspec_inspect.DecimalType):
        return True
    if isinstance(info, msgspec_inspect.StructType):
        return any(_carries_amounts(field.type) for field in info.fields)
    if isinstance(info, msgspec_inspect.VarTupleType):
        return _carries_amounts(info.item_type)
    if isinstance(info, msgspec_inspect.UnionType):
        return any(_carries_amounts(t) for t in info.types)
    return False


def _amount_reader(info: msgspec_inspect.StructType) -> _AmountReader:
    """A function that appends the amounts of a lane struct shaped like `info` to a list.

    Amounts reached through structs that are always there are read by one `attrgetter` call
    with dotted paths ("order.q"); tuples of structs, and structs that may be absent, get a
    reader of their own.
    """
    paths: list[str] = []
    parts: list[tuple[Callable[[Any], Any], _AmountReader, bool]] = []  # (get, read, many)

    def walk(info: msgspec_inspect.StructType, prefix: str) -> None:
        for field in info.fields:
            kind, path = _non_null(field.type), prefix + field.name
            if not _carries_amounts(kind):
                continue
            if isinstance(kind, msgspec_inspect.DecimalType):
                paths.append(path)
            elif isinstance(kind, msgspec_inspect.StructType):
                if field.required:
                    walk(kind, path + ".")
                else:
                    parts.append((operator.attrgetter(path), _amount_reader(kind), False))
            elif isinstance(kind, msgspec_inspect.VarTupleType) and isinstance(
                kind.item_type, msgspec_inspect.StructType
            ):
                parts.append((operator.attrgetter(path), _amount_reader(kind.item_type), True))
            else:
                raise TypeError(f"{info.cls.__name__}.{field.name}: no amount reader for {kind!r}")

    walk(info, "")
    own: Callable[[Any], Any] | None = operator.attrgetter(*paths) if paths else None
    single = len(paths) == 1
    unset = msgspec.UNSET

    def read(obj: Any, out: list[str]) -> None:
        if own is not None:
            if single:
                out.append(own(obj))
            else:
                out += own(obj)
        for get, reader, many in parts:
            value = get(obj)
            if value is unset:
                continue
            if many:
                for item in value:
                    reader(item, out)
            else:
                reader(value, out)

    parents = {path.rpartition(".")[0] for path in paths}
    if not parts and len(paths) > 1 and len(parents) == 1:
        # All its amounts in one place: its own fields (a balance, a position), or those of
        # one struct inside it (ORDER_TRADE_UPDATE's `o`). Dotted paths would look the
        # inner struct up once per amount; this looks it up once.
        (parent,) = parents
        leaves = operator.attrgetter(*(path.rpartition(".")[2] for path in paths))
        inner = operator.attrgetter(parent) if parent else None

        def read_one_place(obj: Any, out: list[str]) -> None:
            out += leaves(obj if inner is None else inner(obj))

        return read_one_place
    return read


def _amounts_canonical(amounts: list[str]) -> bool:
    """Whether every amount read out of a lane batch is in canonical plain notation."""
    if not amounts:
        return True
    joined = '","'.join(amounts)
    if "e" in joined or "E" in joined or "n" in joined or "N" in joined:
        return False  # an exponent, nan or inf, or no number at all: the model path names it
    try:
        _lax_amounts.decode('["' + joined.replace(_ABSENT_AMOUNT, "0") + '"]')
    except msgspec.DecodeError:  # not a number, leading zeros, too large for a float
        return False
    return True


class _Lane:
    """One event type's encoded-lane struct and what is done to it after decoding."""

    __slots__ = ("cls", "config_choice", "event_time", "name", "read_amounts", "transaction_time")

    def __init__(self, name: str, info: msgspec_inspect.StructType) -> None:
        self.cls = _wire_struct(info, fill_times=True, lane=True)
        self.name = name
        self.read_amounts = _amount_reader(info)
        attrs = {field.encode_name: field.name for field in info.fields}
        self.event_time: str = attrs["E"]
        self.transaction_time: str | None = attrs.get("T")
        # §5.6: ACCOUNT_CONFIG_UPDATE carries exactly one of `ac` / `ai`.
        self.config_choice: tuple[str, str] | None = (
            (attrs["ac"], attrs["ai"]) if name == "ACCOUNT_CONFIG_UPDATE" else None
        )


_LANES: Final = {
    lane.cls: lane
    for lane in (
        _Lane(name, info) for name, info in _EVENT_INFO.items() if name != "listenKeyExpired"
    )
}
_LANE_UNION: Final[Any] = Union.__getitem__(tuple(_LANES))
_lane_decoder: Final[msgspec.json.Decoder[Any]] = msgspec.json.Decoder(
    Union.__getitem__((list.__class_getitem__(_LANE_UNION), _LANE_UNION))
)


def event_name(event: Event) -> str:
    """Return the event's `e` value, e.g. `"ORDER_TRADE_UPDATE"` (spec §5)."""
    return _EVENT_NAMES[type(event)]


def deliverable_raw(item: Deliverable) -> bytes:
    """The wire JSON of a model (`encode_event`) or an `EncodedEvent` (its `raw`)."""
    return item.raw if isinstance(item, EncodedEvent) else encode_event(item)


def to_encoded(item: Deliverable) -> EncodedEvent:
    """An `EncodedEvent` as is, or a model's name and `encode_event` bytes."""
    return (
        item
        if isinstance(item, EncodedEvent)
        else EncodedEvent(event_name(item), encode_event(item))
    )


def to_event(item: Deliverable) -> Event:
    """The model of a model or an `EncodedEvent` (decoded tolerantly, like `decode_event`)."""
    return decode_event(item.raw) if isinstance(item, EncodedEvent) else item


def has_transaction_time(name: str) -> bool:
    """Whether events named `name` carry a top-level `T` (all but `MARGIN_CALL` and
    `listenKeyExpired`; `False` for names this version does not know)."""
    return name in _WITH_TRANSACTION_TIME


def encode_event(event: Event) -> bytes:
    """Return the raw JSON Binance sends for `event`, keys in Binance's order.

    Encode each event once and reuse the bytes for every connection (`combined_envelope`
    wraps them for combined streams).
    """
    raw = _encoder.encode(event)
    # msgspec writes a Decimal with str(), which switches to scientific notation for small
    # exponents (Decimal("0.00000000") -> "0E-8"); Binance always writes plain notation.
    # Every such string contains "E-" or "E+"; only then take the slower exact path (a text
    # field that merely contains "E-" takes it too, which is still correct).
    if b"E-" in raw or b"E+" in raw:
        return _encoder.encode(
            _plain_decimals(msgspec.to_builtins(event, builtin_types=(Decimal,)))
        )
    return raw


def _plain_decimals(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {key: _plain_decimals(item) for key, item in value.items()}
    if isinstance(value, list | tuple):  # to_builtins keeps tuple fields as tuples
        return [_plain_decimals(item) for item in value]
    return value


def combined_envelope(stream: str, raw_event_json: bytes) -> bytes:
    """Wrap already-encoded event bytes as `{"stream":"<stream>","data":<event>}` (§4.3).

    The event is not re-encoded; only the stream name is JSON-escaped.
    """
    return b'{"stream":' + _encoder.encode(stream) + b',"data":' + raw_event_json + b"}"


def decode_event(data: bytes | str) -> Event:
    """Decode one raw event (the `data` of a combined envelope), tolerantly.

    Unknown fields are ignored and enum-like values are kept as strings.

    Raises:
        UnknownEventError: `e` names an event this version does not know; skip the event.
        EventValidationError: the JSON is invalid or a known event lacks a field or has one
            of the wrong type; `path` names the field.
    """
    try:
        return _event_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _explain_decode_failure(data, exc) from exc
    except msgspec.DecodeError as exc:
        raise EventValidationError("", f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise EventValidationError("", "invalid JSON: nested too deeply") from exc


def _explain_decode_failure(
    data: bytes | str, exc: msgspec.ValidationError
) -> EventValidationError:
    try:
        obj = _any_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        obj = None
    if isinstance(obj, dict) and "e" in obj and obj["e"] not in EVENT_TYPES:
        return UnknownEventError(obj["e"])
    return _from_msgspec_error(exc, "")


def parse_admin_events(body: bytes, now_ms: int) -> list[Event]:
    """Strictly parse the body of `POST /admin/v1/accounts/{id}/events`.

    `body` is one event object or a non-empty JSON array of them. Every field must be known
    and of Binance's wire type (amounts as JSON strings in plain notation, times and ids as
    JSON integers, flags as JSON booleans); `null` is not accepted, omit the field instead.
    An absent `E` is filled with `now_ms`, and so is an absent `T` for events that have one.
    `listenKeyExpired` is refused: the server emits it when a key expires or is closed.

    Returns:
        The events, in body order. The batch is all-or-nothing.

    Raises:
        EventValidationError: the first offence; `path` is like `o.q`, `a.B[0].wb`, or with
            a batch `[2].o.q`.
    """
    try:
        raw = _any_decoder.decode(body)
    except RecursionError as exc:
        raise EventValidationError("", "invalid JSON: nested too deeply") from exc
    except msgspec.DecodeError as exc:
        raise EventValidationError("", f"invalid JSON: {exc}") from exc
    if isinstance(raw, dict):
        items: list[Any] = [raw]
    elif isinstance(raw, list):
        if not raw:
            raise EventValidationError("", "empty batch: send one event or a non-empty array")
        items = raw
    else:
        raise EventValidationError(
            "", f"expected an event object or an array of them, got {_kind(raw)}"
        )
    fast = _parse_admin_batch_fast(items, now_ms)
    if fast is not None:
        return fast
    prefix = "" if isinstance(raw, dict) else "[{}]"
    events = [_parse_admin_event(item, now_ms, prefix.format(i)) for i, item in enumerate(items)]
    return events


def parse_admin_encoded(body: bytes, now_ms: int) -> list[EncodedEvent]:
    """`parse_admin_events` returning the events encoded: the same rules, the same errors,
    and `raw == encode_event(model)` for each (tests/unit/protocol/test_codec_encoded.py).

    A valid body is decoded once, in C, into structs that enforce every rule of the admin
    path but the spelling of amounts, whose amounts are then checked together
    (`_amounts_canonical`), and each is encoded back; anything else goes through
    `parse_admin_events`, which names the offence (or, for amounts with leading zeros,
    accepts them and this encodes the models).
    """
    fast = _parse_admin_encoded_fast(body, now_ms)
    if fast is not None:
        return fast
    return [EncodedEvent(event_name(e), encode_event(e)) for e in parse_admin_events(body, now_ms)]


def _parse_admin_encoded_fast(body: bytes, now_ms: int) -> list[EncodedEvent] | None:
    try:
        decoded = _lane_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    items: list[Any] = decoded if isinstance(decoded, list) else [decoded]
    if not items or b"\\" in body:
        # The model path says "empty batch"; an escape could spell `_ABSENT_AMOUNT`.
        return None
    lanes, encode, unset = _LANES, _encoder.encode, msgspec.UNSET
    encoded: list[EncodedEvent] = []
    amounts: list[str] = []
    for item in items:
        lane = lanes[type(item)]
        lane.read_amounts(item, amounts)
        if getattr(item, lane.event_time) is unset:
            setattr(item, lane.event_time, now_ms)
        if lane.transaction_time is not None and getattr(item, lane.transaction_time) is unset:
            setattr(item, lane.transaction_time, now_ms)
        if lane.config_choice is not None:
            leverage, multi_assets = lane.config_choice
            if (getattr(item, leverage) is unset) == (getattr(item, multi_assets) is unset):
                return None  # the model path says which of `ac` / `ai` is wrong
        encoded.append(EncodedEvent(lane.name, encode(item)))
    if not _amounts_canonical(amounts):
        return None  # the model path names the amount, or accepts it (leading zeros)
    return encoded


def _parse_admin_batch_fast(items: list[Any], now_ms: int) -> list[Event] | None:
    """Validate and convert a whole batch in C; None when anything is wrong (the caller then
    walks the batch to report the first offence by its path)."""
    for item in items:
        if isinstance(item, dict):
            item.setdefault("E", now_ms)
            if item.get("e") in _WITH_TRANSACTION_TIME:
                item.setdefault("T", now_ms)
    try:
        msgspec.convert(items, _WIRE_BATCH, strict=True)
        events: list[Event] = msgspec.convert(items, _EVENT_BATCH, strict=True)
    except msgspec.ValidationError:
        return None
    for item in items:
        if item["e"] == "ACCOUNT_CONFIG_UPDATE" and ("ac" in item) == ("ai" in item):
            return None  # §5.6: exactly one of `ac` / `ai`; the slow path says which
    return events


def _parse_admin_event(obj: object, now_ms: int, prefix: str) -> Event:
    if not isinstance(obj, dict):
        raise EventValidationError(prefix, f"expected an event object, got {_kind(obj)}")
    name = obj.get("e")
    if "e" not in obj:
        raise EventValidationError(_join(prefix, "e"), "missing required field")
    if not isinstance(name, str):
        raise EventValidationError(_join(prefix, "e"), f"expected a string, got {_kind(name)}")
    if name == "listenKeyExpired":
        raise EventValidationError(
            _join(prefix, "e"),
            "listenKeyExpired cannot be published: the server sends it itself when a "
            "listenKey expires or is closed",
        )
    info = _EVENT_INFO.get(name)
    if info is None:
        raise EventValidationError(
            _join(prefix, "e"), f"unknown event type {name!r}; known: {', '.join(EVENT_TYPES)}"
        )
    obj = dict(obj)
    obj.setdefault("E", now_ms)
    if name in _WITH_TRANSACTION_TIME:
        obj.setdefault("T", now_ms)
    _check_struct(info, obj, prefix)
    if name == "ACCOUNT_CONFIG_UPDATE" and "ac" not in obj and "ai" not in obj:
        # §5.6: two mutually exclusive shapes, one of them always present.
        raise EventValidationError(
            _join(prefix, "ac"), "one of `ac` (leverage) or `ai` (Multi-Assets mode) is required"
        )
    if name == "ACCOUNT_CONFIG_UPDATE" and "ac" in obj and "ai" in obj:
        raise EventValidationError(_join(prefix, "ai"), "`ac` and `ai` are mutually exclusive")
    try:
        event: Event = msgspec.convert(obj, EVENT_TYPES[name], strict=True)
    except msgspec.ValidationError as exc:
        raise _from_msgspec_error(exc, prefix) from exc
    return event


def _check_struct(info: msgspec_inspect.StructType, obj: dict[str, object], path: str) -> None:
    """What `msgspec.convert(strict=True)` lets through: unknown keys, missing fields named
    by their own path, nulls, and amounts sent as JSON numbers or in exponent notation."""
    fields = {field.encode_name: field for field in info.fields}
    for key in obj:
        if key not in fields and key != info.tag_field:
            raise EventValidationError(_join(path, key), "unknown field")
    for key, field in fields.items():
        if key in obj:
            _check_value(field.type, obj[key], _join(path, key))
        elif field.required:
            raise EventValidationError(_join(path, key), "missing required field")


def _check_value(type_info: msgspec_inspect.Type, value: object, path: str) -> None:
    if value is None:
        raise EventValidationError(path, "null is not allowed; omit an absent optional field")
    type_info = _non_null(type_info)
    if isinstance(type_info, msgspec_inspect.DecimalType):
        if not isinstance(value, str):
            raise EventValidationError(
                path, f'expected a decimal string such as "0.001", got {_kind(value)}'
            )
        if not _PLAIN_DECIMAL.fullmatch(value):
            raise EventValidationError(
                path, f'expected a decimal string in plain notation such as "0.001", got {value!r}'
            )
    elif isinstance(type_info, msgspec_inspect.StructType) and isinstance(value, dict):
        _check_struct(type_info, value, path)
    elif isinstance(type_info, msgspec_inspect.VarTupleType) and isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(type_info.item_type, item, f"{path}[{index}]")


def _from_msgspec_error(exc: msgspec.ValidationError, prefix: str) -> EventValidationError:
    match = _MSGSPEC_LOCATION.match(str(exc))
    assert match is not None  # the pattern matches any string
    reason = match["reason"]
    path = (match["path"] or "").removeprefix(".")
    missing = _MSGSPEC_MISSING.match(reason)
    if missing:
        path = _join(path, missing["field"])
        reason = "missing required field"
    return EventValidationError(_join(prefix, path), reason)


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}.{path}"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def make_listen_key_expired(listen_key: str, event_time_ms: int) -> ListenKeyExpired:
    """Build the `listenKeyExpired` event the server sends when `listen_key` expires or is
    closed (§5.1); encode it with `encode_event` (`E` is a JSON integer)."""
    return ListenKeyExpired(event_time=event_time_ms, listen_key=listen_key)
