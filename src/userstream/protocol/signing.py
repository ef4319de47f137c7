"""Signed requests: parameters, HMAC-SHA256 and Ed25519 signatures, `timestamp`/`recvWindow`.

Spec: `binance-usdm-trading.md` §1 (signing and errors) and `binance-usdm-user-data-streams.md`
§6.4 (the doc's HMAC test vector); Binance "General Info" → "SIGNED (TRADE and USER_DATA)
Endpoint security" on developers.binance.com.

Sans-I/O: the caller hands in the raw query string and body exactly as received, the key
material registered for the `X-MBX-APIKEY`, and `now_ms`; everything here returns data or
raises a `BinanceAPIError` carrying Binance's code, message and HTTP status.

Rules implemented (each cited where it is applied):

* Parameters come from the query string and from a form body; when a name is in both the
  **query value wins** (§1.1). The body is parsed as form text whatever `Content-Type` says:
  python-binance and nautilus send `application/json` over form text (§1.5). A name sent
  twice within one part is -1101.
* `totalParams` = raw query **immediately followed by** raw body, no `&` between them, with
  the `signature` parameter cut out of whichever part carries it, bytes as received: nothing
  is re-sorted or re-encoded, since each client signs its own encoding (§1.3, §1.5).
* HMAC-SHA256 signatures are hex, compared case-insensitively; Ed25519 signatures are base64
  (percent-encoded on the wire) over the same payload (§1.3).
* Accept iff `timestamp < now + 1000` and `now - timestamp <= recvWindow`; `recvWindow`
  defaults to 5000 and may not exceed 60000 (§1.4; the fapi code for too large a window is
  [UNCONFIRMED], we answer -1130 as for any out-of-range value).
* The WebSocket API signs its params sorted by name and url-encoded (`urlencode` as the
  official SDK's `websocket_api_signature` does, §3).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import unquote, unquote_to_bytes, urlencode

import msgspec

from userstream.exceptions import BinanceAPIError
from userstream.protocol import errors

__all__ = [
    "DEFAULT_RECV_WINDOW_MS",
    "MAX_RECV_WINDOW_MS",
    "Ed25519Verifier",
    "KeyKind",
    "Params",
    "Security",
    "SignedRequest",
    "SigningKey",
    "check_timestamp",
    "hmac_signature",
    "parse_params",
    "split_signature",
    "verify_rest",
    "verify_ws_params",
    "ws_payload",
]

DEFAULT_RECV_WINDOW_MS: Final = 5000
MAX_RECV_WINDOW_MS: Final = 60000
AHEAD_TOLERANCE_MS: Final = 1000
"""A timestamp up to (excluding) 1000 ms ahead of the server's clock is accepted (§1.4)."""

SIGNATURE: Final = "signature"


class Security(enum.Enum):
    """Binance's security types per endpoint (§1.2)."""

    NONE = "NONE"
    MARKET_DATA = "MARKET_DATA"
    USER_STREAM = "USER_STREAM"
    TRADE = "TRADE"
    USER_DATA = "USER_DATA"

    @property
    def needs_key(self) -> bool:
        return self is not Security.NONE

    @property
    def signed(self) -> bool:
        return self in (Security.TRADE, Security.USER_DATA)


class KeyKind(enum.Enum):
    HMAC = "HMAC_SHA256"
    ED25519 = "ED25519"


class Ed25519Verifier(Protocol):
    """An Ed25519 public key (RFC 8032). The key arithmetic lives with the adapter that loads
    registered keys (`server/apikeys.py`), so this package stays stdlib + msgspec."""

    def verify(self, signature: bytes, payload: bytes) -> bool:
        """True iff `signature` is this key's signature of `payload`."""
        ...


@dataclass(frozen=True, slots=True)
class SigningKey:
    """How requests made with one API key are verified: its HMAC secret or Ed25519 key."""

    account_id: int
    kind: KeyKind
    hmac_secret: bytes = b""
    ed25519: Ed25519Verifier | None = None
    # The HMAC keyed once (the key's two padded blocks hashed); each check copies it.
    _keyed: hmac.HMAC | None = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def for_hmac(cls, account_id: int, secret: str) -> SigningKey:
        raw = secret.encode("utf-8")
        return cls(account_id, KeyKind.HMAC, raw, None, hmac.new(raw, None, hashlib.sha256))

    @classmethod
    def for_ed25519(cls, account_id: int, verifier: Ed25519Verifier) -> SigningKey:
        return cls(account_id, KeyKind.ED25519, ed25519=verifier)

    def verifies(self, signature: str, payload: bytes) -> bool:
        """Whether `signature` (as decoded from the request) signs `payload` with this key."""
        if self.kind is KeyKind.HMAC:
            assert self._keyed is not None  # `for_hmac` is the only way to an HMAC key
            mac = self._keyed.copy()
            mac.update(payload)
            return hmac.compare_digest(mac.hexdigest(), signature.lower())
        assert self.ed25519 is not None
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        return self.ed25519.verify(raw, payload)


