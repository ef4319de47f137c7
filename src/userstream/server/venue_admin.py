"""The venue's operator routes under `/admin/v1/` (issue #12 items 4 and 8), behind the admin
API's bearer token:

- `POST /admin/v1/accounts/{id}/apiKeys` `{"publicKey": "<PEM>"}` registers an Ed25519
  public key and answers `{"accountId", "apiKey", "keyType": "ED25519"}`;
- `POST /admin/v1/accounts/{id}/deposit` and `/withdraw` `{"asset": "USDT", "amount":
  "10000"}` move the wallet (ACCOUNT_UPDATE m=DEPOSIT / WITHDRAW on the account's stream);
- `POST /admin/v1/accounts/{id}/commission` `{"maker": "0.0002", "taker": "0.0005"}` sets the
  account's rates (`GET /fapi/v1/commissionRate` serves them).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, TypeVar

import msgspec

from userstream.accounts import Account, AccountStore
from userstream.clock import Clock
from userstream.exceptions import BinanceAPIError
from userstream.protocol import errors
from userstream.server.apikeys import ApiKeys
from userstream.server.http import Request, Response
from userstream.server.responses import json_response

T = TypeVar("T")

Amount = Annotated[str, msgspec.Meta(pattern=r"^[0-9]+(\.[0-9]+)?$")]
_ASSET = re.compile(r"[A-Z0-9]{1,20}")


class RegisterKey(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    public_key: str


class Transfer(msgspec.Struct, forbid_unknown_fields=True):
    asset: str
    amount: Amount


class Commission(msgspec.Struct, forbid_unknown_fields=True):
    maker: Amount
    taker: Amount


def bad(msg: str, status: int = 400) -> BinanceAPIError:
    return BinanceAPIError(errors.INVALID_PARAMETER, msg, status)


def decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise bad(f"Invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise bad(f"Invalid JSON: {exc}") from None


def transfer_of(body: bytes) -> tuple[str, Decimal]:
    transfer = decode(body, Transfer)
    if _ASSET.fullmatch(transfer.asset) is None:
        raise bad("asset must be 1 to 20 upper-case letters or digits")
    amount = Decimal(transfer.amount)
    if amount <= 0:
        raise bad("amount must be positive")
    return transfer.asset, amount


def commission_of(body: bytes) -> tuple[Decimal, Decimal]:
    rates = decode(body, Commission)
    maker, taker = Decimal(rates.maker), Decimal(rates.taker)
    if maker >= 1 or taker >= 1:
        raise bad("rates are fractions below 1 (0.0002 is 0.02 %)")
    return maker, taker


AccountAction = Callable[[Account, Request], Awaitable[Response]]


class VenueAdmin:
    """Answers the venue's admin paths; `actions` maps `accounts/{id}/<name>` to handlers."""

    def __init__(self, accounts: AccountStore, api_keys: ApiKeys, clock: Clock) -> None:
        self._accounts = accounts
        self._api_keys = api_keys
        self._clock = clock
        self.actions: dict[str, AccountAction] = {"apiKeys": self._register_key}

    async def handle(self, parts: list[str], request: Request) -> Response | None:
        match parts:
            case ["accounts", account_id, action] if (
                request.method == "POST" and action in self.actions
            ):
                account = await self._account(account_id)
                return await self.actions[action](account, request)
        return None

    async def _account(self, account_id: str) -> Account:
        valid = account_id.isdigit() and len(account_id) <= 18
        account = await self._accounts.by_id(int(account_id)) if valid else None
        if account is None:
            raise BinanceAPIError(errors.NOT_FOUND, f"No account {account_id!r}.", 404)
        return account

    async def _register_key(self, account: Account, request: Request) -> Response:
        body = decode(request.body, RegisterKey)
        try:
            registered = self._api_keys.register_ed25519(
                account, body.public_key, self._clock.now_ms()
            )
        except ValueError as exc:
            raise bad(str(exc)) from None
        return json_response(
            200,
            {"accountId": account.id, "apiKey": registered.api_key, "keyType": "ED25519"},
        )
