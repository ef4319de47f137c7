"""Order entry is single-node (docs/deployment.md): a gateway on NATS refuses the venue's
routes with a clear error instead of keeping a private engine per node."""

from __future__ import annotations

from pathlib import Path

from tests.distributed.conftest import Gateways
from tests.functional.venue_helpers import signed_query
from tests.nats_fixtures import NatsServer


async def test_gateway_refuses_order_entry(nats_server: NatsServer, tmp_path: Path) -> None:
    async with Gateways(nats_server.url, tmp_path) as gateways:
        (node,) = gateways.start(1)
        status, created = await node.admin("POST", "accounts", {"name": "trader"})
        assert status == 200, created
        query = signed_query(
            created["secretKey"],
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
            0,
        )
        async with node.http.post(
            f"{node.url}/fapi/v1/order?{query}", headers={"X-MBX-APIKEY": created["apiKey"]}
        ) as response:
            body = await response.json()
        assert response.status == 503
        assert body["code"] == -1000
        assert "single-node" in body["msg"]
