"""The venue's incremental saves in SQLite (server/venue_store.py, venue/journal.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.venue_fixtures import HandMarket, make_engine, venue_symbols
from userstream.protocol.events import OrderType, Side, TimeInForce
from userstream.server.venue_store import CHECKPOINT_PAGES, CHUNK_ROWS, VenueStore
from userstream.storage import open_database
from userstream.venue import Deposit, Engine, NewOrder
from userstream.venue.journal import StateJournal

BTC = "BTCUSDT"


def market_order(n: int) -> NewOrder:
    side = Side.BUY if n % 2 == 0 else Side.SELL
    return NewOrder(symbol=BTC, side=side, order_type=OrderType.MARKET, quantity=Decimal("0.01"))


def resting_buy() -> NewOrder:
    return NewOrder(
        symbol=BTC,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price=Decimal("90000"),
        quantity=Decimal("0.01"),
    )


def funded() -> tuple[Engine, HandMarket]:
    engine, market = make_engine()
    for account in (1, 2):
        engine.handle(account, Deposit(asset="USDT", amount=Decimal(10**7)), 1)
    return engine, market


def test_a_save_writes_what_changed_not_the_history() -> None:
    engine, _ = funded()
    journal = StateJournal(engine.export_state(), stored=True)
    engine.handle(2, resting_buy(), 2)
    engine.handle(1, market_order(0), 2)
    first = journal.changes()
    assert (len(first.orders), len(first.trades)) == (1, 1)
    for n in range(1, 400):
        engine.handle(1, market_order(n), 3)
    history = journal.changes()
    assert (len(history.orders), len(history.trades)) == (399, 399)
    engine.handle(1, market_order(400), 4)
    one = journal.changes()
    # One MARKET order: its row and its trade's, and a live export the size of the first
    # (open orders, balances, positions, counters), not of 400 orders and trades.
    assert (len(one.orders), len(one.trades)) == (1, 1)
    assert len(one.live) <= len(first.live) + 16
    assert journal.changes().orders == []


def test_restart_after_many_orders_restores_exactly(tmp_path: Path) -> None:
    engine, market = funded()
    store = VenueStore(open_database(tmp_path))
    journal = StateJournal(engine.export_state(), stored=True)
    engine.handle(2, resting_buy(), 2)
    for n in range(300):
        engine.handle(1, market_order(n), 10 + n)
        if n % 50 == 0:
            store.save(journal.changes(), n)
    store.save(journal.changes(), 999)
    store.close()

    store = VenueStore(open_database(tmp_path))
    loaded = store.load()
    assert loaded is not None
    state, stored = loaded
    assert stored
    restored = Engine(venue_symbols(BTC), market, state=state)
    assert restored.encode_state() == engine.encode_state()
    # The restored engine continues, and its journal writes only the new rows.
    journal = StateJournal(restored.export_state(), stored=True)
    restored.handle(1, market_order(1), 2000)
    batch = journal.changes()
    assert (len(batch.orders), len(batch.trades)) == (1, 1)
    store.save(batch, 2000)
    store.close()
    again = VenueStore(open_database(tmp_path)).load()
    assert again is not None
    assert Engine(venue_symbols(BTC), market, state=again[0]).encode_state() == (
        restored.encode_state()
    )


def test_a_full_export_from_before_the_split_moves_into_rows(tmp_path: Path) -> None:
    engine, market = funded()
    for n in range(20):
        engine.handle(1, market_order(n), 10 + n)
    db = open_database(tmp_path)
    db.execute(
        "CREATE TABLE venue_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "saved_ms INTEGER NOT NULL, state BLOB NOT NULL)"
    )
    db.execute("INSERT INTO venue_state VALUES (1, 5, ?)", (engine.encode_state(),))
    db.close()

    store = VenueStore(open_database(tmp_path))
    loaded = store.load()
    assert loaded is not None
    assert not loaded[1]
    restored = Engine(venue_symbols(BTC), market, state=loaded[0])
    assert restored.encode_state() == engine.encode_state()
    batch = StateJournal(restored.export_state(), stored=False).changes()
    assert (len(batch.orders), len(batch.trades)) == (20, 20)
    store.save(batch, 6)
    store.close()
    db = open_database(tmp_path)
    assert (
        db.execute("SELECT name FROM sqlite_master WHERE name = 'venue_state'").fetchone() is None
    )
    db.close()
    again = VenueStore(open_database(tmp_path)).load()
    assert again is not None
    assert again[1]
    assert Engine(venue_symbols(BTC), market, state=again[0]).encode_state() == (
        engine.encode_state()
    )


def test_after_a_failed_write_the_next_batch_holds_every_row() -> None:
    engine, _ = funded()
    journal = StateJournal(engine.export_state(), stored=True)
    for n in range(5):
        engine.handle(1, market_order(n), 2)
    journal.changes()  # written, say, and lost
    journal.forget()
    engine.handle(1, market_order(5), 3)
    batch = journal.changes()
    assert [row.id for row in batch.orders] == [1, 2, 3, 4, 5, 6]
    assert [row.id for row in batch.trades] == [1, 2, 3, 4, 5, 6]


def test_the_write_ahead_log_is_checkpointed_in_small_steps(tmp_path: Path) -> None:
    """The store's connection copies its write-ahead log into the database every
    CHECKPOINT_PAGES (server/venue_store.py), not SQLite's 1000: the log file never grows
    past a few hundred KB, however much the saves write."""
    engine, _ = funded()
    store = VenueStore(open_database(tmp_path))
    journal = StateJournal(engine.export_state(), stored=True)
    for n in range(6000):
        engine.handle(1, market_order(n), 10 + n)
        if n % 30 == 29:
            store.save(journal.changes(), n)
    wal = next(tmp_path.glob("*-wal"))
    written = sum(f.stat().st_size for f in tmp_path.iterdir() if f != wal)
    assert written > 1000 * 4096  # more than SQLite's default checkpoint went through
    assert wal.stat().st_size < 3 * CHECKPOINT_PAGES * 4096
    store.close()


def test_a_save_writes_one_row_for_its_orders_and_trades(tmp_path: Path) -> None:
    engine, _ = funded()
    store = VenueStore(open_database(tmp_path))
    journal = StateJournal(engine.export_state(), stored=True)
    for n in range(40):
        engine.handle(1, market_order(n), 10 + n)
    store.save(journal.changes(), 1)
    store.save(journal.changes(), 2)  # nothing new: no chunk
    engine.handle(1, market_order(40), 60)
    store.save(journal.changes(), 3)
    store.close()
    db = open_database(tmp_path)
    assert db.execute("SELECT COUNT(*) FROM venue_chunks").fetchone() == (2,)
    assert db.execute("SELECT COUNT(*) FROM venue_orders").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM venue_trades").fetchone() == (0,)
    db.close()


def test_a_database_with_one_row_per_order_and_trade_still_loads(tmp_path: Path) -> None:
    """Saves before the chunks wrote each final order and trade as its own row."""
    engine, market = funded()
    journal = StateJournal(engine.export_state(), stored=True)
    for n in range(30):
        engine.handle(1, market_order(n), 10 + n)
    batch = journal.changes()
    store = VenueStore(open_database(tmp_path))
    store.close()
    db = open_database(tmp_path)
    db.executemany("INSERT INTO venue_orders VALUES (?, ?, ?)", batch.orders)
    db.executemany("INSERT INTO venue_trades VALUES (?, ?, ?)", batch.trades)
    db.execute("INSERT INTO venue_live VALUES (1, 5, ?)", (batch.live,))
    db.commit()
    db.close()

    store = VenueStore(open_database(tmp_path))
    loaded = store.load()
    assert loaded is not None
    restored = Engine(venue_symbols(BTC), market, state=loaded[0])
    assert restored.encode_state() == engine.encode_state()
    # New saves go into chunks; both kinds load together.
    journal = StateJournal(restored.export_state(), stored=True)
    restored.handle(1, market_order(30), 100)
    store.save(journal.changes(), 100)
    store.close()
    again = VenueStore(open_database(tmp_path)).load()
    assert again is not None
    assert Engine(venue_symbols(BTC), market, state=again[0]).encode_state() == (
        restored.encode_state()
    )


def test_rows_written_again_after_a_failed_write_load_once(tmp_path: Path) -> None:
    engine, market = funded()
    store = VenueStore(open_database(tmp_path))
    journal = StateJournal(engine.export_state(), stored=True)
    engine.handle(2, resting_buy(), 2)
    for n in range(10):
        engine.handle(1, market_order(n), 10 + n)
    store.save(journal.changes(), 1)
    engine.handle(1, market_order(10), 30)
    journal.changes()  # its write failed
    journal.forget()
    engine.handle(1, market_order(11), 31)
    store.save(journal.changes(), 2)  # every final order and trade again
    store.close()
    loaded = VenueStore(open_database(tmp_path)).load()
    assert loaded is not None
    state = loaded[0]
    assert [t.trade_id for t in state.accounts[1].trades] == list(range(1, 13))
    restored = Engine(venue_symbols(BTC), market, state=state)
    assert restored.encode_state() == engine.encode_state()


def test_a_large_save_is_split_into_bounded_rows(tmp_path: Path) -> None:
    engine, market = funded()
    store = VenueStore(open_database(tmp_path))
    journal = StateJournal(engine.export_state(), stored=True)
    for n in range(2 * CHUNK_ROWS + 1):
        engine.handle(1, market_order(n), 10)
    store.save(journal.changes(), 1)
    store.close()
    db = open_database(tmp_path)
    assert db.execute("SELECT COUNT(*) FROM venue_chunks").fetchone() == (3,)
    db.close()
    loaded = VenueStore(open_database(tmp_path)).load()
    assert loaded is not None
    assert Engine(venue_symbols(BTC), market, state=loaded[0]).encode_state() == (
        engine.encode_state()
    )
