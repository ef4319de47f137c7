"""serde / serde_json error texts for one JSON control frame, as Binance's stream servers send them.

Binance's replies to malformed control messages (spec §4.4) are Display strings of serde_json
errors: `EOF while parsing a value at line 1 column 0`, `recursion limit exceeded at line 1
column 128`, `unknown variant `X`, expected one of ... at line 1 column 28`. This module
reproduces them: the message with serde_json's rules and the "at line L column C" suffix the
way serde_json's `Position` computes it (bytes consumed on the current line).

Cost: a frame that decodes (msgspec) is checked with compiled regular expressions, bytes
methods and set operations only, so the work per frame is C work linear in its size. The
Python-level scanner `syntax_error` runs only for a frame whose answer is fatal (code 3, the
connection closes), so it runs at most once per connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import methodcaller
from typing import Final

import msgspec

__all__ = [
    "SERDE_RECURSION_LIMIT",
    "SyntaxFault",
    "describe",
    "exceeds_depth",
    "method_error",
    "position",
    "syntax_error",
]

SERDE_RECURSION_LIMIT: Final = 128
"""serde_json nests at most 127 arrays/objects; the 128th opening bracket is an error."""

_DECODER: Final = msgspec.json.Decoder()
_WHITESPACE: Final = b" \t\n\r"
_HEX_DIGITS: Final = b"0123456789abcdefABCDEF"


def position(data: bytes, index: int) -> str:
    """serde_json `Position` of `index` bytes consumed, as its error Display suffix."""
    start_of_line = data.rfind(b"\n", 0, index) + 1
    line = 1 + data.count(b"\n", 0, start_of_line)
    return f" at line {line} column {index - start_of_line}"


def describe(value: object) -> str:
    """serde_json's `Unexpected` wording for a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "sequence"
    return "map"


# --- nesting depth of a well-formed document, in C ------------------------------------------

_ESCAPE: Final = re.compile(rb"\\.", re.DOTALL)
_STRING: Final = re.compile(rb'"[^"]*+"')
_NOT_BRACKET: Final = bytes(c for c in range(256) if c not in b"[]{}")
_SQUARE: Final = bytes.maketrans(b"{}", b"[]")


def _balanced(depth: int) -> bytes:
    """A pattern for bracket sequences nested at most `depth` deep (possessive: linear)."""
    pattern = b""
    for _ in range(depth):
        pattern = rb"(?:\[" + pattern + rb"\])*+"
    return pattern


# Two peels below take two levels off; what is left must nest at most 125 deep.
_PEELS: Final = 2
_WITHIN_LIMIT: Final = re.compile(_balanced(SERDE_RECURSION_LIMIT - 1 - _PEELS))


def exceeds_depth(data: bytes) -> bool:
    """Whether a well-formed JSON document nests deeper than serde_json allows.

    Only for a document that decoded: strings (escapes first) are dropped, the brackets left
    are the structure, and each `replace(b"[]", b"")` removes every innermost pair, which
    lowers the deepest nesting by exactly one.
    """
    if data.count(b"[") + data.count(b"{") < SERDE_RECURSION_LIMIT:
        return False
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", data)).translate(_SQUARE, _NOT_BRACKET)
    for _ in range(_PEELS):
        brackets = brackets.replace(b"[]", b"")
    return _WITHIN_LIMIT.fullmatch(brackets) is None


# --- the `method` tag of a well-formed object (serde's internally tagged enum) --------------

# A same-length image of the document: string delimiters, brackets (all square), `:` and `,`
# kept, whitespace -> "s", everything else (escapes, string contents, scalars) -> "x".
_SHAPE: Final = bytes(
    c
    if c in b'"[]:,'
    else 0x5B
    if c == 0x7B
    else 0x5D
    if c == 0x7D
    else 0x73
    if c in _WHITESPACE
    else 0x78
    for c in range(256)
)


def _nested(depth: int) -> bytes:
    pattern = rb'(?:[xs:,]|"[^"]*+")*+'
    for _ in range(depth):
        pattern = rb'(?:[xs:,]|"[^"]*+"|\[' + pattern + rb"\])*+"
    return pattern


