"""`bench.run`'s market sections read what `bench.market` and `bench.risk` print: a tiny run
of each, parsed, rendered and plotted, so a change of either's output shows up here."""

from __future__ import annotations

from pathlib import Path

from bench.market_sections import (
    PLOTS,
    MarketSections,
    Sizes,
    command,
    parse_market,
    parse_risk,
    plot,
    render,
)


async def test_tiny_market_and_risk_runs_parse_render_and_plot(tmp_path: Path) -> None:
    sizes = Sizes(
        connections=4,
        bursts=1,
        burst_ms=200,
        latency_s=0.5,
        source_seconds=2,
        repeat=1,
        orders=100,
        ticks=20,
        mirror_events=1000,
    )
    sections = MarketSections(sizes)
    parse_market(await command("bench.market", sizes.market_args), sections)
    assert set(sections.fanout) == {"userstream", "picows raw (coalesce)", "nats-server websocket"}
    assert all(rate > 0 for rate, _ in sections.fanout.values())
    assert sections.latency is not None
    assert sections.latency_floor is not None  # raw picows on the same schedule
    assert sections.latency_floor[0] == sections.latency[0]
    parse_risk(await command("bench.risk", sizes.risk_args), sections)
    assert [n for n, _ in sections.index] == [10, 100, 1000]
    assert sections.engine_us > 0
    assert sections.funding is not None
    assert sections.funding[0] == 100
    assert plot(sections, tmp_path) == [f"img/{name}.png" for name in PLOTS]
    assert all((tmp_path / f"{name}.png").stat().st_size > 0 for name in PLOTS)
    text = "\n".join(render(sections))
    assert "| userstream |" in text
    assert "Raw picows on the same schedule" in text
    assert "One funding settlement over 100 positions" in text