def hmac_signature(secret: bytes, payload: bytes) -> str:
    """The hex HMAC-SHA256 of `payload` (§1.3)."""
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


Params = dict[str, str]
"""Request parameters by name, decoded (percent-escapes and `+` undone)."""


def _illegal(name: str) -> BinanceAPIError:
    return BinanceAPIError(
        -1100,
        f"Illegal characters found in parameter '{name}'; legal range is '^.*$'.",
        400,
    )


def _duplicate() -> BinanceAPIError:
    return BinanceAPIError(-1101, "Duplicate values for a parameter detected.", 400)


def _split_part(part: str) -> list[tuple[str, str]]:
    """`a=1&b=2` into decoded pairs; a field without `=` is a name with an empty value."""
    pairs: list[tuple[str, str]] = []
    if not part:
        return pairs
    for field in part.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "%" not in field and "+" not in field:
            pairs.append((name, value))  # nothing to decode: the common case
            continue
        try:
            name = unquote(name.replace("+", " "), errors="strict")
            value = unquote(value.replace("+", " "), errors="strict")
        except UnicodeDecodeError:
            raise _illegal(name) from None
        pairs.append((name, value))
    return pairs


def parse_params(query: str, body: bytes) -> Params:
    """The request's parameters: query and form body merged, the query winning (§1.1).

    Raises:
        BinanceAPIError: -1101 when a name appears twice in the query or twice in the body;
            -1100 when a part is not UTF-8 text.
    """
    try:
        body_text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _illegal("body") from None
    merged: Params = {}
    for part in (body_text, query):
        seen: set[str] = set()
        for name, value in _split_part(part):
            if name in seen:
                raise _duplicate()
            seen.add(name)
            merged[name] = value
    return merged


def split_signature(query: str, body: bytes) -> tuple[bytes, str | None]:
    """`(totalParams, signature)`: the signed payload as received and the decoded signature.

    The `signature=` field is removed from the part that carries it together with one `&`;
    the remaining query and body are concatenated with nothing between them (§1.3).

    Raises:
        BinanceAPIError: -1101 when `signature` is sent more than once.
    """
    found: str | None = None
    parts: list[bytes] = []
    for raw in (query.encode("latin-1"), body):
        fields = raw.split(b"&") if raw else []
        kept: list[bytes] = []
        for field in fields:
            if field.split(b"=", 1)[0] == b"signature":
                if found is not None:
                    raise _duplicate()
                found = unquote_to_bytes(field.partition(b"=")[2]).decode("latin-1")
            else:
                kept.append(field)
        parts.append(b"&".join(kept))
    return parts[0] + parts[1], found


def _plain_query(query: str) -> tuple[Params, bytes, str | None]:
    """`parse_params` and `split_signature` in one pass, for a request with no body and
    nothing escaped in its query (what most clients send): the same parameters (without
    `signature`), payload, signature and errors."""
    params: Params = {}
    fields = query.split("&") if query else []
    for field in fields:
        if field:
            name, _, value = field.partition("=")
            if name in params:
                raise _duplicate()
            params[name] = value
    signature = params.pop(SIGNATURE, None)
    if signature is None:
        return params, query.encode("latin-1"), None
    last = fields[-1]
    if last.startswith("signature="):
        # Where clients put it: the payload is the query before `&signature=` (a name sent
        # twice was refused above, so this is the only one).
        return params, query[: max(len(query) - len(last) - 1, 0)].encode("latin-1"), signature
    fields = [f for f in fields if f.partition("=")[0] != SIGNATURE]
    return params, "&".join(fields).encode("latin-1"), signature


class SignedRequest(msgspec.Struct, frozen=True):
    """A verified signed request: its account, parameters (without `signature`) and time."""

    account_id: int
    params: Params
    timestamp: int


