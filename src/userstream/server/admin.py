"""The admin API: how accounts, events and faults get in (issue #2, "Admin API").

JSON over HTTP under `/admin/v1/`, on the same port as everything else, guarded by a bearer
token. Errors use Binance's `{"code","msg"}` shape; validation errors add `"field"`.

`POST /admin/v1/accounts/{id}/events` answers `{"accepted": n, "connections": c}`. A 200 means
the n events were validated and handed, in order, to the stream connections of the account's
live listenKey that were open at that moment and subscribed to at least one of them: c of
them (0 with no live key or no connection). It is not a delivery receipt: an event still in a
connection's write buffer is lost with the connection or the process, and nothing is kept
for connections that open later (Binance has no replay either; a client resynchronises over
REST). In distributed mode (`serve --bus`) the batch is stored in JetStream and every gateway
that follows the account delivers it to its own connections, so this node cannot count them:
`connections` is null.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from userstream.accounts import AccountStore
from userstream.bus.base import EventBus
from userstream.clock import Clock, ManualClock
from userstream.exceptions import BinanceAPIError, EventValidationError
from userstream.protocol import errors
from userstream.protocol.codec import EncodedEvent, parse_admin_encoded
from userstream.protocol.wsframes import CloseCode, sendable_close_code
from userstream.server.http import Request, Response
from userstream.server.keys import ListenKeyService
from userstream.server.responses import error_response, json_response

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "/admin/v1/"
MAX_ADVANCE_MS = 400 * 24 * 3600 * 1000

UNAUTHORIZED = BinanceAPIError(-1002, "You are not authorized to execute this request.", 401)
NOT_FOUND = BinanceAPIError(errors.NOT_FOUND, "Not found.", 404)


def _bad(msg: str, status: int = 400) -> BinanceAPIError:
    return BinanceAPIError(errors.INVALID_PARAMETER, msg, status)


class _AccountName(msgspec.Struct, forbid_unknown_fields=True):
    name: str = "account"


class _Advance(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    ms: int
    step_ms: int = 60_000


class _Drop(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    account_id: int | None = None
    code: int = 1006


@dataclass(frozen=True, slots=True)
class AdminHooks:
    """What the admin API asks of the running server."""

    drop_connections: Callable[[int | None, int], int]
    stats: Callable[[], dict[str, Any]]
    # How many connections publishing these events for this account now reaches; None when
    # the bus delivers elsewhere too (distributed mode).
    audience: Callable[[int, Sequence[EncodedEvent]], int | None]
    advance: Callable[[int, int], Awaitable[None]]
    # `POST /admin/v1/market/<move>` (server/market_admin.py); None when no market is served.
    market: Callable[[str, Request], Awaitable[Response]] | None = None
    # The venue's operator routes (deposit, withdraw, API keys, commission): an answer, or
    # None when the path is not one of them.
    venue: Callable[[list[str], Request], Awaitable[Response | None]] | None = None


class AdminApi:
    def __init__(
        self,
        token: str,
        accounts: AccountStore,
        keys: ListenKeyService,
        bus: EventBus,
        clock: Clock,
        hooks: AdminHooks,
    ) -> None:
        self._token = token.encode()
        self._accounts = accounts
        self._keys = keys
        self._bus = bus
        self._clock = clock
        self._hooks = hooks

    def claims(self, path: str) -> bool:
        return path.startswith(PREFIX) or path == PREFIX.rstrip("/")

    async def handle(self, request: Request) -> Response:
        try:
            self._authorize(request)
            return await self._route(request)
        except EventValidationError as invalid:
            log.info("rejected %s %s from %s: 400 (%s)", *_seen(request), invalid.path)
            body = {"code": errors.INVALID_PARAMETER, "msg": str(invalid), "field": invalid.path}
            return json_response(400, body)
        except BinanceAPIError as error:
            # The token is never logged, not even shortened: it is the whole credential.
            log.info("rejected %s %s from %s: %d %d", *_seen(request), error.status, error.code)
            return error_response(error)

    def _authorize(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._token
        ):
            raise UNAUTHORIZED

    async def _route(self, request: Request) -> Response:
        parts = request.path[len(PREFIX) :].strip("/").split("/")
        method = request.method
        match parts:
            case ["accounts"] if method == "POST":
                return await self._create_account(request)
            case ["accounts"] if method == "GET":
                return self._list_accounts()
            case ["accounts", account_id, "events"] if method == "POST":
                return await self._publish(account_id, request)
            case ["clock"] if method == "GET":
                return json_response(200, self._clock_state())
            case ["clock", "advance"] if method == "POST":
                return await self._advance(request)
            case ["connections", "drop"] if method == "POST":
                drop = self._decode(request.body or b"{}", _Drop)
                # Only codes a close frame may carry: clients fail the connection on others.
                code = drop.code
                if not (code == CloseCode.ABNORMAL or sendable_close_code(code)):
                    raise _bad(
                        "code must be 1006 (drop without a close frame), 1000-1003, "
                        "1007-1014 or 3000-4999"
                    )
                return json_response(
                    200, {"dropped": self._hooks.drop_connections(drop.account_id, drop.code)}
                )
            case ["listenKeys", listen_key, "expire"] if method == "POST":
                record = await self._keys.expire_now(listen_key)
                if record is None:
                    # An admin path names a resource: an unknown key is 404 (like an unknown
                    # account), with Binance's -1125 body so clients read it the same way.
                    missing = errors.listen_key_not_found()
                    raise BinanceAPIError(missing.code, missing.msg, 404)
                return json_response(200, {"listenKey": listen_key, "accountId": record.account_id})
            case ["stats"] if method == "GET":
                return json_response(200, self._hooks.stats())
            case ["market", move] if self._hooks.market is not None:
                return await self._hooks.market(move, request)
        if self._hooks.venue is not None:
            answer = await self._hooks.venue(parts, request)
            if answer is not None:
                return answer
        raise NOT_FOUND

    @staticmethod
    def _decode(body: bytes, kind: type[T]) -> T:
        try:
            return msgspec.json.decode(body, type=kind)
        except msgspec.ValidationError as exc:
            raise _bad(f"Invalid request body: {exc}") from None
        except msgspec.DecodeError as exc:
            raise _bad(f"Invalid JSON: {exc}") from None

    async def _create_account(self, request: Request) -> Response:
        body = self._decode(request.body or b"{}", _AccountName)
        name = body.name.strip()
        if not name or len(name) > 100:
            raise _bad("name must be 1 to 100 characters")
        account = await self._accounts.create(name, self._clock.now_ms())
        return json_response(200, account.credentials())

    def _list_accounts(self) -> Response:
        """Every account's id, name and API key: enough to `listen` to any of them (the
        listenKey endpoints take the API key alone). Secret keys stay out of listings; they
        are shown once, when the account is created."""
        accounts = [
            {"accountId": account.id, "name": account.name, "apiKey": account.api_key}
            for account in self._accounts.all()
        ]
        return json_response(200, {"accounts": accounts})

    async def _publish(self, account_id: str, request: Request) -> Response:
        # More than 18 digits cannot be an SQLite INTEGER id (it would raise OverflowError: 500).
        valid = account_id.isdigit() and len(account_id) <= 18
        account = await self._accounts.by_id(int(account_id)) if valid else None
        if account is None:
            raise BinanceAPIError(errors.NOT_FOUND, f"No account {account_id!r}.", 404)
        # Validated once and kept as the bytes the connections get (docs/benchmarks.md).
        events = parse_admin_encoded(request.body, self._clock.now_ms())
        # Counted just before: the embedded bus hands the batch to the gateway inside
        # `publish`, without yielding, so these are the connections it goes to.
        connections = self._hooks.audience(account.id, events)
        await self._bus.publish(account.id, events)
        return json_response(200, {"accepted": len(events), "connections": connections})

    def _clock_state(self) -> dict[str, object]:
        return {"now": self._clock.now_ms(), "virtual": self._clock.is_virtual}

    async def _advance(self, request: Request) -> Response:
        if not isinstance(self._clock, ManualClock):
            raise _bad("the clock is real; start the server with --clock virtual", 409)
        body = self._decode(request.body, _Advance)
        if not 0 <= body.ms <= MAX_ADVANCE_MS:
            raise _bad(f"ms must be between 0 and {MAX_ADVANCE_MS}")
        if not 1_000 <= body.step_ms <= MAX_ADVANCE_MS:
            raise _bad(f"stepMs must be between 1000 and {MAX_ADVANCE_MS}")
        await self._hooks.advance(body.ms, body.step_ms)
        return json_response(200, self._clock_state())


def _seen(request: Request) -> tuple[str, str, str]:
    return request.method, request.path, request.client_ip
