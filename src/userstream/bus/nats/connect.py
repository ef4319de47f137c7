"""How a gateway authenticates to NATS (`serve --bus ... --nats-creds/--nats-tls-*`).

Whoever can publish on the event stream's subjects or write the key-value buckets can inject
events into any account or rewrite its listenKeys, so production NATS must admit only the
gateways and producers (docs/deployment.md, "Locking NATS down"). nats-py takes user/password
or a token in the URL itself (`nats://user:pass@host:4222`, `nats://token@host:4222`); this adds
a `.creds` file (a user JWT and nkey seed, decentralised auth) and TLS with a CA and a client
certificate (mutual TLS). `tls://` URLs or a CA turn TLS on.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from userstream.exceptions import ConfigurationError


@dataclass(frozen=True, slots=True)
class NatsOptions:
    creds: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `nats.connect` (nats-py) beyond the server list."""
        kwargs: dict[str, Any] = {}
        if self.creds is not None:
            if not self.creds.is_file():
                raise ConfigurationError(f"--nats-creds: no such file {self.creds}")
            kwargs["user_credentials"] = str(self.creds)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigurationError("--nats-tls-cert and --nats-tls-key go together")
        if self.tls_ca is not None or self.tls_cert is not None:
            kwargs["tls"] = self.tls_context()
        return kwargs

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        try:
            if self.tls_ca is not None:
                context.load_verify_locations(cafile=self.tls_ca)
            if self.tls_cert is not None and self.tls_key is not None:
                context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(f"cannot load the NATS TLS files: {error}") from error
        return context


class NatsRefused(ConfigurationError):
    """NATS turned this gateway away (credentials or TLS): retrying cannot help."""


def is_refusal(error: Exception) -> bool:
    """An answer that does not change on retry: a rejected user, password, token or creds, or
    a TLS handshake that failed (no or untrusted certificate on either side)."""
    text = str(error).lower()
    return (
        isinstance(error, ssl.SSLError)
        or "authorization violation" in text
        or ("authentication" in text)
    )


@dataclass(frozen=True, slots=True)
class NatsStatus:
    """The NATS side of a gateway, for /metrics."""

    connected: bool
    reconnects: int
    pending: int  # messages of followed accounts not yet delivered here (the consumers' lag)
