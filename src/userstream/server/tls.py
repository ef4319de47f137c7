"""TLS on the server's own port (`serve --tls-cert/--tls-key`): https:// and wss:// for REST,
streams and the WebSocket API, for clients that refuse plain schemes, without a proxy."""

from __future__ import annotations

import ssl
from pathlib import Path

from userstream.exceptions import ConfigurationError


def server_context(cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """A server context from a PEM certificate chain and its private key (TLS 1.2+).

    HTTP/1.1 only: WebSocket upgrades need it, so ALPN offers nothing else."""
    if cert is None or key is None:
        raise ConfigurationError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigurationError(
            f"cannot load the TLS certificate {cert} / key {key}: {error}"
        ) from error
    return context
