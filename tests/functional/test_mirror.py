"""The account mirror against the real venue on 127.0.0.1 (issue 14 "Proof").

A seeded run trades through the venue's signed REST (LIMIT orders that rest, MARKET and
crossing orders that walk the book in several fills, cancels, leverage and margin-type
changes, deposits) while faults hit the mirror's stream: drops with 1006, listenKey expiry,
the key DELETEd behind the client's back, and a server restart on the same data and port.
Once trading stops and the mirror reports itself consistent, a fresh REST snapshot must
equal it field by field, for every seed; the mirror runs with its self-check on, and no
self-check may ever have found a difference.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.conftest import ADMIN_TOKEN, START_MS, start_server_process, stop_server_process
from tests.venue_fixtures import HandMarket
from userstream import (
    AccountMirror,
    ConnectionState,
    Delivery,
    Endpoints,
    Keepalive,
    ManualClock,
    MirrorHealth,
    Reconnect,
    Server,
    ServerConfig,
    UserDataStream,
)
from userstream.accounts import Account
from userstream.client.rest import SignedRest
from userstream.protocol.liveness import LivenessPolicy
from userstream.protocol.signing import hmac_signature

SYMBOLS = ("BTCUSDT", "ETHUSDT")
MID = {"BTCUSDT": Decimal("100000.0"), "ETHUSDT": Decimal("3000.00")}
TICK = {"BTCUSDT": Decimal("0.1"), "ETHUSDT": Decimal("0.01")}
QTY = {"BTCUSDT": Decimal("0.001"), "ETHUSDT": Decimal("0.01")}
WAIT_S = 10.0
MINUTE = 60_000
HOUR = 60 * MINUTE


def book_for(market: HandMarket, symbol: str, offset: int) -> None:
    """Six levels a side around MID + `offset` ticks, thin enough that a MARKET order of a
    few lots walks several levels (several fills in one millisecond)."""
    tick = TICK[symbol]
    mid = MID[symbol] + tick * offset
    bids = [(str(mid - tick * (1 + i)), str(QTY[symbol] * 2)) for i in range(6)]
    asks = [(str(mid + tick * (1 + i)), str(QTY[symbol] * 2)) for i in range(6)]
    market.set_book(symbol, bids, asks, mark=str(mid))


class Venue:
    """The in-process server with a hand-set market, restartable on the same data and port."""

    def __init__(self, data_dir: Path, liveness: LivenessPolicy | None = None) -> None:
        self.data_dir = data_dir
        self.liveness = liveness or LivenessPolicy()
        self.clock = ManualClock(START_MS)
        self.market = HandMarket(SYMBOLS)
        for symbol in SYMBOLS:
            book_for(self.market, symbol, 0)
        self.port = 0
        self.server: Server | None = None
        self.http = aiohttp.ClientSession()

    def config(self) -> ServerConfig:
        return ServerConfig(
            port=self.port,
            data_dir=self.data_dir,
            clock=self.clock,
            admin_token=ADMIN_TOKEN,
            market_source=self.market,
            liveness=self.liveness,
        )

    async def start(self) -> None:
        self.server = Server(self.config())
        await self.server.start()
        self.port = self.server.port

    async def restart(self) -> None:
        assert self.server is not None
        await self.server.aclose()
        await self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoints(self) -> Endpoints:
        ws = self.url.replace("http://", "ws://")
        return Endpoints(self.url, f"{ws}/ws-fapi/v1", ws)

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with self.http.request(
            method, f"{self.url}/admin/v1/{path}", json=body, headers=headers
        ) as response:
            answer = await response.json(content_type=None)
            assert response.status == 200, answer
            return answer

    async def account(self) -> Account:
        body = await self.admin("POST", "accounts", {"name": "mirror"})
        return Account(body["accountId"], "mirror", body["apiKey"], body["secretKey"])

    async def signed(
        self, account: Account, method: str, path: str, params: dict[str, str]
    ) -> tuple[int, Any]:
        """A signed TRADE request, parameters in the form body (as ccxt sends them)."""
        query = urlencode({**params, "timestamp": str(self.clock.now_ms())})
        body = f"{query}&signature={hmac_signature(account.secret_key.encode(), query.encode())}"
        async with self.http.request(
            method,
            f"{self.url}{path}",
            data=body,
            headers={
                "X-MBX-APIKEY": account.api_key,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ) as response:
            return response.status, await response.json(content_type=None)

    async def aclose(self) -> None:
        if self.server is not None:
            await self.server.aclose()
        await self.http.close()


@asynccontextmanager
async def venue(tmp_path: Path, liveness: LivenessPolicy | None = None) -> AsyncIterator[Venue]:
    v = Venue(tmp_path / "data", liveness)
    await v.start()
    try:
        yield v
    finally:
        await v.aclose()


class Trader:
    """Seeded random trading of one account; returns what it did, for the failure message."""

    def __init__(self, v: Venue, account: Account, rng: random.Random) -> None:
        self.v = v
        self.account = account
        self.rng = rng
        self.done: list[str] = []
        self.n = 0

    async def step(self) -> None:
        rng = self.rng
        symbol = rng.choice(SYMBOLS)
        side = rng.choice(["BUY", "SELL"])
        lots = rng.randint(1, 6)
        qty = str(QTY[symbol] * lots)
        action = rng.choices(
            ["rest", "market", "cross", "cancel", "leverage", "margin", "deposit", "move"],
            weights=[4, 4, 2, 3, 1, 1, 1, 2],
        )[0]
        self.n += 1
        status: int = 200
        if action == "rest":
            away = TICK[symbol] * rng.randint(20, 40) * (-1 if side == "BUY" else 1)
            status, _ = await self.v.signed(
                self.account,
                "POST",
                "/fapi/v1/order",
                {
                    "symbol": symbol,
                    "side": side,
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": qty,
                    "price": str(MID[symbol] + away),
                    "newClientOrderId": f"m{self.n}",
                },
            )
        elif action == "market":
            status, _ = await self.v.signed(
                self.account,
                "POST",
                "/fapi/v1/order",
                {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty},
            )
        elif action == "cross":
            through = TICK[symbol] * 3 * (1 if side == "BUY" else -1)
            status, _ = await self.v.signed(
                self.account,
                "POST",
                "/fapi/v1/order",
                {
                    "symbol": symbol,
                    "side": side,
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": qty,
                    "price": str(MID[symbol] + through),
                },
            )
        elif action == "cancel":
            status, answer = await self.v.signed(self.account, "GET", "/fapi/v1/openOrders", {})
            if status == 200 and answer:
                target = rng.choice(answer)
                status, _ = await self.v.signed(
                    self.account,
                    "DELETE",
                    "/fapi/v1/order",
                    {"symbol": target["symbol"], "orderId": str(target["orderId"])},
                )
        elif action == "leverage":
            status, _ = await self.v.signed(
                self.account,
                "POST",
                "/fapi/v1/leverage",
                {"symbol": symbol, "leverage": str(rng.choice([5, 10, 20]))},
            )
        elif action == "margin":
            status, _ = await self.v.signed(
                self.account,
                "POST",
                "/fapi/v1/marginType",
                {"symbol": symbol, "marginType": rng.choice(["ISOLATED", "CROSSED"])},
            )
        elif action == "deposit":
            await self.v.admin(
                "POST", f"accounts/{self.account.id}/deposit", {"asset": "USDT", "amount": "100"}
            )
        else:
            book_for(self.v.market, symbol, rng.randint(-5, 5))
        self.done.append(f"{action} {symbol} {side} {qty} -> {status}")
        await self.v.clock.advance(rng.choice([0, 0, 1, 5]))


async def fault(v: Venue, account: Account, mirror: AccountMirror, kind: str) -> None:
    if kind == "drop":
        await v.admin("POST", "connections/drop", {"code": 1006, "accountId": account.id})
    elif kind == "expire":
        key = mirror.stream.listen_key
        assert key is not None
        await v.admin("POST", f"listenKeys/{key}/expire")
    elif kind == "delete":
        async with v.http.delete(
            f"{v.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
        ) as response:
            assert response.status == 200
    elif kind == "restart":
        await v.restart()


async def connected(v: Venue, mirror: AccountMirror) -> None:
    """Move virtual time until the mirror's stream is connected again (a fault hits a live
    stream; one that is still backing off has no key to expire or delete)."""
    async with asyncio.timeout(WAIT_S):
        while mirror.stream.health.state is not ConnectionState.CONNECTED:
            await v.clock.advance(100)
            await asyncio.sleep(0.005)


async def caught_up(v: Venue, mirror: AccountMirror) -> MirrorHealth:
    """Move virtual time (the stream's backoff waits on it) until the mirror is consistent."""
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                return await mirror.wait_consistent(0.05)
            except TimeoutError:
                await v.clock.advance(100)


def mirror_of(v: Venue, account: Account, **stream: Any) -> AccountMirror:
    return AccountMirror(
        account.api_key,
        account.secret_key,
        endpoints=v.endpoints(),
        stream=make_stream_for(v, account, **stream),
        clock=v.clock,
        min_resync_interval_ms=0,
        self_check=True,
    )


async def funded(v: Venue) -> Account:
    account = await v.account()
    await v.admin("POST", f"accounts/{account.id}/deposit", {"asset": "USDT", "amount": "50000"})
    return account


async def assert_equals_the_venue(
    v: Venue, account: Account, mirror: AccountMirror, trader: Trader
) -> MirrorHealth:
    """Caught up, the mirror equals a fresh REST snapshot, and no self-check ever repaired."""
    health = await caught_up(v, mirror)
    found = await asyncio.wait_for(mirror.check(), WAIT_S)
    assert found == (), "\n".join([*map(str, found), *trader.done])
    assert mirror.health.checks >= 1
    assert mirror.health.checks_differing == 0
    rest = SignedRest(account.api_key, account.secret_key, v.url, clock=v.clock)
    try:
        snapshot = await rest.take_snapshot()
    finally:
        await rest.aclose()
    assert {o.order_id for o in snapshot.orders} == set(mirror.open_orders)
    return health


@pytest.mark.parametrize("seed", range(1, 9))
async def test_the_mirror_equals_the_venue_after_trading_with_faults(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    async with venue(tmp_path) as v:
        account = await funded(v)
        mirror = mirror_of(v, account)
        trader = Trader(v, account, rng)
        async with mirror:
            for _fault in range(8):
                for _ in range(rng.randint(5, 15)):
                    await trader.step()
                await connected(v, mirror)
                await fault(v, account, mirror, rng.choice(["drop", "expire", "delete", "restart"]))
                for _ in range(rng.randint(3, 8)):
                    await trader.step()  # while the mirror reconnects and resyncs
            health = await assert_equals_the_venue(v, account, mirror, trader)
            assert health.resyncs >= 2


async def test_the_mirror_stays_equal_across_the_24_hour_rotation(tmp_path: Path) -> None:
    """Hours of virtual time with trading every 10 minutes, across the connection cap: the
    keepalives, the server's pings and the make-before-break rotation run as in a day. The
    cap is compressed to 2 hours (rotation at 1.5) because the venue's market advances every
    100 ms of virtual time, so a real day would take minutes here."""
    rng = random.Random(24)
    cap = LivenessPolicy(max_lifetime_ms=2 * HOUR)
    async with venue(tmp_path, cap) as v:
        account = await funded(v)
        mirror = mirror_of(v, account, reconnect=Reconnect(rotate_after_ms=90 * MINUTE))
        trader = Trader(v, account, rng)
        async with mirror:
            for _ in range(15):  # 2.5 hours
                for _ in range(3):
                    await trader.step()
                for _ in range(5):
                    await v.clock.advance(2 * MINUTE)
                    await asyncio.sleep(0.002)
            assert mirror.stream.health.rotations >= 1
            await assert_equals_the_venue(v, account, mirror, trader)


def make_stream_for(v: Venue, account: Account, **options: Any) -> UserDataStream:
    settings: dict[str, Any] = {
        "endpoints": v.endpoints(),
        "clock": v.clock,
        "delivery": Delivery(reorder_window_ms=0),
        "keepalive": Keepalive(ping_interval_s=None),
        "rng": random.Random(7),
    }
    settings.update(options)
    return UserDataStream(account.api_key, **settings)


class ProcessTrader:
    """Signed orders against a `userstream serve` process (real clock, synthetic market)."""

    def __init__(self, url: str, account: Account, rng: random.Random) -> None:
        self.url = url
        self.account = account
        self.rng = rng
        self.done: list[str] = []

    async def step(self, http: aiohttp.ClientSession) -> None:
        async with http.get(f"{self.url}/fapi/v1/premiumIndex?symbol=BTCUSDT") as response:
            mark = Decimal((await response.json())["markPrice"])
        side = self.rng.choice(["BUY", "SELL"])
        params: dict[str, str] = {"symbol": "BTCUSDT", "side": side, "quantity": "0.002"}
        if self.rng.random() < 0.5:
            params["type"] = "MARKET"
        else:
            away = Decimal("0.98") if side == "BUY" else Decimal("1.02")
            params.update(
                type="LIMIT", timeInForce="GTC", price=str((mark * away).quantize(TICK["BTCUSDT"]))
            )
        query = urlencode({**params, "timestamp": str(time.time_ns() // 1_000_000)})
        signature = hmac_signature(self.account.secret_key.encode(), query.encode())
        async with http.post(
            f"{self.url}/fapi/v1/order?{query}&signature={signature}",
            headers={"X-MBX-APIKEY": self.account.api_key},
        ) as response:
            self.done.append(f"{params} -> {response.status}")


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
async def test_the_mirror_equals_the_venue_after_process_restarts(
    tmp_path: Path, signal_name: str
) -> None:
    """`userstream serve` killed (SIGKILL: no goodbye, no final save) or stopped (SIGTERM) and
    started again on the same data and port, twice, with trading in between."""
    data = tmp_path / "data"
    extra = ("--initial-balance", "50000", "--market", "synthetic:7")
    proc = await asyncio.to_thread(start_server_process, data, *extra)
    port = proc.url.rsplit(":", 1)[1]
    account = Account(1, "demo", proc.api_key, proc.secret_key)
    ws = proc.url.replace("http://", "ws://")
    mirror = AccountMirror(
        account.api_key,
        account.secret_key,
        endpoints=Endpoints(proc.url, f"{ws}/ws-fapi/v1", ws),
        min_resync_interval_ms=0,
        self_check=True,
    )
    trader = ProcessTrader(proc.url, account, random.Random(5))
    try:
        async with aiohttp.ClientSession() as http, mirror:
            for _ in range(2):
                for _ in range(6):
                    await trader.step(http)
                await mirror.wait_consistent(WAIT_S)  # each restart hits a live mirror
                if signal_name == "SIGKILL":
                    proc.process.kill()
                    proc.process.wait(timeout=10)
                    assert proc.process.stdout is not None
                    proc.process.stdout.close()
                else:
                    await asyncio.to_thread(stop_server_process, proc)
                proc = await asyncio.to_thread(start_server_process, data, *extra, "--port", port)
                for _ in range(6):
                    await trader.step(http)
            await mirror.wait_consistent(WAIT_S)
            found = await asyncio.wait_for(mirror.check(), WAIT_S)
            assert found == (), "\n".join([*map(str, found), *trader.done])
            assert mirror.health.checks_differing == 0
            assert mirror.health.resyncs >= 3
            assert sum(line.endswith("-> 200") for line in trader.done) >= 18, trader.done
    finally:
        await asyncio.to_thread(stop_server_process, proc)


async def test_snapshots_wait_for_the_next_weight_minute(tmp_path: Path) -> None:
    """With the venue's `X-MBX-USED-WEIGHT-1M` near the budget, the next snapshot waits for
    the next UTC minute instead of earning a 429."""
    async with venue(tmp_path) as v:
        account = await funded(v)
        rest = SignedRest(
            account.api_key,
            account.secret_key,
            v.url,
            clock=v.clock,
            weight_limit=100,
            weight_reserve=0,
        )
        try:
            first = await rest.take_snapshot()
            assert rest.used_weight >= first.weight
            second = asyncio.create_task(rest.take_snapshot())
            for _ in range(20):
                await asyncio.sleep(0.005)
            assert not second.done()  # 60 + 60 > 100: held back
            minute = (v.clock.now_ms() // MINUTE + 1) * MINUTE
            await v.clock.set(minute)
            await asyncio.wait_for(second, WAIT_S)
            assert rest.used_weight <= 100
        finally:
            await rest.aclose()
