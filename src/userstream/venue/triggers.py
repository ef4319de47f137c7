"""Which conditional (algo) orders a price tick triggers, without looking at the others.

Trigger rules (trading spec §2.4, Binance New-Order notes):

* STOP / STOP_MARKET fire for BUY when the working price ≥ trigger and for SELL when it is
  ≤ trigger; TAKE_PROFIT / TAKE_PROFIT_MARKET the other way round. `Direction.RISE` is
  "fires when the price rises to the trigger", `Direction.FALL` the opposite (`direction_of`).
* TRAILING_STOP_MARKET waits for its activation price (SELL: price ≥ activation; BUY: price
  ≤ activation; no activation price means active at once), then tracks the highest (SELL) or
  lowest (BUY) price since activation and fires when the price retraces by the callback rate:
  SELL at `price ≤ highest × (1 − rate/100)`, BUY at `price ≥ lowest × (1 + rate/100)`.
* The working price is the mark price (`MARK_PRICE`) or the last trade price
  (`CONTRACT_PRICE`), so each (symbol, working type) has its own book.

Cost of one tick: O(log n + k) for n resting orders of which k fire, plus O(g) for g
distinct callback rates among *activated* trailing orders of that book (at most 200, the
0.1-step values of 0.1–20 %). Stops and not-yet-active trailing orders sit in two heaps keyed by
trigger (activation) price; cancellations are tombstones, compacted when they outnumber the
live entries. Activated trailing orders of one callback rate share buckets of equal
"highest price since activation": a new high lifts every lower bucket to it, so those buckets
merge into one (each order is lifted O(log n) times over its life, merging the smaller list
into the larger); the tick fires whole buckets from the top.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

__all__ = [
    "Direction",
    "Fired",
    "FiredKind",
    "TriggerIndex",
    "direction_of",
    "would_trigger",
]

_HUNDRED: Final = Decimal(100)
_NO_FIRE: Final = Decimal("-Infinity")
_NO_LIFT: Final = Decimal("Infinity")


class Direction(enum.Enum):
    RISE = "RISE"  # fires when the working price is ≥ the trigger
    FALL = "FALL"  # fires when the working price is ≤ the trigger


def direction_of(order_type: str, side: str) -> Direction:
    """The direction of a STOP* or TAKE_PROFIT* order (spec §2.4 trigger rules)."""
    stop = order_type in ("STOP", "STOP_MARKET")
    buy = side == "BUY"
    return Direction.RISE if stop == buy else Direction.FALL


def would_trigger(direction: Direction, trigger: Decimal, price: Decimal) -> bool:
    """Whether a trigger is already met at `price` (placement then fails with -2021)."""
    return price >= trigger if direction is Direction.RISE else price <= trigger


class FiredKind(enum.Enum):
    TRIGGERED = "TRIGGERED"
    ACTIVATED = "ACTIVATED"  # a trailing stop reached its activation price


@dataclass(frozen=True, slots=True)
class Fired:
    """What a tick did to one order: `key` is the caller's id (the algo id)."""

    key: int
    kind: FiredKind
    price: Decimal


@dataclass(slots=True)
class _Bucket:
    """Activated trailing orders of one callback rate whose extreme is `extreme`, in
    "signed price" space (price for SELL, −price for BUY, so both track a maximum)."""

    extreme: Decimal
    keys: list[int]


@dataclass(slots=True)
class _TrailGroup:
    """Activated trailing orders of one side and one callback rate: buckets ordered by
    extreme, highest first. An order fires when `signed price ≤ extreme × factor`."""

    factor: Decimal
    buckets: deque[_Bucket] = field(default_factory=deque)
    # Cached from the buckets so that a tick that touches nothing costs two comparisons:
    # the signed price at or below which the top bucket fires, and the lowest extreme.
    fire_at: Decimal = _NO_FIRE
    bottom: Decimal = _NO_LIFT

    def refresh(self) -> None:
        buckets = self.buckets
        self.fire_at = buckets[0].extreme * self.factor if buckets else _NO_FIRE
        self.bottom = buckets[-1].extreme if buckets else _NO_LIFT


@dataclass(slots=True)
class _Pending:
    """A trailing order before activation: where its group is and its sign."""

    sign: int
    factor: Decimal


@dataclass(slots=True)
class _Book:
    rise: list[tuple[Decimal, int, int]] = field(default_factory=list)
    fall: list[tuple[Decimal, int, int]] = field(default_factory=list)  # keyed by −trigger
    groups: dict[tuple[int, Decimal], _TrailGroup] = field(default_factory=dict)
    dead: int = 0  # tombstoned heap entries


