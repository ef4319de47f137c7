"""Encode and decode user-data events; build the combined-stream envelope.

Three paths, all sans-I/O:

* Server hot path: `encode_event` once per event, then `combined_envelope` wraps those bytes
  for `/stream`-style connections without re-encoding (spec §4.3).
* Client path: `decode_event` tolerates fields and enum values Binance adds later.
* Server inbound admin path (`POST /admin/v1/accounts/{id}/events`): `parse_admin_encoded`
  validates the body in one typed pass and returns `EncodedEvent`s, the bytes every
  connection gets, so an accepted event is never decoded or encoded again on its way to the
  sockets. `parse_admin_events` returns the models of the same events. Both are strict and
  report the offending field as a path such as `o.q` or `[2].a.B[0].wb`.

Encoders and decoders are built once, at import.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Annotated, Any, Final, NamedTuple, TypeAlias, Union

import msgspec
from msgspec import inspect as msgspec_inspect

from userstream.exceptions import EventValidationError
from userstream.protocol.events import (
    EVENT_TYPES,
    AccountUpdate,
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
    "encode_events",
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

# msgspec appends " - at `$.o.q`" to the errors it raises.
_MSGSPEC_LOCATION: Final = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MSGSPEC_MISSING: Final = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_MSGSPEC_UNKNOWN: Final = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
# One step of such a path: `.key` or `[index]`.
_PATH_STEP: Final = re.compile(r"\.([^.\[]+)|\[([0-9]+)\]")


# --- The admin intake: `POST /admin/v1/accounts/{id}/events` and `Publisher.publish_json`.
#
# One path. For every publishable event model, a "lane" Struct is derived once, at import: the
# model's keys in the model's order, unknown keys refused, a field optional only where the model's
# is (then it may be absent, never null), `E`/`T` optional (the server fills them), integers with
# the model's declared ranges (`events.Millis`, `Id`, `Int64`), and amounts as `str`. A body is
# decoded once, in C, into these structs, which enforces every rule but two: the spelling of
# amounts, checked for the whole body at once (`_amounts_canonical`; `_rewrite_amounts` only
# when that fails), and §5.6's "exactly one of `ac` / `ai`". The structs are then encoded back:
# the keys in the order `encode_event` of the model writes them, absent optionals omitted
# (UNSET), and amounts as sent.

# Binance writes amounts in plain notation: optional minus, digits, optional fraction (§5
# "Common conventions"). A plain amount with superfluous leading zeros ("007.5") is accepted and
# rewritten as `encode_event` of the model writes it ("7.5"); anything else is refused.
_PLAIN_AMOUNT: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# Plain notation without superfluous leading zeros is the JSON number grammar without its
# exponent (RFC 8259 §6: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`). So a body's n
# amounts are all canonical when, joined by commas in brackets, they decode as a JSON array of
# n numbers, and the text has no exponent letter and no JSON whitespace: the decoder refuses
# anything else (strings, literals, nesting), and n numbers means n - 1 commas, those of the
# join. One C pass over the body's amounts; `_rewrite_amounts` decides the rest.
_json_numbers: Final = msgspec.json.Decoder(list[float])
_NOT_IN_CANONICAL: Final = ("e", "E", " ", "\t", "\n", "\r")


def _amounts_canonical(amounts: list[str]) -> bool:
    """Whether every amount is in plain notation without superfluous leading zeros."""
    joined = ",".join(amounts)
    if any(char in joined for char in _NOT_IN_CANONICAL):
        return False
    try:
        return len(_json_numbers.decode(f"[{joined}]")) == len(amounts)
    except msgspec.DecodeError:  # not numbers, or one too large for a float
        return False


_AmountReader: TypeAlias = Callable[[Any, list[str], list[Any]], None]


def _non_null(info: msgspec_inspect.Type) -> msgspec_inspect.Type:
    """`X` of an optional `X | None`; any other type as it is."""
    if isinstance(info, msgspec_inspect.UnionType):
        (info,) = [t for t in info.types if not isinstance(t, msgspec_inspect.NoneType)]
    return info


def _lane_type(info: msgspec_inspect.Type) -> Any:
    info = _non_null(info)
    if isinstance(info, msgspec_inspect.DecimalType | msgspec_inspect.StrType):
        return str
    if isinstance(info, msgspec_inspect.IntType):  # the models bound their integers with ge/le
        return Annotated[int, msgspec.Meta(ge=info.ge, le=info.le)]
    if isinstance(info, msgspec_inspect.BoolType):
        return bool
    if isinstance(info, msgspec_inspect.StructType):
        return _lane_struct(info, fill_times=False)
    if isinstance(info, msgspec_inspect.VarTupleType):
        return tuple[_lane_type(info.item_type), ...]  # type: ignore[misc]
    raise TypeError(f"no lane type for {info!r}")


def _lane_struct(info: msgspec_inspect.StructType, fill_times: bool) -> Any:
    fields: list[tuple[str, Any, Any]] = []
    for field in info.fields:
        kind = _lane_type(field.type)
        if field.required and not (fill_times and field.encode_name in ("E", "T")):
            fields.append((field.name, kind, msgspec.field(name=field.encode_name)))
        else:
            absent = msgspec.field(name=field.encode_name, default=msgspec.UNSET)
            fields.append((field.name, kind | msgspec.UnsetType, absent))
    return msgspec.defstruct(
        f"Lane{info.cls.__name__}",
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        tag_field=info.tag_field,
        tag=info.tag,
        gc=False,  # like the models: scalars, tuples and structs only, so no cycles
    )


def _carries_amounts(info: msgspec_inspect.Type) -> bool:
    info = _non_null(info)
    if isinstance(info, msgspec_inspect.DecimalType):
        return True
    if isinstance(info, msgspec_inspect.StructType):
        return any(_carries_amounts(field.type) for field in info.fields)
    if isinstance(info, msgspec_inspect.VarTupleType):
        return _carries_amounts(info.item_type)
    return False


def _tuple_getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]] | None:
    if not names:
        return None
    if len(names) == 1:
        get = operator.attrgetter(names[0])
        return lambda obj: (get(obj),)
    return operator.attrgetter(*names)


def _amount_reader(info: msgspec_inspect.StructType) -> _AmountReader:
    """A function that appends the amounts of a lane struct shaped like `info` to two lists:
    those of required fields to the first, those of optional fields (a `str`, or UNSET when
    absent) to the second. `_amount_places` finds the same amounts with their paths.

    The amounts of each struct reached through required fields are read by one `attrgetter`
    call; tuples of structs and optional structs get readers of their own.
    """
    places: dict[str, tuple[list[str], list[str]]] = {}  # struct path: (required, optional)
    inner: list[tuple[Callable[[Any], Any], _AmountReader, bool]] = []  # (get, read, a tuple)

    def walk(info: msgspec_inspect.StructType, path: str) -> None:
        for field in info.fields:
            kind, here = _non_null(field.type), f"{path}.{field.name}".lstrip(".")
            if not _carries_amounts(kind):
                continue
            if isinstance(kind, msgspec_inspect.DecimalType):
                required, optional = places.setdefault(path, ([], []))
                (required if field.required else optional).append(field.name)
            elif isinstance(kind, msgspec_inspect.StructType) and field.required:
                walk(kind, here)
            elif isinstance(kind, msgspec_inspect.StructType):
                inner.append((operator.attrgetter(here), _amount_reader(kind), False))
            else:
                assert isinstance(kind, msgspec_inspect.VarTupleType)
                assert isinstance(kind.item_type, msgspec_inspect.StructType)
                inner.append((operator.attrgetter(here), _amount_reader(kind.item_type), True))

    walk(info, "")
    groups = [
        (operator.attrgetter(path) if path else None, _tuple_getter(req), _tuple_getter(opt))
        for path, (req, opt) in places.items()
    ]
    unset = msgspec.UNSET
    if len(groups) == 1 and not inner:
        # All its amounts in one struct: its own fields (a balance, a trade) or those of one
        # struct inside it (ORDER_TRADE_UPDATE's `o`), looked up once.
        ((get_struct, get_required, get_optional),) = groups
        if get_struct is None and get_optional is None and get_required is not None:
            get_own = get_required

            def read_own(obj: Any, required: list[str], optional: list[Any]) -> None:
                required += get_own(obj)

            return read_own

        def read_one_place(obj: Any, required: list[str], optional: list[Any]) -> None:
            struct = obj if get_struct is None else get_struct(obj)
            if get_required is not None:
                required += get_required(struct)
            if get_optional is not None:
                optional += get_optional(struct)

        return read_one_place

    def read(obj: Any, required: list[str], optional: list[Any]) -> None:
        for get_struct, get_required, get_optional in groups:
            struct = obj if get_struct is None else get_struct(obj)
            if get_required is not None:
                required += get_required(struct)
            if get_optional is not None:
                optional += get_optional(struct)
        for get, reader, many in inner:
            value = get(obj)
            if value is unset:
                continue
            if many:
                for item in value:
                    reader(item, required, optional)
            else:
                reader(value, required, optional)

    return read


def _amount_places(
    info: msgspec_inspect.StructType, obj: Any, path: str
) -> Iterator[tuple[str, Any, str]]:
    """(path, struct, attribute) of every amount present in a lane struct shaped like `info`."""
    for field in info.fields:
        value = getattr(obj, field.name)
        if value is msgspec.UNSET:
            continue
        kind, here = _non_null(field.type), _join(path, field.encode_name)
        if isinstance(kind, msgspec_inspect.DecimalType):
            yield here, obj, field.name
        elif isinstance(kind, msgspec_inspect.StructType):
            yield from _amount_places(kind, value, here)
        elif isinstance(kind, msgspec_inspect.VarTupleType) and isinstance(
            kind.item_type, msgspec_inspect.StructType
        ):
            for index, item in enumerate(value):
                yield from _amount_places(kind.item_type, item, f"{here}[{index}]")


class _Lane(NamedTuple):
    """One event type's lane: what is done to its struct after decoding."""

    name: str
    read_amounts: _AmountReader
    has_transaction_time: bool
    # §5.6: ACCOUNT_CONFIG_UPDATE carries exactly one of `ac` / `ai` (their attribute names).
    config_choice: tuple[str, str] | None
    info: msgspec_inspect.StructType


