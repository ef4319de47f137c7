"""The frame parser and frame builders of `protocol.wsframes`, directly (RFC 6455)."""

from __future__ import annotations

import os
import struct

import pytest

from userstream.protocol import wsframes
from userstream.protocol.wsframes import (
    CloseCode,
    FrameError,
    FrameParser,
    Message,
    Opcode,
    check_handshake,
    close_frame,
    close_reply_code,
    parse_close,
    sendable_close_code,
)

MASK = b"\x37\xfa\x21\x3d"


def client_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask: bytes | None = MASK,
    length_form: int | None = None,
    rsv: int = 0,
) -> bytes:
    """A client frame; `length_form` forces the 7-bit (0), 16-bit (126) or 64-bit (127) form."""
    n = len(payload)
    form = length_form if length_form is not None else (0 if n < 126 else 126 if n < 65536 else 127)
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if mask is not None else 0
    if form == 0:
        header = bytes((first, mask_bit | n))
    elif form == 126:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is None:
        return header + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def feed_all(data: bytes, max_message: int = 64 * 1024) -> list[Message]:
    return FrameParser(max_message).feed(data)


def error_of(data: bytes, max_message: int = 64 * 1024) -> tuple[int, str]:
    with pytest.raises(FrameError) as info:
        feed_all(data, max_message)
    return info.value.code, info.value.reason


# masking


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 1000])
def test_masked_payload_is_unmasked(size: int) -> None:
    payload = os.urandom(size)
    assert feed_all(client_frame(Opcode.BINARY, payload)) == [Message(Opcode.BINARY, payload)]


def test_unmasked_client_frame_is_a_protocol_error() -> None:
    assert error_of(client_frame(Opcode.TEXT, b"{}", mask=None)) == (
        CloseCode.PROTOCOL_ERROR,
        "client frames must be masked",
    )


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
def test_reserved_bits_are_a_protocol_error(rsv: int) -> None:
    assert error_of(client_frame(Opcode.TEXT, b"{}", rsv=rsv))[0] == CloseCode.PROTOCOL_ERROR


# lengths: the 7-bit, 16-bit and 64-bit forms


@pytest.mark.parametrize(
    ("size", "form"),
    [(125, 0), (126, 126), (65535, 126), (65536, 127), (125, 126), (125, 127), (0, 127)],
)
def test_every_length_form_is_read(size: int, form: int) -> None:
    payload = b"a" * size
    data = client_frame(Opcode.TEXT, payload, length_form=form)
    assert feed_all(data, max_message=1 << 20) == [Message(Opcode.TEXT, payload)]


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_frame_split_at_every_byte_is_read_once_complete(size: int) -> None:
    payload = b"b" * size
    data = client_frame(Opcode.TEXT, payload)
    parser = FrameParser(1 << 20)
    cuts = range(len(data)) if size < 200 else [1, 2, 3, 4, 9, 10, 13, 14, len(data) - 1]
    last = 0
    for cut in cuts:
        assert parser.feed(data[last:cut]) == []
        last = cut
    assert parser.feed(data[last:]) == [Message(Opcode.TEXT, payload)]


def test_64_bit_length_with_the_top_bit_set_is_a_protocol_error() -> None:
    header = struct.pack("!BBQ", 0x81, 0x80 | 127, (1 << 63) + 5)
    assert error_of(header) == (CloseCode.PROTOCOL_ERROR, "64-bit length with the top bit set")


def test_frame_over_max_message_is_1009_before_its_payload_arrives() -> None:
    header = struct.pack("!BBH", 0x81, 0x80 | 126, 1001)
    assert error_of(header, max_message=1000) == (
        CloseCode.MESSAGE_TOO_BIG,
        "frame over 1000 bytes",
    )


def test_several_frames_in_one_feed() -> None:
    data = client_frame(Opcode.TEXT, b"one") + client_frame(Opcode.PING, b"p")
    assert feed_all(data + client_frame(Opcode.TEXT, b"two")[:3]) == [
        Message(Opcode.TEXT, b"one"),
        Message(Opcode.PING, b"p"),
    ]


# fragmentation