class TriggerIndex:
    """Resting conditional orders of every account, indexed by symbol and working type.

    The caller owns the orders; the index holds only their keys (unique ints, e.g. algo ids).
    """

    __slots__ = ("_books", "_live", "_pending", "_seq", "_where")

    def __init__(self) -> None:
        self._books: dict[tuple[str, str], _Book] = {}
        self._live: set[int] = set()
        self._pending: dict[int, _Pending] = {}
        self._where: dict[int, tuple[str, str]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def _book(self, symbol: str, working_type: str) -> _Book:
        book = self._books.get((symbol, working_type))
        if book is None:
            book = self._books[(symbol, working_type)] = _Book()
        return book

    def _claim(self, key: int, symbol: str, working_type: str) -> _Book:
        if key in self._live:
            raise ValueError(f"key {key} is already indexed")
        self._live.add(key)
        self._where[key] = (symbol, working_type)
        return self._book(symbol, working_type)

    def add_stop(
        self, key: int, symbol: str, working_type: str, direction: Direction, trigger: Decimal
    ) -> None:
        """Index a STOP* / TAKE_PROFIT* order; the caller has checked `would_trigger`."""
        book = self._claim(key, symbol, working_type)
        if direction is Direction.RISE:
            heapq.heappush(book.rise, (trigger, next(self._seq), key))
        else:
            heapq.heappush(book.fall, (-trigger, next(self._seq), key))

    def add_trailing(
        self,
        key: int,
        symbol: str,
        working_type: str,
        side: str,
        callback_rate: Decimal,
        activation_price: Decimal | None,
        price: Decimal,
    ) -> bool:
        """Index a TRAILING_STOP_MARKET order (`callback_rate` in percent, as sent).

        `price` is the current working price. Returns True when the order is active at once
        (no activation price); the caller checked that an activation price is on the right
        side of `price` (-2021 otherwise).
        """
        book = self._claim(key, symbol, working_type)
        sign = 1 if side == "SELL" else -1
        factor = 1 - sign * callback_rate / _HUNDRED
        if activation_price is None:
            self._activate(book, key, sign, factor, price)
            return True
        self._pending[key] = _Pending(sign, factor)
        if sign == 1:
            heapq.heappush(book.rise, (activation_price, next(self._seq), key))
        else:
            heapq.heappush(book.fall, (-activation_price, next(self._seq), key))
        return False

    def remove(self, key: int) -> bool:
        """Forget an order (cancelled, expired). Returns False if it was not indexed."""
        if key not in self._live:
            return False
        self._live.discard(key)
        self._pending.pop(key, None)
        where = self._where.pop(key)
        book = self._books[where]
        book.dead += 1
        if book.dead > 64 and book.dead * 2 > len(book.rise) + len(book.fall):
            self._compact(book)
        return True

    def _compact(self, book: _Book) -> None:
        book.rise = [entry for entry in book.rise if entry[2] in self._live]
        book.fall = [entry for entry in book.fall if entry[2] in self._live]
        heapq.heapify(book.rise)
        heapq.heapify(book.fall)
        for group in book.groups.values():
            for bucket in group.buckets:
                bucket.keys = [key for key in bucket.keys if key in self._live]
        book.dead = 0

    def _activate(self, book: _Book, key: int, sign: int, factor: Decimal, price: Decimal) -> None:
        group = book.groups.get((sign, factor))
        if group is None:
            group = book.groups[(sign, factor)] = _TrailGroup(factor)
        signed = sign * price
        if group.buckets and group.buckets[-1].extreme == signed:
            group.buckets[-1].keys.append(key)
        else:
            group.buckets.append(_Bucket(signed, [key]))
        group.refresh()

    def on_price(self, symbol: str, working_type: str, price: Decimal) -> list[Fired]:
        """Apply one working-price tick; returns what fired, removed from the index.

        Order: stops by trigger price (the nearest first), then trailing activations, then
        trailing triggers.
        """
        book = self._books.get((symbol, working_type))
        if book is None:
            return []
        out: list[Fired] = []
        activated: list[tuple[int, _Pending]] = []
        for key in self._pop_crossed(book, price):
            pending = self._pending.pop(key, None)
            if pending is None:
                self._forget(book, key)
                out.append(Fired(key, FiredKind.TRIGGERED, price))
            else:
                activated.append((key, pending))
        for (sign, _), group in book.groups.items():
            signed = price if sign == 1 else -price
            if signed <= group.fire_at or signed >= group.bottom:
                self._trail(book, group, signed, price, out)
        for key, pending in activated:
            self._activate(book, key, pending.sign, pending.factor, price)
            out.append(Fired(key, FiredKind.ACTIVATED, price))
        return out

    def _forget(self, book: _Book, key: int) -> None:
        self._live.discard(key)
        del self._where[key]

    def _pop_crossed(self, book: _Book, price: Decimal) -> Iterator[int]:
        rise, fall, live = book.rise, book.fall, self._live
        while rise and rise[0][0] <= price:
            key = heapq.heappop(rise)[2]
            if key in live:
                yield key
            else:
                book.dead -= 1
        while fall and -fall[0][0] >= price:
            key = heapq.heappop(fall)[2]
            if key in live:
                yield key
            else:
                book.dead -= 1

    def _trail(
        self, book: _Book, group: _TrailGroup, signed: Decimal, price: Decimal, out: list[Fired]
    ) -> None:
        buckets, live = group.buckets, self._live
        # Fire from the highest extreme down, with the extremes as they were before this tick
        # (a new extreme cannot fire: the price is then its own extreme).
        while buckets and signed <= buckets[0].extreme * group.factor:
            for key in buckets.popleft().keys:
                if key in live:
                    self._forget(book, key)
                    out.append(Fired(key, FiredKind.TRIGGERED, price))
        # Lift every bucket below the new extreme to it, merging them.
        merged: _Bucket | None = None
        while buckets and buckets[-1].extreme <= signed:
            bucket = buckets.pop()
            if merged is None:
                merged = bucket
            else:
                small, large = sorted((merged.keys, bucket.keys), key=len)
                large.extend(small)
                merged.keys = large
        if merged is not None:
            merged.extreme = signed
            buckets.append(merged)
        group.refresh()
