"""The account mirror against the venue's risk events (issue 14 "Proof", with issue 13's risk).

On a real server on 127.0.0.1 with the virtual clock and the seeded synthetic market, a
seeded run trades ETHUSDT at random while a script walks BTCUSDT through the risk events: a
STOP_MARKET algo order that triggers and fills, a far one that stays open, a funding
settlement crossed by moving the clock over the funding instant, a price driven to a margin
call and then past the liquidation price (the admin `marginCall` and `liquidate` routes).
Faults hit the mirror's stream between the steps (1006 drops, the listenKey DELETEd behind the
client's back). Once trading stops and the mirror reports itself caught up, a fresh REST
snapshot equals it field by field (balances, positions, open orders, open algo orders), the
self-check never found a difference, and the mirror saw each risk event on its stream (on
even seeds the stream is dropped as the liquidation happens, racing it with the resync).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN, START_MS
from tests.functional.test_mirror import (
    WAIT_S,
    Trader,
    Venue,
    assert_equals_the_venue,
    caught_up,
    connected,
    fault,
    mirror_of,
)
from userstream import AccountMirror, ServerConfig
from userstream.accounts import Account
from userstream.client.mirror_views import ChangeKind
from userstream.market.synthetic import SyntheticMarket
from userstream.symbols import load_symbol_table

HOUR = 3_600_000
BTC_TICK = Decimal("0.1")


class RiskVenue(Venue):
    """The test_mirror venue on the seeded synthetic market, funding every hour; a clock jump
    of minutes is passed in one draw (funding settled) rather than step by step."""

    def __init__(self, data_dir: Path, seed: int) -> None:
        super().__init__(data_dir)
        symbols = [s for s in load_symbol_table().symbols if s.symbol in ("BTCUSDT", "ETHUSDT")]
        self.synthetic = SyntheticMarket(
            symbols,
            seed=seed,
            start_ms=START_MS,
            funding_hours={"BTCUSDT": 1, "ETHUSDT": 1},
            max_catch_up_ms=1000,
        )

    def config(self) -> ServerConfig:
        return ServerConfig(
            port=self.port,
            data_dir=self.data_dir,
            clock=self.clock,
            admin_token=ADMIN_TOKEN,
            market_source=self.synthetic,
            liveness=self.liveness,
        )

    async def price(self, symbol: str) -> Decimal:
        async with self.http.get(f"{self.url}/fapi/v1/ticker/price?symbol={symbol}") as response:
            return Decimal((await response.json())["price"])


@asynccontextmanager
async def risk_venue(tmp_path: Path, seed: int) -> AsyncIterator[RiskVenue]:
    v = RiskVenue(tmp_path / "data", seed)
    await v.start()
    await v.clock.advance(2000)  # a book and a mark before the first order
    try:
        yield v
    finally:
        await v.aclose()


class ETHTrader(Trader):
    """Test_mirror's random trading on ETHUSDT only, so the BTCUSDT script keeps its position;
    resting prices follow the synthetic market's price."""

    def __init__(self, v: RiskVenue, account: Account, rng: random.Random) -> None:
        super().__init__(v, account, rng)
        self.market = v

    async def step(self) -> None:
        rng = self.rng
        side = rng.choice(["BUY", "SELL"])
        qty = str(Decimal("0.01") * rng.randint(1, 5))
        action = rng.choices(["rest", "market", "cancel"], weights=[3, 3, 2])[0]
        status = 200
        if action == "rest":
            price = await self.market.price("ETHUSDT")
            away = Decimal("0.97") if side == "BUY" else Decimal("1.03")
            status, _ = await self.v.signed(
                self.account,
                "POST",
                "/fapi/v1/order",
                {
                    "symbol": "ETHUSDT",
                    "side": side,
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": qty,
                    "price": str((price * away).quantize(Decimal("0.01"))),
                },
            )
        elif action == "market":
            status, _ = await self.v.signed(
                self.account,
                "POST",
                "/fapi/v1/order",
                {"symbol": "ETHUSDT", "side": side, "type": "MARKET", "quantity": qty},
            )
        else:
            status, answer = await self.v.signed(self.account, "GET", "/fapi/v1/openOrders", {})
            if status == 200 and answer:
                target = rng.choice(answer)
                status, _ = await self.v.signed(
                    self.account,
                    "DELETE",
                    "/fapi/v1/order",
                    {"symbol": target["symbol"], "orderId": str(target["orderId"])},
                )
        self.done.append(f"{action} ETHUSDT {side} {qty} -> {status}")
        await self.v.clock.advance(rng.choice([0, 100, 500]))


class Seen:
    """The kinds and reasons of the mirror's changes, collected from `changes()`."""

    def __init__(self, mirror: AccountMirror) -> None:
        self.changes: set[tuple[ChangeKind, str]] = set()
        self.task = asyncio.create_task(self._collect(mirror))

    async def _collect(self, mirror: AccountMirror) -> None:
        async for change in mirror.changes():
            self.changes.add((change.kind, change.reason))

    async def until(
        self,
        v: Venue,
        mirror: AccountMirror,
        trader: Trader,
        kind: ChangeKind,
        reason: str | None = None,
    ) -> None:
        """Move the market until the mirror has applied a change of `kind` (and `reason`);
        the mirror must then equal a fresh snapshot at once, before any fault's resync could
        repair it."""
        async with asyncio.timeout(WAIT_S):
            while not any(k == kind and reason in (None, r) for k, r in self.changes):
                await v.clock.advance(250)
                await asyncio.sleep(0.005)
        found = await asyncio.wait_for(mirror.check(), WAIT_S)
        assert found == (), "\n".join([kind, *map(str, found), *trader.done])


