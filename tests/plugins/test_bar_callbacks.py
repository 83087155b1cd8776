"""The bars-reading plugin API (docs/plugins.md): ``on_bars`` callbacks get each closed bar once, in order,
off the event loop, isolated as ``on_price`` callbacks are (one that raises is counted, one that hangs fails
its plugin, a backlog drops its oldest bars, counted); ``publish_pattern`` publishes a valid alert on
``patterns`` and rejects an invalid one, counted; ``bars()`` reads the stored bars."""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from legend.bootstrap import Services
from legend.domain.bars import Bar
from legend.domain.events import BarsClosed
from legend.plugins import PluginContext, hookimpl
from legend.plugins import bars as plugin_bars
from legend.ports.repositories import PositionMove

from .helpers import eventually

Build = Callable[..., Services]
START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def bar(minute: int, close: float = 10.0, ticker: str = "BARS") -> Bar:
    return Bar(
        ticker=ticker, interval="1m", start=START + timedelta(minutes=minute), open=close, high=close + 1,
        low=close - 1, close=close, volume=100, regular=True, closed=True,
    )  # fmt: skip


def listening(callback: Callable[[list[Bar]], Any], kept: list[PluginContext] | None = None) -> Any:
    @hookimpl
    def on_startup(context: PluginContext) -> None:
        context.on_bars(callback)
        if kept is not None:
            kept.append(context)

    return types.SimpleNamespace(on_startup=on_startup)


def closed(services: Services, *bars: Bar) -> None:
    services.bus.publish(BarsClosed(bars))


def record(services: Services, name: str) -> Any:
    assert services.plugins is not None
    return services.plugins.records[name]


async def test_each_closed_bar_reaches_a_plain_callback_once_in_order_off_the_loop(build: Build) -> None:
    seen: list[tuple[str, float]] = []
    threads: list[bool] = []

    def on_bars(bars: list[Bar]) -> None:
        threads.append(threading.current_thread() is threading.main_thread())
        seen.extend((b.ticker, b.close) for b in bars)

    services = build({}, plugins={"reader": listening(on_bars)})
    await services.start()
    closed(services, bar(0, 1.0), bar(1, 2.0))
    closed(services, bar(2, 3.0, ticker="OTHER"))
    await eventually(lambda: len(seen) == 3, what="three bars handed over")
    assert seen == [("BARS", 1.0), ("BARS", 2.0), ("OTHER", 3.0)]
    assert threads and not any(threads)  # the plugin's worker thread, never the event loop
    assert record(services, "reader").errors == 0


async def test_a_callback_that_raises_is_counted_and_goes_on(build: Build) -> None:
    calls: list[int] = []

    def on_bars(bars: list[Bar]) -> None:
        calls.append(len(bars))
        raise ValueError("no model")

    services = build({}, plugins={"raiser": listening(on_bars)})
    await services.start()
    closed(services, bar(0))
    await eventually(lambda: record(services, "raiser").errors >= 1, what="the error counted")
    closed(services, bar(1))
    await eventually(lambda: len(calls) == 2, what="the next bars handed over all the same")
    raiser = record(services, "raiser")
    assert raiser.state.value == "enabled" and "ValueError: no model" in (raiser.last_error or "")


async def test_a_callback_that_hangs_fails_its_plugin_only(build: Build, release: threading.Event) -> None:
    others: list[Bar] = []

    def hangs(bars: list[Bar]) -> None:
        release.wait(10)

    services = build(
        {"hook_timeout": 0.2}, plugins={"frozen": listening(hangs), "calm": listening(others.extend)}
    )
    await services.start()
    closed(services, bar(0))
    frozen = record(services, "frozen")
    await eventually(lambda: frozen.state.value == "failed", what="the hanging plugin failed")
    assert frozen.last_error == "on_bars: HookTimeout: did not return within 0.2s"
    await eventually(lambda: len(others) == 1, what="the other plugin's callback")
    assert record(services, "calm").state.value == "enabled"


async def test_a_backlog_drops_its_oldest_bars_counted(
    build: Build, release: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin_bars, "MAX_PENDING", 3)
    got: list[float] = []
    started = threading.Event()

    def slow(bars: list[Bar]) -> None:
        started.set()
        release.wait(10)
        got.extend(b.close for b in bars)

    services = build({"hook_timeout": 30}, plugins={"slow": listening(slow)})
    await services.start()
    closed(services, bar(0, 0.0))
    await eventually(started.is_set, what="the first call to start")
    closed(services, *(bar(i, float(i)) for i in range(1, 6)))  # 5 waiting, room for 3
    slow_record = record(services, "slow")
    assert "2 closed bars dropped: the callbacks fall behind" in (slow_record.last_error or "")
    release.set()
    await eventually(lambda: len(got) == 4, what="the first bar, then the newest three")
    assert got == [0.0, 3.0, 4.0, 5.0]


async def test_publish_pattern_publishes_a_valid_alert_and_rejects_an_invalid_one(build: Build) -> None:
    kept: list[PluginContext] = []
    services = build({}, plugins={"finder": listening(lambda bars: None, kept)})
    await services.start()
    [context] = kept
    envelope = await context.publish_pattern(
        {
            "ticker": "aapl",
            "pattern_type": "GAP_UP",
            "score": 7.5,
            "entry_price": 100.0,
            "stop_price": 95.0,
            "target_price": 110.0,
            "message": "AAPL gapped up",
        }
    )
    assert (
        envelope is not None and envelope.stream == "patterns" and '"risk_reward_ratio":2.0' in envelope.text
    )
    finder = record(services, "finder")
    assert finder.messages_published == 1
    for bad in (
        {"ticker": "AAPL", "pattern_type": "GAP_UP"},  # no prices, no score
        {
            "ticker": "AA$PL",
            "pattern_type": "X",
            "score": 5,
            "entry_price": 1,
            "stop_price": 0.5,
            "target_price": 2,
            "message": "bad ticker",
        },
        {
            "ticker": "AAPL",
            "pattern_type": "X",
            "score": 500,
            "entry_price": 1,
            "stop_price": 0.5,
            "target_price": 2,
            "message": "score out of range",
        },
    ):
        assert await context.publish_pattern(bad) is None, bad
    assert finder.messages_rejected == 3 and finder.messages_published == 1
    assert "pattern alert:" in (finder.last_error or "")


async def test_bars_reads_what_the_store_holds(build: Build) -> None:
    kept: list[PluginContext] = []
    services = build({}, plugins={"reader": listening(lambda bars: None, kept)})
    await services.start()
    [context] = kept
    assert await context.bars("BARS", "1m") == []
    assert services.bars is not None
    stored = [bar(i, 10.0 + i) for i in range(5)]
    await services.bars.write(stored, PositionMove("bars-test", None, "1"))
    read = await context.bars("bars", "1m", limit=3)
    assert [b.close for b in read] == [12.0, 13.0, 14.0]
    assert [b.close for b in await context.bars("BARS", "1m", before=START + timedelta(minutes=2))] == [
        10.0,
        11.0,
    ]
    with pytest.raises(ValueError):
        await context.bars("BARS", "2m")
