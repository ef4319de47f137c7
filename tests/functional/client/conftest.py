"""Fixtures shared by the client's functional tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Harness
from tests.functional.client.relay import Relay


@pytest.fixture
async def relay(server: Harness) -> AsyncIterator[Relay]:
    """A TCP relay in front of the test's `server` (see `relay.py` for the faults)."""
    relay = Relay(server.server.port)
    await relay.start()
    yield relay
    await relay.aclose()
