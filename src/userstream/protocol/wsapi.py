"""WebSocket API (`/ws-fapi/v1`) request/response envelope and method table (spec §3).

Sans-I/O: `parse_request` turns one text frame into a `WsApiRequest` or raises
`WsApiRequestError`; `response_ok` / `response_error` turn a result back into the bytes of one
text frame. The caller (the server adapter) owns the socket, the rate limiter and the clock.

Envelope (spec §3.2; spot WS API "Request format" / "Response format", which the futures page
mirrors): request `{"id", "method", "params"?}`; response `{"id", "status", "result"|"error",
"rateLimits"?}` in that field order, `rateLimits` omitted when the caller passes `None`.

Envelope errors. Binance answers a malformed envelope with status 400 and a message of the form
"Invalid '<field>' in JSON request; expected ...", with `id: null` when the id itself could not
be used. Observed answers:

* `{"id":null,"status":400,"error":{"code":-1000,"msg":"Invalid 'id' in JSON request; expected
  an integer, a string matching '^[a-zA-Z0-9-_]{1,36}$', or null."}}` — test fixture of a
  third-party Rust client for USDⓈ-M ws-fapi (order/positionRisk models, ORDERS 10s/300 +
  1m/1200 rate limits), found via the code-search corpus;
* the same message with code -1135 on spot `ws-api.testnet.binance.vision/ws-api/v3`
  (observation logged 2026-03-10 in a public project's WORK log; the socket was then closed
  1008) and on Binance.US (`binance-us/binance-us-api-docs` issue #126, for 'params');
* `{"status":400,"error":{"code":-1000,"msg":"Invalid 'params' in JSON request; expected an
  object."}}` on spot ws-api (public project diagnostic log).

Spot moved these to -1135 INVALID_JSON ("Invalid JSON Request", spot `errors.md`, introduced
2022-12-05 per spot CHANGELOG); the USDⓈ-M error-code page has no -1135, so for ws-fapi we answer
-1000 (`ENVELOPE_ERROR_CODE`), the code seen on the futures fixture.

Unknown method: no Binance page, SDK or observation of the exact answer was found (searched the
spot and futures WS API docs, binance-connector-python, issue trackers). We answer status 400,
code -1000, "Unknown method '<name>'." — same status/code family as the other envelope errors
[UNCONFIRMED].

Missing `apiKey`: spot testnet answers `session.logon` with `params: {}` with status 400, -1102
"Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed." (public observation
tables, 2026), the same shape as the futures doc example for 'quantity' (spec §3.2). A malformed
key gets 401 -2014 "API-key format invalid." (spec §3.2, 3P-OBS 2026-09).
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from userstream.exceptions import BinanceAPIError
from userstream.protocol import errors

__all__ = [
    "ENVELOPE_ERROR_CODE",
    "HANDSHAKE_WEIGHT",
    "METHOD_WEIGHTS",
    "SESSION_METHODS",
    "USER_DATA_STREAM_METHODS",
    "RateLimitStatus",
    "SessionStatus",
    "WsApiRequest",
    "WsApiRequestError",
    "parse_request",
    "required_api_key",
    "response_error",
    "response_ok",
    "unknown_method",
]

ENVELOPE_ERROR_CODE: Final = errors.UNKNOWN
"""Code for envelope errors on ws-fapi (-1000; spot uses -1135, absent from the futures list)."""

USER_DATA_STREAM_METHODS: Final[frozenset[str]] = frozenset(
    {"userDataStream.start", "userDataStream.ping", "userDataStream.stop"}
)
SESSION_METHODS: Final[frozenset[str]] = frozenset(
    {"session.logon", "session.status", "session.logout"}
)

HANDSHAKE_WEIGHT: Final = 5
"""Request weight of opening a WebSocket API connection, charged to the IP's REQUEST_WEIGHT
(spec §3.1: "Handshake costs weight 5")."""

METHOD_WEIGHTS: Final[dict[str, int]] = {
    # spec §3.4: weight 1 each.
    "userDataStream.start": 1,
    "userDataStream.ping": 1,
    "userDataStream.stop": 1,
    # Trading methods (trading spec §3; Binance "WebSocket API" pages of each method): orders
    # cost no IP weight, as on REST (§7); account reads cost what their REST routes cost.
    "session.logon": 2,
    "session.status": 2,
    "session.logout": 2,
    "order.place": 0,
    "order.modify": 0,
    "order.cancel": 1,
    "order.status": 1,
    "account.status": 5,
    "account.balance": 5,
    "account.position": 5,
    "algoOrder.place": 0,
    "algoOrder.cancel": 1,
}
"""Request weight of each method this server answers. Rejected requests cost weight too
(spec §6.3: "a 400 still costs weight"); charge `METHOD_WEIGHTS.get(method, 1)`."""

_MAX_INT64: Final = 2**63 - 1
_ID_PATTERN: Final = re.compile(r"[a-zA-Z0-9\-_]{1,36}")
# Binance's own wording of the rule, echoed verbatim in the error message.
_ID_ERROR: Final = (
    "Invalid 'id' in JSON request; expected an integer, a string matching "
    "'^[a-zA-Z0-9-_]{1,36}$', or null."
)
# Method names may carry an explicit version prefix (spec §3.2, e.g. "v2/account.status").
_VERSION_PREFIX: Final = re.compile(r"v[0-9]+/")
# Binance keys are 64 alphanumerics (spec §2.1); we only reject what cannot be a key at all,
# so keys issued by other tools still reach the account lookup (which answers -2015).
_API_KEY_PATTERN: Final = re.compile(r"[\x21-\x7e]{1,256}")


class RateLimitStatus(msgspec.Struct, frozen=True, rename="camel"):
    """One `rateLimits` item: `{"rateLimitType","interval","intervalNum","limit","count"}`,
    encoded as is."""

    rate_limit_type: str
    interval: str
    interval_num: int
    limit: int
    count: int


class WsApiRequest(msgspec.Struct, frozen=True):
    """A parsed WebSocket API request.

    Attributes:
        id: The request id exactly as sent (`int`, `str` or `None`); echo it back unchanged.
        method: The method name without a version prefix, one of `METHOD_WEIGHTS`.
        params: The request params, minus `returnRateLimits`.
        return_rate_limits: The per-request `params.returnRateLimits` override, or `None` to use
            the connection default (`?returnRateLimits=` in the URL, default true).
    """

    id: object
    method: str
    params: dict[str, object]
    return_rate_limits: bool | None
    version: str = ""  # "v2" for `v2/account.status` and the like


class SessionStatus(msgspec.Struct, rename="camel"):
    """The result of `session.logon` / `.status` / `.logout` (trading spec §3)."""

    api_key: str | None
    authorized_since: int | None
    connected_since: int
    return_rate_limits: bool
    server_time: int


class WsApiRequestError(BinanceAPIError):
    """A request that must be answered with an error envelope.

    `id` is the request id when it could be parsed, else `None`. Answer with
    `response_error(err.id, err.status, err.code, err.msg, rate_limits)`.
    """

    def __init__(self, id: object, status: int, code: int, msg: str) -> None:
        super().__init__(code, msg, status)
        self.id = id

    @classmethod
    def from_api_error(cls, id: object, err: BinanceAPIError) -> WsApiRequestError:
        return cls(id, err.status, err.code, err.msg)


class _ErrorBody(msgspec.Struct):
    code: int
    msg: str


class _OkEnvelope(msgspec.Struct, omit_defaults=True):
    id: object
    status: int
    result: object
    rate_limits: list[RateLimitStatus] | None = msgspec.field(default=None, name="rateLimits")


class _ErrorEnvelope(msgspec.Struct, omit_defaults=True):
    id: object
    status: int
    error: _ErrorBody
    rate_limits: list[RateLimitStatus] | None = msgspec.field(default=None, name="rateLimits")


_decoder: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()


def _envelope_error(id: object, field: str, expected: str) -> WsApiRequestError:
    return WsApiRequestError(
        id, 400, ENVELOPE_ERROR_CODE, f"Invalid '{field}' in JSON request; expected {expected}."
    )


def _valid_id(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -_MAX_INT64 - 1 <= value <= _MAX_INT64
    if isinstance(value, str):
        return _ID_PATTERN.fullmatch(value) is not None
    return False


def parse_request(message: bytes | str) -> WsApiRequest:
    """Parse one WebSocket API text frame.

    Raises:
        WsApiRequestError: The frame is not a valid request; answer it with `response_error`
            using the error's `id` (`None` unless the id was parsed), `status`, `code`, `msg`.
    """
    try:
        doc = _decoder.decode(message)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        raise WsApiRequestError(None, 400, ENVELOPE_ERROR_CODE, "Invalid JSON request.") from None
    if not isinstance(doc, dict):
        raise WsApiRequestError(None, 400, ENVELOPE_ERROR_CODE, "Invalid JSON request.")

    # spec §3.2: `id` is mandatory; an absent or unusable id is answered with id null.
    if "id" not in doc or not _valid_id(doc["id"]):
        raise WsApiRequestError(None, 400, ENVELOPE_ERROR_CODE, _ID_ERROR)
    req_id = doc["id"]

    method = doc.get("method")
    if not isinstance(method, str) or not method:
        raise _envelope_error(req_id, "method", "a string")

    params = doc.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise _envelope_error(req_id, "params", "an object")

    name = method
    version = ""
    # A known name carries no prefix (none starts with "v<digits>/"): only others are matched.
    prefix = _VERSION_PREFIX.match(name) if name not in METHOD_WEIGHTS else None
    if prefix is not None:
        name = name[prefix.end() :]
        version = prefix.group()[:-1]
    if name not in METHOD_WEIGHTS:
        raise _unknown_method(req_id, method)

    # `params` is this frame's own decoded dict: taken as is, not copied.
    return_rate_limits: bool | None = None
    if "returnRateLimits" in params:
        flag = params.pop("returnRateLimits")
        if not isinstance(flag, bool):
            raise WsApiRequestError.from_api_error(
                req_id, errors.invalid_parameter("returnRateLimits")
            )
        return_rate_limits = flag

    return WsApiRequest(
        id=req_id,
        method=name,
        params=params,
        return_rate_limits=return_rate_limits,
        version=version,
    )


def _unknown_method(id: object, method: str) -> WsApiRequestError:
    # No Binance source for this answer was found; see the module docstring [UNCONFIRMED].
    return WsApiRequestError(id, 400, ENVELOPE_ERROR_CODE, f"Unknown method '{method}'.")


def unknown_method(req: WsApiRequest) -> WsApiRequestError:
    """The error for a parsed request whose method the server has no handler for."""
    return _unknown_method(req.id, req.method)


def required_api_key(req: WsApiRequest) -> str:
    """Return `params.apiKey`, which `userDataStream.*` need unless the session is logged on.

    Raises:
        WsApiRequestError: 400 -1102 when `apiKey` is absent, null, empty or not a string;
            401 -2014 when it cannot be an API key (non-printable/non-ASCII or over 256 chars).
            Whether the key exists is the caller's check (-2015).
    """
    key = req.params.get("apiKey")
    if not isinstance(key, str) or not key:
        raise WsApiRequestError.from_api_error(req.id, errors.mandatory_param("apiKey"))
    if _API_KEY_PATTERN.fullmatch(key) is None:
        raise WsApiRequestError.from_api_error(req.id, errors.api_key_format_invalid())
    return key


def response_ok(id: object, result: object, rate_limits: list[RateLimitStatus] | None) -> bytes:
    """Encode `{"id","status":200,"result","rateLimits"?}`; `rateLimits` omitted when None."""
    return _encoder.encode(_OkEnvelope(id, 200, result, rate_limits))


def response_error(
    id: object, status: int, code: int, msg: str, rate_limits: list[RateLimitStatus] | None
) -> bytes:
    """Encode `{"id","status","error":{"code","msg"},"rateLimits"?}`."""
    return _encoder.encode(_ErrorEnvelope(id, status, _ErrorBody(code, msg), rate_limits))