def test_fragments_are_reassembled_with_control_frames_between() -> None:
    data = (
        client_frame(Opcode.TEXT, b"hel", fin=False)
        + client_frame(Opcode.PING, b"mid")
        + client_frame(Opcode.CONTINUATION, b"lo ", fin=False)
        + client_frame(Opcode.CONTINUATION, "wörld".encode())
    )
    assert feed_all(data) == [
        Message(Opcode.PING, b"mid"),
        Message(Opcode.TEXT, "hello wörld".encode()),
    ]


def test_character_split_across_fragments_is_valid_utf8() -> None:
    encoded = "€".encode()
    data = client_frame(Opcode.TEXT, encoded[:1], fin=False) + client_frame(
        Opcode.CONTINUATION, encoded[1:]
    )
    assert feed_all(data) == [Message(Opcode.TEXT, encoded)]


def test_continuation_without_a_start_is_a_protocol_error() -> None:
    assert error_of(client_frame(Opcode.CONTINUATION, b"x")) == (
        CloseCode.PROTOCOL_ERROR,
        "continuation without a start",
    )


def test_new_message_inside_a_fragmented_one_is_a_protocol_error() -> None:
    data = client_frame(Opcode.TEXT, b"a", fin=False) + client_frame(Opcode.TEXT, b"b")
    assert error_of(data) == (CloseCode.PROTOCOL_ERROR, "new message inside a fragmented one")


def test_reassembled_message_over_max_message_is_1009() -> None:
    data = client_frame(Opcode.TEXT, b"a" * 600, fin=False) + client_frame(
        Opcode.CONTINUATION, b"a" * 600
    )
    assert error_of(data, max_message=1000) == (
        CloseCode.MESSAGE_TOO_BIG,
        "message over 1000 bytes",
    )


def test_parser_is_ready_for_the_next_message_after_reassembly() -> None:
    parser = FrameParser()
    parser.feed(client_frame(Opcode.BINARY, b"a", fin=False))
    assert parser.feed(client_frame(Opcode.CONTINUATION, b"b")) == [Message(Opcode.BINARY, b"ab")]
    assert parser.feed(client_frame(Opcode.TEXT, b"c")) == [Message(Opcode.TEXT, b"c")]


@pytest.mark.parametrize("opcode", [0x3, 0x7])
def test_reserved_data_opcode_is_a_protocol_error(opcode: int) -> None:
    assert error_of(client_frame(opcode, b"x")) == (
        CloseCode.PROTOCOL_ERROR,
        f"unknown data opcode {opcode}",
    )


# control frames


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_control_frame_of_125_bytes_is_read(opcode: Opcode) -> None:
    payload = struct.pack("!H", 1000) + b"r" * 123 if opcode == Opcode.CLOSE else b"p" * 125
    assert feed_all(client_frame(opcode, payload)) == [Message(opcode, payload)]


@pytest.mark.parametrize(
    "data",
    [
        client_frame(Opcode.PING, b"p" * 126),
        client_frame(Opcode.PING, b"p", fin=False),
        client_frame(Opcode.CLOSE, b"", fin=False),
    ],
    ids=["ping-126", "fragmented-ping", "fragmented-close"],
)
def test_invalid_control_frame_is_a_protocol_error(data: bytes) -> None:
    assert error_of(data) == (CloseCode.PROTOCOL_ERROR, "invalid control frame")


@pytest.mark.parametrize("opcode", [0xB, 0xF])
def test_reserved_control_opcode_is_a_protocol_error(opcode: int) -> None:
    assert error_of(client_frame(opcode, b"")) == (
        CloseCode.PROTOCOL_ERROR,
        f"unknown control opcode {opcode}",
    )


# UTF-8


@pytest.mark.parametrize(
    "payload",
    [b"\xff", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b'{"a":"\xf4\x90\x80\x80"}', b"\xc0\xaf"],
    ids=["ff", "truncated", "bad-continuation", "surrogate", "above-10ffff", "overlong"],
)
def test_invalid_utf8_text_is_1007(payload: bytes) -> None:
    assert error_of(client_frame(Opcode.TEXT, payload)) == (
        CloseCode.INVALID_DATA,
        "invalid UTF-8 in a text message",
    )


def test_invalid_utf8_in_a_fragmented_text_is_1007() -> None:
    data = client_frame(Opcode.TEXT, b"ok", fin=False) + client_frame(Opcode.CONTINUATION, b"\xff")
    assert error_of(data)[0] == CloseCode.INVALID_DATA


