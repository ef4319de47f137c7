"""The public API is what `userstream.__all__` lists (DESIGN.md rule 4)."""

from __future__ import annotations

import gc
import subprocess
import sys
import typing
from pathlib import Path

import userstream
import userstream.events
import userstream.protocol.events

EXPECTED = [
    "LOG_FORMATS",
    "Account",
    "AccountConfigUpdate",
    "AccountMirror",
    "AccountUpdate",
    "AlgoUpdate",
    "Backoff",
    "BinanceAPIError",
    "Change",
    "ChangeKind",
    "Clock",
    "ConditionalOrderTriggerReject",
    "ConfigurationError",
    "ConnectionState",
    "Delivery",
    "Endpoints",
    "Event",
    "EventValidationError",
    "GapReason",
    "GridUpdate",
    "InvalidAPIKey",
    "Keepalive",
    "ListenKeyExpired",
    "ListenKeyNotFound",
    "ManualClock",
    "MarginCall",
    "MirrorHealth",
    "OrderTradeUpdate",
    "Publisher",
    "RateLimited",
    "Received",
    "Reconnect",
    "ReconnectGaveUp",
    "Server",
    "ServerConfig",
    "StrategyUpdate",
    "StreamGap",
    "StreamHealth",
    "SystemClock",
    "TradeLite",
    "TransportError",
    "UserDataStream",
    "UserStreamError",
    "WeightLimits",
    "configure_logging",
    "create_account",
    "list_accounts",
]


def test_all_is_pinned() -> None:
    assert userstream.__all__ == EXPECTED


def test_every_exported_name_exists_and_is_public() -> None:
    for name in userstream.__all__:
        member = getattr(userstream, name)
        assert not name.startswith("_")
        if typing.get_origin(member) is None:  # the `Event` union has no module of its own
            assert getattr(member, "__module__", "userstream").startswith("userstream")


def test_events_has_every_protocol_event_model() -> None:
    assert userstream.events.__all__ == userstream.protocol.events.__all__
    for name in userstream.events.__all__:
        assert getattr(userstream.events, name) is getattr(userstream.protocol.events, name)


# The base install (`pip install userstream`) has no server, NATS or CLI dependencies.
CLIENT_ONLY = """
import sys

BLOCKED = {"httptools", "uvloop", "nats", "rich", "prometheus_client"}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed (blocked)")
        return None


sys.meta_path.insert(0, Blocker())
import userstream
from userstream import UserDataStream, Publisher, OrderTradeUpdate
from userstream.events import AccountUpdate

loaded = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
assert not loaded, loaded
try:
    userstream.Server
except ImportError:
    print("server needs its extra")
"""


def test_the_client_imports_without_the_server_dependencies() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_ONLY], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "server needs its extra"


async def test_server_runs_as_an_async_context_manager(tmp_path: Path) -> None:
    config = userstream.ServerConfig(port=0, data_dir=tmp_path, admin_token="t")
    async with userstream.Server(config) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.ws_url == server.url.replace("http://", "ws://")
        assert server.admin_token == "t"
        account = await server.create_account("trader")
        assert await server.account(account.id) == account
    created = await userstream.create_account(config, "offline")
    assert created.id == account.id + 1


async def test_tune_gc_freezes_the_start_up_heap(tmp_path: Path) -> None:
    from userstream.server.app import GC_THRESHOLDS

    before = gc.get_threshold()
    config = userstream.ServerConfig(port=0, data_dir=tmp_path, tune_gc=True)
    try:
        async with userstream.Server(config):
            assert gc.get_threshold() == GC_THRESHOLDS
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
