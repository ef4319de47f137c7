"""The weaknesses `docs/client-comparison.md` reports, checked on short runs (issue 3, "Proof").

Each test runs one scenario from `scenarios.py` through an unmodified third-party library
and asserts the behaviour the document describes, so the document's claims stay true for
the pinned versions.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.functional.client.scenarios import QUICK, SCENARIOS, run_scenario
from tests.functional.client.subjects import OfficialSdkSubject, PythonBinanceSubject

pytestmark = pytest.mark.compat

AS_SHIPPED = replace(QUICK, keepalive_s=300.0)  # python-binance's default user_timeout


async def test_python_binance_stays_on_a_deleted_key_and_gets_nothing(tmp_path: Path) -> None:
    subject = PythonBinanceSubject()
    result = await run_scenario(SCENARIOS["key_deleted"], subject, AS_SHIPPED, tmp_path / "d")
    detail = result.summary()
    assert not result.recovered, detail
    assert result.loss_windows == [(AS_SHIPPED.per_phase + 1, result.published)], detail
    assert result.lost_on_air == 0, detail  # the server had nowhere to send them
    assert result.announced == "hint", detail  # only the raw listenKeyExpired dict
    assert result.markers == ["hint: listenKeyExpired (raw dict)"], detail


async def test_python_binance_read_loop_dies_when_its_consumer_falls_behind(
    tmp_path: Path,
) -> None:
    result = await run_scenario(SCENARIOS["stall"], PythonBinanceSubject(), QUICK, tmp_path / "d")
    detail = result.summary()
    assert not result.recovered, detail
    assert result.lost_on_air > QUICK.burst // 2, detail  # delivered to it, never yielded
    assert any("ReadLoopClosed" in m for m in result.markers), detail


async def test_official_sdk_stops_after_a_server_side_close(tmp_path: Path) -> None:
    result = await run_scenario(SCENARIOS["drop_1000"], OfficialSdkSubject(), QUICK, tmp_path / "d")
    detail = result.summary()
    assert not result.recovered, detail
    assert result.received == QUICK.per_phase, detail  # only what came before the first close
    assert result.announced == "hint", detail  # its connection 'close' callback, nothing more
    assert result.duplicates == 0, detail


async def test_official_sdk_stays_on_an_expired_key(tmp_path: Path) -> None:
    result = await run_scenario(
        SCENARIOS["key_expired"], OfficialSdkSubject(), QUICK, tmp_path / "d"
    )
    detail = result.summary()
    assert not result.recovered, detail
    assert result.received == QUICK.per_phase, detail
    assert "hint: ListenKeyExpired model" in result.markers, detail