def _integer(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if value == "":
        raise errors.mandatory_param(name)
    if not (value.isascii() and value.lstrip("-").isdigit()) or len(value) > 19:
        raise _illegal(name)
    return int(value)


def check_timestamp(params: Mapping[str, str], now_ms: int) -> int:
    """Apply the `timestamp`/`recvWindow` rule of §1.4 and return the timestamp.

    Raises:
        BinanceAPIError: -1102 `timestamp` missing; -1100 not an integer; -1130 `recvWindow`
            outside 1..60000; -1021 ahead by 1000 ms or more, or older than `recvWindow`.
    """
    timestamp = _integer(params, "timestamp")
    if timestamp is None:
        raise errors.mandatory_param("timestamp")
    window = _integer(params, "recvWindow")
    if window is None:
        window = DEFAULT_RECV_WINDOW_MS
    elif not 0 < window <= MAX_RECV_WINDOW_MS:
        raise errors.invalid_parameter("recvWindow")
    if timestamp >= now_ms + AHEAD_TOLERANCE_MS:
        raise BinanceAPIError(
            -1021, "Timestamp for this request was 1000ms ahead of the server's time.", 400
        )
    if now_ms - timestamp > window:
        raise BinanceAPIError(
            -1021, "Timestamp for this request is outside of the recvWindow.", 400
        )
    return timestamp


def bad_signature() -> BinanceAPIError:
    return BinanceAPIError(-1022, "Signature for this request is not valid.", 400)


def verify_rest(
    key: SigningKey | None,
    api_key_valid_format: bool,
    query: str,
    body: bytes,
    now_ms: int,
) -> SignedRequest:
    """Verify a TRADE / USER_DATA REST request (§1.2-§1.4), in the order of §4.1 row 1:
    API key, signature, timestamp.

    Args:
        key: the key registered for the request's `X-MBX-APIKEY`, None when unknown.
        api_key_valid_format: False when the header is missing or cannot be a key (-2014).
        query, body: exactly as received.
        now_ms: the server's time.

    Raises:
        BinanceAPIError: -2014, -2015, -1101, -1100, -1102 (`signature`/`timestamp` missing),
            -1022, -1130, -1021.
    """
    if not api_key_valid_format:
        raise errors.api_key_format_invalid()
    if key is None:
        raise errors.api_key_rejected()
    if not body and "%" not in query and "+" not in query:
        params, payload, signature = _plain_query(query)
    else:
        params = parse_params(query, body)
        payload, signature = split_signature(query, body)
        params.pop(SIGNATURE, None)
    if not signature:
        raise errors.mandatory_param(SIGNATURE)
    if not key.verifies(signature, payload):
        raise bad_signature()
    timestamp = check_timestamp(params, now_ms)
    return SignedRequest(key.account_id, params, timestamp)


def _ws_value(value: object, python_bools: bool) -> str:
    if isinstance(value, bool):
        if python_bools:
            return "True" if value else "False"
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(type(value).__name__)


def ws_payload(params: Mapping[str, object], python_bools: bool = False) -> bytes:
    """The payload a WebSocket API request signs: params but `signature`, sorted by name,
    url-encoded (the official SDK's `websocket_api_signature`, §3). Booleans render as JSON
    does (`true`), or as Python's `str()` does (`True`) when `python_bools`."""
    items = sorted((k, _ws_value(v, python_bools)) for k, v in params.items() if k != SIGNATURE)
    return urlencode(items).encode("utf-8")


def verify_ws_params(key: SigningKey, params: Mapping[str, object], now_ms: int) -> Params:
    """Verify a signed WebSocket API request's params; returns them as strings, minus
    `apiKey` and `signature`.

    Raises:
        BinanceAPIError: -1102 (`signature`/`timestamp` missing), -1100 (a value that is not
            a string, number or bool), -1022, -1130, -1021.
    """
    signature = params.get(SIGNATURE)
    if not isinstance(signature, str) or not signature:
        raise errors.mandatory_param(SIGNATURE)
    try:
        payload = ws_payload(params)
    except TypeError:
        raise _illegal("params") from None
    ok = key.verifies(signature, payload)
    if not ok and any(isinstance(v, bool) for v in params.values()):
        # The official SDK stringifies with Python's `str()`: `True`, not `true`.
        ok = key.verifies(signature, ws_payload(params, python_bools=True))
    if not ok:
        raise bad_signature()
    strings = {k: _ws_value(v, False) for k, v in params.items() if k not in (SIGNATURE, "apiKey")}
    check_timestamp(strings, now_ms)
    return strings
