"""Accounts and their API keys (SQLite in the embedded default; the `AccountStore` protocol
in `bus/base.py`, NATS JetStream KV in distributed mode)."""

from __future__ import annotations

import secrets
import sqlite3
import string
from dataclasses import dataclass
from typing import Protocol

_ALPHABET = string.ascii_letters + string.digits
API_KEY_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    api_key: str
    secret_key: str

    def __repr__(self) -> str:  # secrets never appear in logs or reprs
        return f"Account(id={self.id}, name={self.name!r})"

    def credentials(self) -> dict[str, object]:
        return {"accountId": self.id, "apiKey": self.api_key, "secretKey": self.secret_key}


def _random_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(API_KEY_LENGTH))


def new_credentials() -> tuple[str, str]:
    """A fresh (API key, secret key) pair."""
    return _random_key(), _random_key()


def looks_like_api_key(value: str) -> bool:
    """Binance API keys are 64 alphanumeric characters; anything else is -2014."""
    return len(value) == API_KEY_LENGTH and value.isascii() and value.isalnum()


class AccountStore(Protocol):
    """Accounts and their API keys; an account created on one node is found on every node.

    Lifecycle: `await open()` before use, `await aclose()` after (no-ops for SQLite).
    """

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def create(self, name: str, now_ms: int) -> Account:
        """A new account with fresh API and secret keys and the next free id."""
        ...

    async def by_api_key(self, api_key: str) -> Account | None: ...

    async def by_id(self, account_id: int) -> Account | None: ...

    def all(self) -> list[Account]:
        """Every account (as far as this node has seen, for a shared backend), by id."""
        ...

    def __len__(self) -> int:
        """How many accounts exist (as far as this node has seen, for a shared backend)."""
        ...


class SqliteAccountStore:
    """Accounts in SQLite, with API-key lookups served from memory."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._by_api_key: dict[str, Account] = {}
        self._by_id: dict[int, Account] = {}
        for row in db.execute("SELECT id, name, api_key, secret_key FROM accounts"):
            self._remember(Account(*row))

    def _remember(self, account: Account) -> None:
        self._by_api_key[account.api_key] = account
        self._by_id[account.id] = account

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def create(self, name: str, now_ms: int) -> Account:
        return self.create_now(name, now_ms)

    def create_now(self, name: str, now_ms: int) -> Account:
        """`create` for synchronous callers that own the database (the CLI, tests)."""
        api_key, secret_key = new_credentials()
        cursor = self._db.execute(
            "INSERT INTO accounts (name, api_key, secret_key, created_ms) VALUES (?, ?, ?, ?)",
            (name, api_key, secret_key, now_ms),
        )
        assert cursor.lastrowid is not None
        account = Account(cursor.lastrowid, name, api_key, secret_key)
        self._remember(account)
        return account

    async def by_api_key(self, api_key: str) -> Account | None:
        account = self._by_api_key.get(api_key)
        if account is None:  # created by another process (`userstream account create`)
            account = self._load("api_key = ?", api_key)
        return account

    async def by_id(self, account_id: int) -> Account | None:
        account = self._by_id.get(account_id)
        if account is None:
            account = self._load("id = ?", account_id)
        return account

    def all(self) -> list[Account]:
        rows = self._db.execute("SELECT id, name, api_key, secret_key FROM accounts ORDER BY id")
        return [Account(*row) for row in rows]

    def _load(self, where: str, value: object) -> Account | None:
        row = self._db.execute(
            f"SELECT id, name, api_key, secret_key FROM accounts WHERE {where}", (value,)
        ).fetchone()
        if row is None:
            return None
        account = Account(*row)
        self._remember(account)
        return account

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM accounts").fetchone()
        return int(count)