# One member of the top-level object: group 1 the key, group 2 the value. Matched back to back
# from just after the `{`, the members tile the object, so `finditer` yields exactly them.
_MEMBER: Final = re.compile(
    rb's*+("[^"]*+")s*+:s*+("[^"]*+"|\[' + _nested(SERDE_RECURSION_LIMIT - 2) + rb"\]|x++)s*+,?"
)
# A JSON string that decodes to "method" (each letter literal or a \u escape).
_METHOD_KEY: Final = re.compile(
    rb'"(?:m|\\u006[dD])(?:e|\\u0065)(?:t|\\u0074)(?:h|\\u0068)(?:o|\\u006[fF])(?:d|\\u0064)"'
)
_START: Final = methodcaller("start")
_KEY_START: Final = methodcaller("start", 1)


def method_error(data: bytes, doc: dict[str, object], methods: tuple[str, ...]) -> str | None:
    """serde's error for the `method` tag of a decoded JSON object, or None if it is valid.

    Mirrors serde's `TaggedContentVisitor::visit_map`: the first `method` value is read as a
    variant identifier (errors positioned right after it, or before a `[` / `{`), a second
    `method` key is "duplicate field", and none at all is "missing field" after the `}`.
    `data` must be the document `doc` was decoded from and nest within serde's limit.
    """
    method = doc.get("method")
    candidates = _METHOD_KEY.findall(data)
    if isinstance(method, str) and method in methods and len(candidates) == 1:
        return None
    if "method" not in doc:
        return "missing field `method`" + position(data, len(data.rstrip(_WHITESPACE)))
    shape = _ESCAPE.sub(b"xx", data).translate(_SHAPE)
    members = list(_MEMBER.finditer(shape, len(data) - len(data.lstrip(_WHITESPACE)) + 1))
    by_key = dict(zip(map(_KEY_START, members), members, strict=True))
    keys = sorted(by_key.keys() & set(map(_START, _METHOD_KEY.finditer(data))))
    first = by_key[keys[0]]
    start, end = first.span(2)
    value = _DECODER.decode(data[start:end])
    if not isinstance(value, str):
        at = start if data[start] in b"[{" else end
        return f"invalid type: {describe(value)}, expected variant identifier" + position(data, at)
    if value not in methods:
        expected = ", ".join(f"`{m}`" for m in methods)
        return f"unknown variant `{value}`, expected one of {expected}" + position(data, end)
    if len(keys) > 1:
        return "duplicate field `method`" + position(data, by_key[keys[1]].end(1))
    return None


# --- serde_json syntax errors (code 3) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyntaxFault:
    """serde_json's syntax error: its message and the bytes consumed when it was raised."""

    message: str
    index: int

    def display(self, data: bytes) -> str:
        """The error's Display text (`index < 0`: no position known)."""
        return self.message + (position(data, self.index) if self.index >= 0 else "")


class _Fault(Exception):
    def __init__(self, fault: SyntaxFault) -> None:
        super().__init__(fault.message)
        self.fault = fault


