"""A NATS that only the gateways can use (issue #15): a real nats-server requiring a password
and mutual TLS with certificates made here; a gateway with both works end to end, a client
missing either is refused."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Harness, event_fixture, running_harness
from tests.functional.wsclient import recv_json, ws_connect
from tests.nats_fixtures import NatsServer, free_ports
from userstream.bus.nats import NatsOptions, NatsRefused, open_backends

USER, PASSWORD = "gateway", "gateway-password-for-tests"
REFUSED_TIMEOUT_S = 10.0


@dataclass
class LockedNatsServer(NatsServer):
    """`NatsServer` that admits only `USER` with its password, over TLS with a client
    certificate signed by the test's CA (the config docs/deployment.md recommends)."""

    tls_dir: Path = Path()

    def config_text(self) -> str:
        tls = {
            "cert_file": str(self.tls_dir / "server.pem"),
            "key_file": str(self.tls_dir / "server.key"),
            "ca_file": str(self.tls_dir / "ca.pem"),
        }
        lines = ["tls {", *(f"  {k}: {json.dumps(v)}" for k, v in tls.items())]
        lines += ["  verify: true", "}", "authorization {", "  users: ["]
        lines += [f"    {{user: {json.dumps(USER)}, password: {json.dumps(PASSWORD)}}}", "  ]", "}"]
        return super().config_text() + "\n".join(lines) + "\n"


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca = trustme.CA()
    directory = tmp_path / "pki"
    directory.mkdir()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    for name, identity in (("server", "127.0.0.1"), ("client", "gateway@userstream.test")):
        cert = ca.issue_cert(identity)
        cert.private_key_pem.write_to_path(str(directory / f"{name}.key"))
        (directory / f"{name}.pem").write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
    return directory


@pytest.fixture
def locked_nats(tmp_path: Path, pki: Path) -> Iterator[LockedNatsServer]:
    port, monitor_port = free_ports(2)
    server = LockedNatsServer("n1", tmp_path / "nats", port, monitor_port, tls_dir=pki)
    server.start()
    yield server
    server.stop()


def options(pki: Path, client_cert: bool = True) -> NatsOptions:
    if not client_cert:
        return NatsOptions(tls_ca=pki / "ca.pem")
    return NatsOptions(None, pki / "ca.pem", pki / "client.pem", pki / "client.key")


async def test_gateway_with_password_and_client_certificate_works(
    tmp_path: Path, pki: Path, locked_nats: LockedNatsServer
) -> None:
    url = f"tls://{USER}:{PASSWORD}@127.0.0.1:{locked_nats.port}"
    async with running_harness(
        tmp_path / "data",
        bus=url,
        nats_tls_ca=pki / "ca.pem",
        nats_tls_cert=pki / "client.pem",
        nats_tls_key=pki / "client.key",
    ) as server:
        status, body = await server.admin("POST", "accounts", {"name": "trader"})
        assert status == 200, body
        async with server.http.post(
            f"{server.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": body["apiKey"]}
        ) as response:
            key = (await response.json())["listenKey"]
        async with ws_connect(f"{server.ws}/ws/{key}") as ws:
            event = event_fixture("order_trade_update_doc")
            for _ in range(100):  # the gateway follows the account on the bus asynchronously
                if server.server.cluster is not None and server.server.cluster.followed:
                    break
                await asyncio.sleep(0.02)
            status, _ = await server.admin("POST", f"accounts/{body['accountId']}/events", [event])
            assert status == 200
            assert (await recv_json(ws))["e"] == "ORDER_TRADE_UPDATE"
        async with server.http.get(f"{server.url}/ready") as ready:
            assert ready.status == 200
        async with server.http.get(f"{server.url}/metrics") as scraped:
            families = {f.name: f for f in text_string_to_metric_families(await scraped.text())}
        assert families["userstream_nats_connected"].samples[0].value == 1
        assert "userstream_nats_pending_messages" in families


@pytest.mark.parametrize(
    ("url_auth", "client_cert", "scheme"),
    [
        ("", True, "tls"),  # no password
        (f"{USER}:wrong@", True, "tls"),  # wrong password
        (f"{USER}:{PASSWORD}@", False, "tls"),  # no client certificate
        (f"{USER}:{PASSWORD}@", True, "nats"),  # no TLS at all
    ],
    ids=["no-password", "wrong-password", "no-client-cert", "plain"],
)
async def test_clients_without_credentials_are_refused(
    pki: Path, locked_nats: LockedNatsServer, url_auth: str, client_cert: bool, scheme: str
) -> None:
    url = f"{scheme}://{url_auth}127.0.0.1:{locked_nats.port}"
    chosen = options(pki, client_cert) if scheme == "tls" else NatsOptions()
    with pytest.raises(NatsRefused, match="NATS refused this gateway"):
        await asyncio.wait_for(open_backends(url, options=chosen), REFUSED_TIMEOUT_S)


