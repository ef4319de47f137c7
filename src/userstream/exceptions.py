"""The one error tree of `userstream`.

    UserStreamError
    ├── BinanceAPIError(code, msg, status)     an error answer in Binance's {"code","msg"} shape
    │   ├── ListenKeyNotFound                  -1125: the key expired or was closed; POST a new one
    │   ├── InvalidAPIKey                      -2014 / -2015: the API key is malformed or unknown
    │   └── RateLimited                        -1003 with HTTP 429 or 418 (banned)
    ├── EventValidationError(path, reason)     an inbound event does not match the protocol models
    ├── ConfigurationError                     bad settings given to the server or client
    ├── TransportError                         the client could not reach Binance or read its answer
    └── ReconnectGaveUp                        the client's (finite) backoff ran out of attempts

Protocol outcomes are never signalled with bare builtins such as `RuntimeError`.
"""

from __future__ import annotations


class UserStreamError(Exception):
    """Root of every error raised by `userstream`."""


class BinanceAPIError(UserStreamError):
    """An error answer in Binance's shape: `{"code": <negative int>, "msg": "..."}`.

    `status` is the HTTP status (REST) or the WebSocket API envelope `status`.
    """

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


class ListenKeyNotFound(BinanceAPIError):
    """-1125: the listenKey does not exist; POST /fapi/v1/listenKey to get a new one."""


class InvalidAPIKey(BinanceAPIError):
    """-2014 (format) or -2015 (unknown key, IP or permissions)."""


class RateLimited(BinanceAPIError):
    """-1003: request weight exceeded (429) or the IP is banned (418)."""

    def __init__(self, code: int, msg: str, status: int, retry_after_ms: int) -> None:
        super().__init__(code, msg, status)
        self.retry_after_ms = retry_after_ms


class EventValidationError(UserStreamError):
    """An event offered to the server does not match the protocol models.

    `path` names the offending field, e.g. `o.q` or `[2].E`.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


class ConfigurationError(UserStreamError):
    """Settings that cannot work, found before anything is started."""


class TransportError(UserStreamError):
    """The client could not reach Binance, or got an answer it cannot read.

    Transient by nature: `UserDataStream` retries it with backoff; a direct caller of a
    `ListenKeyClient` may retry too.
    """


class ReconnectGaveUp(UserStreamError):
    """A `UserDataStream` built with a finite `Backoff(max_attempts=...)` used every attempt.

    The default backoff is unlimited, so this is raised only when the caller asked for it.
    """