def test_binary_need_not_be_utf8() -> None:
    assert feed_all(client_frame(Opcode.BINARY, b"\xff")) == [Message(Opcode.BINARY, b"\xff")]


# close codes and reasons


@pytest.mark.parametrize(
    ("code", "sendable"),
    [
        (999, False),
        (1000, True),
        (1003, True),
        (1004, False),
        (1005, False),
        (1006, False),
        (1007, True),
        (1014, True),
        (1015, False),
        (2999, False),
        (3000, True),
        (4999, True),
        (5000, False),
    ],
)
def test_sendable_close_codes(code: int, sendable: bool) -> None:
    assert sendable_close_code(code) is sendable


@pytest.mark.parametrize(
    ("payload", "reply"),
    [
        (b"", 1000),
        (b"\x03", 1002),
        (struct.pack("!H", 1005), 1002),
        (struct.pack("!H", 4321) + b"bye", 4321),
        (struct.pack("!H", 1001) + b"\xff", 1007),
    ],
)
def test_close_reply_code(payload: bytes, reply: int) -> None:
    assert close_reply_code(payload) == reply


def test_parse_close() -> None:
    assert parse_close(b"") == (1005, "")
    assert parse_close(struct.pack("!H", 1001) + "adieu é".encode()) == (1001, "adieu é")


def test_close_frame_fits_the_control_frame_budget() -> None:
    frame = close_frame(1008, "x" * 500)
    assert frame[:2] == bytes((0x88, 125))
    assert frame[2:4] == struct.pack("!H", 1008)
    assert frame[4:] == b"x" * 123


@pytest.mark.parametrize("prefix", range(4))
def test_close_reason_is_never_cut_inside_a_character(prefix: int) -> None:
    # 4-byte characters after 0-3 ASCII bytes: byte 123 falls at every offset in a character.
    reason = "a" * prefix + "😀" * 40
    payload = close_frame(1000, reason)[2:]
    text = payload[2:].decode("utf-8")  # raises if a character were cut
    assert reason.startswith(text)
    assert 120 <= len(payload[2:]) <= 123


def test_server_frames_use_the_shortest_length_form() -> None:
    assert wsframes.encode_frame(Opcode.TEXT, b"a" * 125)[:2] == bytes((0x81, 125))
    assert wsframes.encode_frame(Opcode.TEXT, b"a" * 126)[:4] == struct.pack("!BBH", 0x81, 126, 126)
    assert wsframes.encode_frame(Opcode.TEXT, b"a" * 65536)[:10] == struct.pack(
        "!BBQ", 0x81, 127, 65536
    )
    assert wsframes.text_frame(b"abc") == wsframes.encode_frame(Opcode.TEXT, b"abc")
    assert b"".join(wsframes.text_frame_chunks([b"a", b"bc"])) == wsframes.text_frame(
        b"a"
    ) + wsframes.text_frame(b"bc")


# handshake

GOOD = {
    "upgrade": "websocket",
    "connection": "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
}


def test_accept_key_matches_rfc_6455_example() -> None:
    assert wsframes.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_handshake_is_accepted() -> None:
    assert check_handshake("GET", GOOD) is None


@pytest.mark.parametrize("version", ["8", "12", "13, 8", ""])
def test_other_versions_get_426_naming_13(version: str) -> None:
    rejection = check_handshake("GET", {**GOOD, "sec-websocket-version": version})
    assert rejection is not None
    assert rejection.status == 426
    assert rejection.headers == (("Sec-WebSocket-Version", "13"),)


@pytest.mark.parametrize(
    ("method", "change"),
    [
        ("POST", {}),
        ("GET", {"upgrade": "h2c"}),
        ("GET", {"sec-websocket-key": "c2hvcnQ="}),
        ("GET", {"sec-websocket-key": "not base64!"}),
    ],
)
def test_malformed_handshake_is_400(method: str, change: dict[str, str]) -> None:
    rejection = check_handshake(method, {**GOOD, **change})
    assert rejection is not None
    assert (rejection.status, rejection.headers) == (400, ())


def test_missing_version_is_400() -> None:
    headers = {k: v for k, v in GOOD.items() if k != "sec-websocket-version"}
    rejection = check_handshake("GET", headers)
    assert rejection is not None
    assert rejection.status == 400