def _skip_ws(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in _WHITESPACE:
        i += 1
    return i


class _SerdeSyntax:
    """A JSON syntax check that fails where and how serde_json's `from_slice` fails."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0
        self.remaining_depth = SERDE_RECURSION_LIMIT

    def error(self, message: str) -> _Fault:
        return _Fault(SyntaxFault(message, self.i))

    def peek_error(self, message: str) -> _Fault:
        return _Fault(SyntaxFault(message, min(len(self.data), self.i + 1)))

    def peek(self) -> int | None:
        self.i = _skip_ws(self.data, self.i)
        return self.data[self.i] if self.i < len(self.data) else None

    def next_char(self) -> int | None:
        if self.i >= len(self.data):
            return None
        self.i += 1
        return self.data[self.i - 1]

    def document(self) -> None:
        self.value()
        if self.peek() is not None:
            raise self.peek_error("trailing characters")

    def value(self) -> None:
        c = self.peek()
        if c is None:
            raise self.peek_error("EOF while parsing a value")
        if c in b"ntf":
            self.i += 1
            self.ident({0x6E: b"ull", 0x74: b"rue", 0x66: b"alse"}[c])
        elif c == 0x2D:
            self.i += 1
            self.number()
        elif 0x30 <= c <= 0x39:
            self.number()
        elif c == 0x22:
            self.i += 1
            self.string()
        elif c in b"[{":
            self.remaining_depth -= 1
            if self.remaining_depth == 0:
                raise self.peek_error("recursion limit exceeded")
            self.i += 1
            self.members(c == 0x7B)
            self.remaining_depth += 1
        else:
            raise self.peek_error("expected value")

    def ident(self, rest: bytes) -> None:
        for expected in rest:
            got = self.next_char()
            if got is None:
                raise self.error("EOF while parsing a value")
            if got != expected:
                raise self.error("expected ident")

    def digits(self) -> int:
        start = self.i
        while self.i < len(self.data) and 0x30 <= self.data[self.i] <= 0x39:
            self.i += 1
        return self.i - start

    def number(self) -> None:
        start = self.i
        first = self.next_char()
        if first is None:
            raise self.error("EOF while parsing a value")
        if first == 0x30:
            if self.i < len(self.data) and 0x30 <= self.data[self.i] <= 0x39:
                raise self.peek_error("invalid number")
        elif 0x31 <= first <= 0x39:
            self.digits()
        else:
            raise self.error("invalid number")
        if self.i < len(self.data) and self.data[self.i] == 0x2E:
            self.i += 1
            if not self.digits():
                if self.i < len(self.data):
                    raise self.peek_error("invalid number")
                raise self.peek_error("EOF while parsing a value")
        if self.i < len(self.data) and self.data[self.i] in b"eE":
            self.i += 1
            if self.i < len(self.data) and self.data[self.i] in b"+-":
                self.i += 1
            got = self.next_char()
            if got is None:
                raise self.error("EOF while parsing a value")
            if not 0x30 <= got <= 0x39:
                raise self.error("invalid number")
            self.digits()
        if float(self.data[start : self.i]) == float("inf"):
            raise self.error("number out of range")

    def hex4(self) -> int:
        # serde_json >= 1.0.108 takes the four digits at once, then checks them.
        digits = self.data[self.i : self.i + 4]
        if len(digits) < 4:
            self.i = len(self.data)
            raise self.error("EOF while parsing a string")
        self.i += 4
        if not all(d in _HEX_DIGITS for d in digits):
            raise self.error("invalid escape")
        return int(digits, 16)

    def string(self) -> None:
        start = self.i
        while True:
            got = self.next_char()
            if got is None:
                raise self.error("EOF while parsing a string")
            if got == 0x22:
                try:
                    self.data[start : self.i - 1].decode("utf-8")
                except UnicodeDecodeError:
                    raise self.error("invalid unicode code point") from None
                return
            if got == 0x5C:
                self.escape()
            elif got < 0x20:
                raise self.error("control character (\\u0000-\\u001F) found while parsing a string")

    def escape(self) -> None:
        got = self.next_char()
        if got is None:
            raise self.error("EOF while parsing a string")
        if got in b'"\\/bfnrt':
            return
        if got != 0x75:
            raise self.error("invalid escape")
        code = self.hex4()
        if 0xDC00 <= code <= 0xDFFF:
            # serde_json's own wording for a lone trailing surrogate.
            raise self.error("lone leading surrogate in hex escape")
        if 0xD800 <= code <= 0xDBFF:
            for expected in b"\\u":
                got = self.next_char()
                if got is None:
                    raise self.error("EOF while parsing a string")
                if got != expected:
                    raise self.error("unexpected end of hex escape")
            if not 0xDC00 <= self.hex4() <= 0xDFFF:
                raise self.error("lone leading surrogate in hex escape")

    def members(self, is_object: bool) -> None:
        close = 0x7D if is_object else 0x5D
        eof = "EOF while parsing an object" if is_object else "EOF while parsing a list"
        first = True
        while True:
            c = self.peek()
            if c == close:
                self.i += 1
                return
            if c == 0x2C and not first:
                self.i += 1
                c = self.peek()
            elif c is None:
                raise self.peek_error(eof)
            elif first:
                first = False
            else:
                raise self.peek_error("expected `,` or `}`" if is_object else "expected `,` or `]`")
            if c == close:
                raise self.peek_error("trailing comma")
            if c is None:
                raise self.peek_error("EOF while parsing a value")
            if not is_object:
                self.value()
                continue
            if c != 0x22:
                raise self.peek_error("key must be a string")
            self.i += 1
            self.string()
            c = self.peek()
            if c is None:
                raise self.peek_error(eof)
            if c != 0x3A:
                raise self.peek_error("expected `:`")
            self.i += 1
            self.value()


def syntax_error(data: bytes) -> SyntaxFault | None:
    """serde_json's error for `data`, or None if serde_json accepts it.

    A Python-level scan of every byte up to the error: call it only for a frame whose answer
    closes the connection (msgspec refused it, or `exceeds_depth` said so).
    """
    try:
        _SerdeSyntax(data).document()
    except _Fault as failure:
        return failure.fault
    return None
