"""The stream's policy objects: defaults that keep the issue 9 promises, and validation."""

from __future__ import annotations

import pytest

from userstream import ConfigurationError, Delivery, Keepalive, Reconnect
from userstream.client.policy import CLOSE_TIMEOUT_S


def test_a_half_open_connection_is_noticed_within_10_seconds_by_default() -> None:
    keepalive = Keepalive()
    assert keepalive.ping_interval_s is not None
    assert keepalive.ping_timeout_s is not None
    assert keepalive.ping_interval_s + keepalive.ping_timeout_s + CLOSE_TIMEOUT_S <= 10


def test_reconnect_and_key_issuing_have_separate_budgets() -> None:
    reconnect = Reconnect()
    assert reconnect.backoff is not reconnect.key_backoff


@pytest.mark.parametrize(
    "build",
    [
        lambda: Keepalive(ping_interval_s=0),
        lambda: Keepalive(listen_key_interval_ms=60 * 60_000),
        lambda: Reconnect(rotate_after_ms=0),
        lambda: Reconnect(rotation_timeout_ms=-1),
        lambda: Delivery(overflow="drop_newest"),  # type: ignore[arg-type]
        lambda: Delivery(max_buffered=0),
    ],
)
def test_impossible_settings_are_refused(build: object) -> None:
    with pytest.raises(ConfigurationError):
        build()  # type: ignore[operator]
