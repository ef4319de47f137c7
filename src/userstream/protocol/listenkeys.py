"""listenKey rules, given `now` (spec §2.1–2.3, §3.4).

- A key is 64 alphanumeric characters and is valid for 60 minutes after creation.
- POST (or `userDataStream.start`) on an account with an active key returns the same key and
  extends it by 60 minutes; otherwise it issues a new key. One active key per account.
- PUT (or `userDataStream.ping`) extends the active key by 60 minutes; with none: -1125.
- DELETE (or `userDataStream.stop`) invalidates the key; with none: -1125.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from userstream.protocol import errors

VALIDITY_MS = 60 * 60 * 1000
KEY_LENGTH = 64
_ALPHABET = string.ascii_letters + string.digits


def new_listen_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))


@dataclass(frozen=True, slots=True)
class ListenKey:
    account_id: int
    key: str
    expires_ms: int

    def alive(self, now_ms: int) -> bool:
        return now_ms < self.expires_ms

    def extended(self, now_ms: int) -> ListenKey:
        return ListenKey(self.account_id, self.key, now_ms + VALIDITY_MS)


def issue(account_id: int, current: ListenKey | None, now_ms: int) -> ListenKey:
    """The key POST returns: the live one extended, or a fresh one."""
    if current is not None and current.alive(now_ms):
        return current.extended(now_ms)
    return ListenKey(account_id, new_listen_key(), now_ms + VALIDITY_MS)


def require_live(current: ListenKey | None, now_ms: int) -> ListenKey:
    """The key PUT extends and DELETE ends: the account's live key; with none, -1125 "This
    listenKey does not exist." (spec §2.2, §2.3)."""
    if current is None or not current.alive(now_ms):
        raise errors.listen_key_not_found()
    return current
