"""serde_json error texts (`protocol.serde_errors`): the fast checks agree with the scanner.

`exceeds_depth` and `method_error` work in C (regular expressions, bytes methods); the
Python-level `syntax_error` scanner is the reference they are checked against here.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import msgspec
import pytest

from userstream.protocol.serde_errors import (
    SERDE_RECURSION_LIMIT,
    exceeds_depth,
    method_error,
    syntax_error,
)

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
EXPECTED = "expected one of " + ", ".join(f"`{m}`" for m in METHODS)


def chain(depth: int, filler: bytes = b"") -> bytes:
    """A control message nesting exactly `depth` levels (the outer object is one), with
    `filler` (a JSON value nesting at most 3 levels) beside the chain at the upper levels."""
    opens = b""
    closes = b""
    for level in range(2, depth):
        extra = filler if filler and level < depth - 4 else b""
        if level % 2:
            opens += b'{"f":' + extra + b',"k":' if extra else b'{"k":'
            closes = b"}" + closes
        else:
            opens += b"[" + extra + b"," if extra else b"["
            closes = b"]" + closes
    return b'{"method":"LIST_SUBSCRIPTIONS","x":' + opens + b"[]" + closes + b"}"


TRICKY_FILLERS = [
    b"",
    b'"[[[{{{"',
    rb'"\\"',
    rb'"\"]]]\\"',
    rb'"\u005b\u007b"',
    b'{"a":[],"b":{}}',
    b"[[],[[]]]",
    b' \n\t"}}}" ',
]


@pytest.mark.parametrize("filler", TRICKY_FILLERS)
@pytest.mark.parametrize("depth", [2, 3, 125, 126, 127, 128, 129, 200])
def test_exceeds_depth_agrees_with_the_scanner(depth: int, filler: bytes) -> None:
    data = chain(depth, filler)
    msgspec.json.decode(data)  # well-formed
    fault = syntax_error(data)
    too_deep = fault is not None and fault.message == "recursion limit exceeded"
    assert too_deep is (depth >= SERDE_RECURSION_LIMIT)
    assert exceeds_depth(data) is too_deep


def test_brackets_in_strings_do_not_count() -> None:
    data = b'{"method":"SUBSCRIBE","x":"' + b"[" * 500 + b'","y":"\\"' + b"{" * 500 + b'"}'
    assert exceeds_depth(data) is False


def test_wide_but_shallow_is_within_the_limit() -> None:
    data = b'{"method":"LIST_SUBSCRIPTIONS","x":[' + b",".join([b"[]"] * 21_000) + b"]}"
    assert exceeds_depth(data) is False


def method(data: bytes) -> str | None:
    doc = msgspec.json.decode(data)
    assert isinstance(doc, dict)
    return method_error(data, doc, METHODS)


@pytest.mark.parametrize(
    "data",
    [
        b'{"method":"SUBSCRIBE"}',
        b'{"x":"method","method":"SUBSCRIBE","y":["method",{"method":1}]}',
        b'{"a":"\\"method\\"","method":"SUBSCRIBE"}',
        b'{"a":{"method":"NOPE"},"method":"GET_PROPERTY"}',
        b'{"m\\u0065thod":"SUBSCRIBE","z":"method"}',
        b'{"a":"[{","b":"}]","method":"SUBSCRIBE","c":"method"}',
    ],
)
def test_valid_method_with_decoys(data: bytes) -> None:
    assert method(data) is None


def test_nested_method_keys_are_not_top_level() -> None:
    data = b'{"x":{"method":1},"y":[{"method":"A"}],"method":"NOPE","id":1}'
    end = data.index(b'"NOPE"') + len(b'"NOPE"')
    assert method(data) == f"unknown variant `NOPE`, {EXPECTED} at line 1 column {end}"


def test_duplicate_spelled_with_an_escape() -> None:
    data = b'{"method":"SUBSCRIBE", "a":"[", "m\\u0065thod":"SUBSCRIBE"}'
    column = data.index(b'"m\\u0065thod"') + len(b'"m\\u0065thod"')
    assert method(data) == f"duplicate field `method` at line 1 column {column}"


def test_first_method_decides_when_duplicated() -> None:
    data = b'{"method":[1, "]"],"method":"SUBSCRIBE"}'
    assert method(data) == (
        "invalid type: sequence, expected variant identifier at line 1 column 10"
    )


def test_missing_method_with_decoys() -> None:
    data = b'{"x":{"method":"SUBSCRIBE"},"y":"method"}  \n'
    assert method(data) == "missing field `method` at line 1 column 41"


def test_scalar_value_position_skips_whitespace() -> None:
    data = b'{"method" :\n  12 , "id":1}'
    assert method(data) == (
        "invalid type: integer `12`, expected variant identifier at line 2 column 4"
    )


def python_lines(work: Callable[[], Any]) -> int:
    """How many lines of Python run inside `work`.

    The collector is paused while counting: an allocation-triggered collection would run the
    finalizers of objects other tests left behind, Python that is not the work measured.
    """
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Callable[..., Any]:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    gc.collect()
    gc.disable()
    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
        gc.enable()
    return count


@pytest.mark.parametrize(
    "shape",
    [
        lambda n: b'{"method":"LIST_SUBSCRIPTIONS","id":1,"x":[' + b",".join([b"[]"] * n) + b"]}",
        lambda n: (
            b'{"method":"LIST_SUBSCRIPTIONS","id":1,"y":"method","x":['
            + b",".join([b"[]"] * n)
            + b"]}"
        ),
        lambda n: (
            b'{"method":"LIST_SUBSCRIPTIONS","y":"method",'
            + b",".join([b'"a":"method"'] * n)
            + b"}"
        ),
        lambda n: b'{"method":"X","y":"method",' + b",".join([b'"a":[0]'] * n) + b"}",
    ],
    ids=["nested", "nested-decoy", "many-members", "unknown-method"],
)
def test_python_work_does_not_grow_with_the_message(shape: Callable[[int], bytes]) -> None:
    small, large = shape(200), shape(20_000)
    assert len(large) > 60_000

    def check(data: bytes) -> Callable[[], object]:
        def run() -> object:
            doc = msgspec.json.decode(data)
            return exceeds_depth(data), method_error(data, doc, METHODS)

        return run

    # Warm up first: a pattern evicted from `re`'s cache by earlier tests is recompiled in
    # Python on its next use, which would count here as work done for the message.
    check(small)()
    check(large)()
    assert python_lines(check(large)) == python_lines(check(small))