async def btc(v: RiskVenue, account: Account, trader: Trader, **params: str) -> None:
    status, body = await v.signed(
        account, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", **params}
    )
    assert status == 200, (body, trader.done)
    trader.done.append(f"BTCUSDT {params} -> {status}")


async def stop_market(
    v: RiskVenue, account: Account, trader: Trader, trigger: Decimal, quantity: str
) -> None:
    params = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "STOP_MARKET",
        "triggerPrice": str(trigger.quantize(BTC_TICK)),
        "quantity": quantity,
        "reduceOnly": "true",
        "workingType": "CONTRACT_PRICE",
    }
    status, body = await v.signed(account, "POST", "/fapi/v1/algoOrder", params)
    assert status == 200, (body, trader.done)
    trader.done.append(f"algo {params} -> {status}")


async def closed(v: RiskVenue, account: Account) -> None:
    """Move the market until REST shows the BTCUSDT position gone (liquidated)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            status, rows = await v.signed(account, "GET", "/fapi/v3/positionRisk", {})
            assert status == 200, rows
            if all(row["symbol"] != "BTCUSDT" for row in rows):
                return
            await v.clock.advance(250)


@pytest.mark.parametrize("seed", range(1, 5))
async def test_the_mirror_equals_the_venue_through_algo_funding_and_liquidation(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    async with risk_venue(tmp_path, seed) as v:
        account = await v.account()
        await v.admin(
            "POST", f"accounts/{account.id}/deposit", {"asset": "USDT", "amount": "10000"}
        )
        mirror = mirror_of(v, account)
        trader = ETHTrader(v, account, rng)

        async def trade_and_fault() -> None:
            """Random trading, a fault, more trading while the mirror recovers; then the next
            risk event starts on a caught-up mirror, so its change must come from the stream."""
            for _ in range(rng.randint(3, 8)):
                await trader.step()
            await connected(v, mirror)
            await fault(v, account, mirror, rng.choice(["drop", "delete"]))
            for _ in range(rng.randint(2, 5)):
                await trader.step()
            await caught_up(v, mirror)

        async with mirror:
            seen = Seen(mirror)
            await caught_up(v, mirror)

            # A stop just under the price, triggered by the operator moving the price down.
            await btc(v, account, trader, side="BUY", type="MARKET", quantity="0.010")
            price = await v.price("BTCUSDT")
            await stop_market(v, account, trader, price * Decimal("0.995"), "0.010")
            await trade_and_fault()
            await v.admin(
                "POST",
                "market/price",
                {"symbol": "BTCUSDT", "price": str((price * Decimal("0.99")).quantize(BTC_TICK))},
            )
            await seen.until(v, mirror, trader, ChangeKind.ALGO, "FINISHED")
            assert not mirror.algo_orders

            # The position the rest of the script drives, with a stop far away that stays open.
            await btc(v, account, trader, side="BUY", type="MARKET", quantity="1")
            price = await v.price("BTCUSDT")
            await stop_market(v, account, trader, price * Decimal("0.5"), "0.100")
            await trade_and_fault()

            # Funding: a fixed rate, and the clock moved over the next hourly instant.
            await v.admin("POST", "market/funding", {"symbol": "BTCUSDT", "rate": "0.001"})
            instant = (v.clock.now_ms() // HOUR + 1) * HOUR
            while v.clock.now_ms() < instant + 1000:
                await v.clock.advance(min(5 * 60_000, instant + 1000 - v.clock.now_ms()))
                await asyncio.sleep(0.01)
            await seen.until(v, mirror, trader, ChangeKind.FUNDING)
            await trade_and_fault()

            # A margin call, then liquidation.
            await v.admin("POST", f"accounts/{account.id}/marginCall", {"symbol": "BTCUSDT"})
            await seen.until(v, mirror, trader, ChangeKind.MARGIN_CALL)
            await trade_and_fault()
            await v.admin("POST", f"accounts/{account.id}/liquidate", {"symbol": "BTCUSDT"})
            if seed % 2:
                await seen.until(v, mirror, trader, ChangeKind.LIQUIDATION)
            else:
                # The stream drops as the price crosses: the liquidation races the reconnect
                # and may reach the mirror only through the resync's snapshot.
                await fault(v, account, mirror, "drop")
                await closed(v, account)
            for _ in range(rng.randint(2, 5)):
                await trader.step()

            await assert_equals_the_venue(v, account, mirror, trader)
            status, rows = await v.signed(account, "GET", "/fapi/v1/openAlgoOrders", {})
            assert status == 200, rows
            assert {row["algoId"] for row in rows} == set(mirror.algo_orders)
            assert "BTCUSDT" not in {
                p.symbol for p in mirror.positions.values() if p.position_amount
            }
        await asyncio.wait_for(seen.task, WAIT_S)  # changes() ends with the mirror