async def test_ready_follows_the_nats_connection(tmp_path: Path, nats_server: NatsServer) -> None:
    """`/ready` is 503 while the gateway is cut off from NATS and 200 again once it is back;
    `/health` stays 200 throughout (the process is alive, only its backend is not)."""

    async def status(server: Harness, path: str) -> int:
        async with server.http.get(f"{server.url}{path}") as response:
            return response.status

    async def ready_becomes(server: Harness, expected: int) -> None:
        for _ in range(500):
            if await status(server, "/ready") == expected:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"/ready never answered {expected}")

    async with running_harness(tmp_path / "data", bus=nats_server.url) as server:
        assert await status(server, "/ready") == 200
        nats_server.kill()
        await ready_becomes(server, 503)
        assert await status(server, "/health") == 200
        nats_server.start()
        await ready_becomes(server, 200)


# --- decentralised auth: operator, account and user JWTs, a .creds file ---------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Identity:
    """An nkey pair of one role (operator, account or user)."""

    seed: bytes
    public: str
    pair: Any

    @classmethod
    def new(cls, prefix: int) -> _Identity:
        seed = nkeys.encode_seed(os.urandom(32), prefix)
        pair = nkeys.from_seed(bytearray(seed))
        return cls(seed, pair.public_key.decode(), pair)

    def sign_jwt(self, subject: str, name: str, nats: dict[str, Any]) -> str:
        """A NATS JWT (v2) for `subject`, issued and signed by this identity, as `nsc` makes."""
        header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
        claims = {
            "jti": _b64(os.urandom(16)).upper(),
            "iat": int(time.time()),
            "iss": self.public,
            "name": name,
            "sub": subject,
            "nats": {**nats, "version": 2},
        }
        payload = _b64(json.dumps(claims).encode())
        signature = self.pair.sign(f"{header}.{payload}".encode())
        return f"{header}.{payload}.{_b64(signature)}"


UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "conn": -1}


def user_creds(account: _Identity, path: Path) -> None:
    user = _Identity.new(nkeys.PREFIX_BYTE_USER)
    jwt = account.sign_jwt(
        user.public,
        "gateway",
        {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1},
    )
    path.write_text(
        f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n------END USER NKEY SEED------\n"
    )


@dataclass
class OperatorNatsServer(NatsServer):
    """`NatsServer` in operator mode: only users whose JWT the preloaded account signed."""

    operator_lines: str = ""

    def config_text(self) -> str:
        return super().config_text() + self.operator_lines


@pytest.fixture
def operator_nats(tmp_path: Path) -> Iterator[tuple[OperatorNatsServer, _Identity]]:
    operator = _Identity.new(nkeys.PREFIX_BYTE_OPERATOR)
    system = _Identity.new(nkeys.PREFIX_BYTE_ACCOUNT)
    account = _Identity.new(nkeys.PREFIX_BYTE_ACCOUNT)
    jetstream = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
    operator_jwt = operator.sign_jwt(
        operator.public, "operator", {"type": "operator", "system_account": system.public}
    )
    system_jwt = operator.sign_jwt(system.public, "SYS", {"type": "account", "limits": UNLIMITED})
    account_jwt = operator.sign_jwt(
        account.public, "userstream", {"type": "account", "limits": {**UNLIMITED, **jetstream}}
    )
    lines = (
        f"operator: {json.dumps(operator_jwt)}\n"
        f"system_account: {system.public}\n"
        "resolver: MEMORY\n"
        f"resolver_preload: {{ {account.public}: {json.dumps(account_jwt)}, "
        f"{system.public}: {json.dumps(system_jwt)} }}\n"
    )
    port, monitor_port = free_ports(2)
    server = OperatorNatsServer("n1", tmp_path / "nats", port, monitor_port, operator_lines=lines)
    server.start()
    yield server, account
    server.stop()


async def test_gateway_with_a_creds_file_works_and_an_unsigned_user_is_refused(
    tmp_path: Path, operator_nats: tuple[OperatorNatsServer, _Identity]
) -> None:
    server, account = operator_nats
    creds = tmp_path / "gateway.creds"
    user_creds(account, creds)
    async with running_harness(tmp_path / "data", bus=server.url, nats_creds=creds) as gateway:
        status, body = await gateway.admin("POST", "accounts", {"name": "trader"})
        assert status == 200, body
        async with gateway.http.get(f"{gateway.url}/ready") as ready:
            assert ready.status == 200

    # A user signed by an account the server does not know, and no credentials at all.
    stranger = tmp_path / "stranger.creds"
    user_creds(_Identity.new(nkeys.PREFIX_BYTE_ACCOUNT), stranger)
    for options in (NatsOptions(creds=stranger), NatsOptions()):
        with pytest.raises(NatsRefused):
            await asyncio.wait_for(open_backends(server.url, options=options), REFUSED_TIMEOUT_S)


def test_serve_with_the_wrong_password_says_so_and_exits(
    tmp_path: Path, pki: Path, locked_nats: LockedNatsServer
) -> None:
    wrong = "not-the-gateway-password"
    url = f"tls://{USER}:{wrong}@127.0.0.1:{locked_nats.port}"
    tls = ["--nats-tls-ca", str(pki / "ca.pem"), "--nats-tls-cert", str(pki / "client.pem")]
    tls += ["--nats-tls-key", str(pki / "client.key")]
    command = [sys.executable, "-m", "userstream.cli", "serve", "--port", "0"]
    command += ["--data", str(tmp_path / "data"), "--bus", url, *tls]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
    assert "NATS refused this gateway" in done.stderr
    assert "Authorization Violation" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert wrong not in done.stderr + done.stdout  # the URL carries it: never echoed
