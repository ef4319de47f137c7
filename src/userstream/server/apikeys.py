"""API keys that sign trading requests: each account's HMAC key (its `apiKey`/`secretKey`)
and the Ed25519 public keys registered for it through the admin API.

Binance issues an API key for an Ed25519 public key the user uploads (trading spec §1.3);
`POST /admin/v1/accounts/{id}/apiKeys` with `{"publicKey": "<PEM>"}` does the same here and
answers the new API key. Registered keys live in the data folder's SQLite database
(`ed25519_keys`), so they survive a restart; the listenKey routes accept them like any key.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from userstream.accounts import Account, AccountStore, looks_like_api_key, new_credentials
from userstream.protocol.signing import SigningKey

SCHEMA = """
CREATE TABLE IF NOT EXISTS ed25519_keys (
    api_key     TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    public_key  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
"""


class Ed25519Key:
    """A PEM `PUBLIC KEY` (SubjectPublicKeyInfo) holding an Ed25519 key, loaded once."""

    __slots__ = ("_key", "pem")

    def __init__(self, pem: str) -> None:
        try:
            key = load_pem_public_key(pem.encode("ascii"))
        except (ValueError, UnicodeError) as exc:
            raise ValueError(f"publicKey is not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("publicKey is not an Ed25519 public key")
        self._key = key
        self.pem = pem

    def verify(self, signature: bytes, payload: bytes) -> bool:
        try:
            self._key.verify(signature, payload)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Registered:
    api_key: str
    account_id: int


class ApiKeys:
    """Finds the signing key of an `X-MBX-APIKEY` (HMAC account keys first, then Ed25519)."""

    def __init__(self, accounts: AccountStore, db: sqlite3.Connection | None) -> None:
        self._accounts = accounts
        self._db = db
        self._ed25519: dict[str, SigningKey] = {}
        # Each account's HMAC key as last built, with the account it was built from: reused
        # only while the store still answers that very account for the API key, so a key
        # the store no longer knows, or now maps to another account or secret, never
        # verifies with the old secret.
        self._hmac: dict[str, tuple[Account, SigningKey]] = {}
        if db is not None:
            db.executescript(SCHEMA)
            for api_key, account_id, pem in db.execute(
                "SELECT api_key, account_id, public_key FROM ed25519_keys"
            ):
                self._ed25519[api_key] = SigningKey.for_ed25519(account_id, Ed25519Key(pem))

    async def signing_key(self, api_key: str | None) -> SigningKey | None:
        """The key to verify with; None when unknown (the caller answers -2015)."""
        if not api_key or not looks_like_api_key(api_key):
            return None
        key = self._ed25519.get(api_key)
        if key is not None:
            return key
        account = await self._accounts.by_api_key(api_key)
        if account is None:
            self._hmac.pop(api_key, None)
            return None
        cached = self._hmac.get(api_key)
        if cached is not None and cached[0] is account:
            return cached[1]
        key = SigningKey.for_hmac(account.id, account.secret_key)
        self._hmac[api_key] = (account, key)
        return key

    async def ed25519_owner(self, api_key: str) -> Account | None:
        """The account an Ed25519 API key was registered for (listenKey routes take it)."""
        account_id = self.ed25519_account(api_key)
        return None if account_id is None else await self._accounts.by_id(account_id)

    def ed25519_account(self, api_key: str) -> int | None:
        key = self._ed25519.get(api_key)
        return None if key is None else key.account_id

    def register_ed25519(self, account: Account, pem: str, now_ms: int) -> Registered:
        """Register an Ed25519 public key for `account` and return its new API key.

        Raises:
            ValueError: `pem` is not an Ed25519 public key in PEM form.
        """
        verifier = Ed25519Key(pem)
        api_key, _ = new_credentials()
        if self._db is not None:
            self._db.execute(
                "INSERT INTO ed25519_keys (api_key, account_id, public_key, created_ms) "
                "VALUES (?, ?, ?, ?)",
                (api_key, account.id, pem, now_ms),
            )
        self._ed25519[api_key] = SigningKey.for_ed25519(account.id, verifier)
        return Registered(api_key, account.id)