def _lane(name: str, info: msgspec_inspect.StructType) -> _Lane:
    attrs = {field.encode_name: field.name for field in info.fields}
    # Every event names `E` `event_time` and `T` `transaction_time`: the intake reads them as
    # plain attributes.
    assert attrs["E"] == "event_time"
    assert attrs.get("T", "transaction_time") == "transaction_time"
    choice = (attrs["ac"], attrs["ai"]) if name == "ACCOUNT_CONFIG_UPDATE" else None
    return _Lane(name, _amount_reader(info), "T" in attrs, choice, info)


_LANES: Final = {
    _lane_struct(info, fill_times=True): _lane(name, info)
    for name, info in _EVENT_INFO.items()
    if name != "listenKeyExpired"
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


def encode_events(events: Iterable[Event]) -> list[EncodedEvent]:
    """Each model as an `EncodedEvent` (`to_encoded`, without its call and type test per
    event): a producer that encodes its batch before publishing spares every consumer the
    models' names and encodings (the gateway hands `EncodedEvent`s on as they are)."""
    return [EncodedEvent(_EVENT_NAMES[type(event)], encode_event(event)) for event in events]


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
    # msgspec writes a Decimal with str(), which switches to scientific notation for small
    # exponents (Decimal("0.00000000") -> "0E-8"); Binance always writes plain notation.
    # An ACCOUNT_UPDATE carries 8-decimal wallet amounts whose zeros (`bc`, `cr`, `iw`, ...)
    # are in that form nearly always, so it goes straight to the plain encoder.
    if type(event) is AccountUpdate:
        return _plain_encoder.encode(event)
    raw = _encoder.encode(event)
    # Any other event rarely has such an amount; every exponent string contains "E-" or
    # "E+", and only then is it encoded again, plainly (a text field that merely contains
    # "E-" takes this path too, which is still correct).
    if _EXPONENT.search(raw):
        return _plain_encoder.encode(event)
    return raw


_EXPONENT: Final = re.compile(rb"E[-+]")  # one pass over the bytes, not one per sign
# Every Decimal as `format(d, "f")`: plain notation, all its digits. A C callable, so msgspec
# calls `Decimal.__format__` without a Python frame per amount.
_plain_encoder: Final = msgspec.json.Encoder(
    decimal_format=operator.methodcaller("__format__", "f")
)


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


def parse_admin_encoded(body: bytes, now_ms: int) -> list[EncodedEvent]:
    """Strictly parse the body of `POST /admin/v1/accounts/{id}/events` into the bytes every
    connection gets.

    `body` is one event object or a non-empty JSON array of them. Every field must be known
    and of Binance's wire type (amounts as JSON strings in plain notation, times and ids as
    JSON integers from 0 to 2^63-1, flags as JSON booleans); `null` is not accepted, omit the
    field instead. An absent `E` is filled with `now_ms`, and so is an absent `T` for events
    that have one. `listenKeyExpired` is refused: the server emits it when a key expires or
    is closed.

    Returns:
        The events, in body order, each `raw == encode_event(model)` of its model
        (tests/unit/protocol/test_codec_encoded.py). The batch is all-or-nothing.

    Raises:
        EventValidationError: an offence; `path` is like `o.q`, `a.B[0].wb`, or with a batch
            `[2].o.q`.
    """
    try:
        decoded = _lane_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:  # ValidationError is a DecodeError
        raise _explain_admin_failure(body, exc) from exc
    batch = isinstance(decoded, list)
    items: list[Any] = decoded if batch else [decoded]
    if not items:
        raise EventValidationError("", "empty batch: send one event or a non-empty array")
    lanes, unset = _LANES, msgspec.UNSET
    names: list[str] = []
    amounts: list[str] = []
    optional: list[Any] = []  # amounts of optional fields: a `str` or UNSET
    for item in items:
        name, read_amounts, has_transaction_time, config_choice, _ = lanes[type(item)]
        read_amounts(item, amounts, optional)
        if item.event_time is unset:
            item.event_time = now_ms
        if has_transaction_time and item.transaction_time is unset:
            item.transaction_time = now_ms
        if config_choice is not None:
            _check_config_choice(item, config_choice, f"[{len(names)}]" if batch else "")
        names.append(name)
    if optional:
        amounts += [amount for amount in optional if amount is not unset]
    if amounts and not _amounts_canonical(amounts):
        for index, item in enumerate(items):
            _rewrite_amounts(item, f"[{index}]" if batch else "")
    # One line per event: msgspec writes compact JSON, where a newline only appears escaped.
    lines = _encoder.encode_lines(items).split(b"\n")
    lines.pop()  # the empty text after the last newline
    return list(map(EncodedEvent, names, lines))


def parse_admin_events(body: bytes, now_ms: int) -> list[Event]:
    """`parse_admin_encoded` returning the models: the same rules and the same errors."""
    return [_event_decoder.decode(event.raw) for event in parse_admin_encoded(body, now_ms)]


def _check_config_choice(item: Any, choice: tuple[str, str], prefix: str) -> None:
    leverage, multi_assets = choice
    has_leverage = getattr(item, leverage) is not msgspec.UNSET
    has_multi_assets = getattr(item, multi_assets) is not msgspec.UNSET
    if not has_leverage and not has_multi_assets:
        raise EventValidationError(
            _join(prefix, "ac"), "one of `ac` (leverage) or `ai` (Multi-Assets mode) is required"
        )
    if has_leverage and has_multi_assets:
        raise EventValidationError(_join(prefix, "ai"), "`ac` and `ai` are mutually exclusive")


def _rewrite_amounts(item: Any, prefix: str) -> None:
    """Refuse the event's first amount not in plain notation; rewrite those with superfluous
    leading zeros as `Decimal` (and so `encode_event`) writes them."""
    for path, owner, attribute in _amount_places(_LANES[type(item)].info, item, prefix):
        amount = getattr(owner, attribute)
        if not _PLAIN_AMOUNT.fullmatch(amount):
            raise EventValidationError(
                path, f'expected a decimal string in plain notation such as "0.001", got {amount!r}'
            )
        setattr(owner, attribute, format(Decimal(amount), "f"))


def _explain_admin_failure(
    body: bytes, exc: msgspec.DecodeError | RecursionError
) -> EventValidationError:
    """The error for a body the lane decoder refused: invalid JSON first, then msgspec's
    reason at msgspec's path, worded for a producer where the type of the field says more."""
    try:
        obj = _any_decoder.decode(body)
    except RecursionError:
        return EventValidationError("", "invalid JSON: nested too deeply")
    except msgspec.DecodeError as invalid:
        return EventValidationError("", f"invalid JSON: {invalid}")
    match = _MSGSPEC_LOCATION.match(str(exc))
    assert match is not None  # the pattern matches any string
    reason, located = match["reason"], match["path"] or ""
    path = located.removeprefix(".")
    named = _MSGSPEC_MISSING.match(reason) or _MSGSPEC_UNKNOWN.match(reason)
    if named:
        missing = named.re is _MSGSPEC_MISSING
        return EventValidationError(
            _join(path, named["field"]), "missing required field" if missing else "unknown field"
        )
    steps = [(key, int(index) if index else None) for key, index in _PATH_STEP.findall(located)]
    first = steps[0][1] if steps else None
    if isinstance(obj, list) and first is not None:
        del steps[0]  # the element of the batch
        obj = obj[first] if first < len(obj) else None
    value, kind = _locate(obj, steps)
    if steps == [("e", None)]:
        if not isinstance(value, str):
            return EventValidationError(path, f"expected a string, got {_kind(value)}")
        if value == "listenKeyExpired":
            return EventValidationError(
                path,
                "listenKeyExpired cannot be published: the server sends it itself when a "
                "listenKey expires or is closed",
            )
        return EventValidationError(
            path, f"unknown event type {value!r}; known: {', '.join(EVENT_TYPES)}"
        )
    if value is None and steps:
        return EventValidationError(path, "null is not allowed; omit an absent optional field")
    if isinstance(kind, msgspec_inspect.DecimalType):
        return EventValidationError(
            path, f'expected a decimal string such as "0.001", got {_kind(value)}'
        )
    if isinstance(kind, msgspec_inspect.IntType) and type(value) is int:
        return EventValidationError(
            path, f"expected an integer from {kind.ge} to {kind.le}, got {value}"
        )
    return EventValidationError(path, reason)


_NOWHERE: Final = object()


def _locate(
    event: object, steps: list[tuple[str, int | None]]
) -> tuple[object, msgspec_inspect.Type | None]:
    """The JSON value at `steps` inside one event object, and the model type of the field
    there (None where the path leaves the models)."""
    name = event.get("e") if isinstance(event, dict) else None
    kind: msgspec_inspect.Type | None = _EVENT_INFO.get(name) if isinstance(name, str) else None
    value = event
    for key, index in steps:
        if index is None:
            fields = kind.fields if isinstance(kind, msgspec_inspect.StructType) else ()
            field = next((f for f in fields if f.encode_name == key), None)
            kind = None if field is None else _non_null(field.type)
            value = value.get(key, _NOWHERE) if isinstance(value, dict) else _NOWHERE
        else:
            kind = (
                _non_null(kind.item_type)
                if isinstance(kind, msgspec_inspect.VarTupleType)
                else None
            )
            value = value[index] if isinstance(value, list) and index < len(value) else _NOWHERE
    return value, kind


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
