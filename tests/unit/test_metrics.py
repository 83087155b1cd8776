"""The Prometheus collector on in-process services (in-memory backplane, frozen clock): every figure it
exports is the live one, in the text format the official parser reads back."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.prometheus.collector import LegendCollector, metrics_registry
from legend.app import metric_sections
from legend.bootstrap import Services, bootstrap
from legend.domain.inputs import PatternInput, PriceInput
from legend.domain.stats import LatencyHistogram
from legend.plugins.state import PluginState
from legend.settings import DatabaseSettings, Settings
from tests.support.loop import settle
from tests.support.transport import RecordingTransport, StuckTransport

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"))
    built = bootstrap(settings, clock=FrozenClock(), backplane=InMemoryBackplane(), run_quote_poller=False)
    await built.start()
    yield built
    await built.stop()


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of a scrape, parsed back from the text format by the client library's parser."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, /, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples: Samples, name: str) -> float:
    """A counter summed over all its label values."""
    return sum(v for (sample, _), v in samples.items() if sample == name)


def only_legend(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(LegendCollector(metric_sections(services)))
    return registry


def price(ticker: str, value: float) -> PriceInput:
    return PriceInput(ticker=ticker, price=value, change=0, change_percent=0, volume=1)


async def test_connections_subscriptions_messages_and_outbox_are_read_live(services: Services) -> None:
    streaming = services.streaming
    registry = metrics_registry(metric_sections(services))
    before = scrape(registry)
    assert value(before, "legend_connections") == 0
    assert value(before, "legend_subscriptions", channel="ticker") == 0
    assert value(before, "legend_subscriptions", channel="news") == 0  # plugin channels too
    fast, slow = RecordingTransport(), StuckTransport()
    alice = streaming.open_session(fast, "alice")
    bob = streaming.open_session(slow, "bob")
    for ticker in ("AAPL", "MSFT", "NVDA"):
        await streaming.handle_frame(alice, f'{{"type":"subscribe","channel":"ticker","ticker":"{ticker}"}}')
    await streaming.handle_frame(alice, '{"type":"subscribe","channel":"patterns"}')
    await streaming.handle_frame(bob, '{"type":"subscribe","channel":"patterns"}')
    await streaming.handle_frame(bob, '{"type":"subscribe","channel":"ticker","ticker":"AAPL"}')
    await services.publisher.price(price("AAPL", 101))
    for i in range(3):
        await services.publisher.pattern(
            PatternInput(
                ticker="AAPL",
                pattern_type="VCP",
                score=5,
                entry_price=100 + i,
                stop_price=95,
                target_price=120,
            )
        )
    await settle()

    now = scrape(registry)
    assert value(now, "legend_connections") == 2
    assert value(now, "legend_connections_opened_total") == 2
    assert value(now, "legend_subscriptions", channel="ticker") == 4
    assert value(now, "legend_subscriptions", channel="patterns") == 2
    assert value(now, "legend_subscribed_connections", channel="ticker") == 2
    assert value(now, "legend_subscribed_connections", channel="alerts") == 0
    assert value(now, "legend_tickers_watched") == 3
    assert total(now, "legend_messages_received_total") == 6
    assert value(now, "legend_messages_published_total") == 4
    assert value(now, "legend_fanout_messages_total") == 4
    # alice took everything at once; bob's socket takes nothing: his replies and messages wait
    assert total(now, "legend_messages_sent_total") == streaming.counters.messages_sent > 4
    assert value(now, "legend_outbox_messages") == len(bob.outbox) > 0
    assert value(now, "legend_outbox_messages_max") == len(bob.outbox)
    assert value(now, "legend_outbox_bytes_max") == bob.outbox.pending_bytes > 0
    assert value(now, "legend_connections_send_blocked") == 1  # bob's writer waits on the socket
    assert value(now, "process_open_fds") > 0  # the process collector is there too

    streaming.end_session(alice)
    after = scrape(registry)
    assert value(after, "legend_connections") == 1
    assert value(after, "legend_subscriptions", channel="ticker") == 1
    assert value(after, "legend_tickers_watched") == 1
    assert value(after, "legend_connections_opened_total") == 2


async def test_every_counter_the_domain_keeps_is_exported(services: Services) -> None:
    """Each Counters field shows in a scrape with its value: a field added to the domain (as the lead adds
    them) shows even before it gets a name of its own here; this fails for a dict the collector cannot
    label."""
    counters = services.streaming.counters
    expected: dict[str, float] = {}
    for number, declared in enumerate(dataclasses.fields(counters), start=1001):
        current = getattr(counters, declared.name)
        if isinstance(current, int):
            setattr(counters, declared.name, number)
            expected[declared.name] = number
        elif isinstance(current, dict):
            setattr(counters, declared.name, {"x": number})
            expected[declared.name] = number
    values = set(scrape(only_legend(services)).values())
    summed = {"messages_sent", "messages_received"}  # the sums of sent_by_type and received_by_type
    missing = [name for name, number in expected.items() if number not in values and name not in summed]
    assert not missing, f"Counters fields not exported: {missing}"


async def test_breakdowns_limits_and_the_latency_histogram_are_exported(services: Services) -> None:
    registry = only_legend(services)
    counters = services.streaming.counters
    counters.sent_by_type.update({"price_update": 9, "pong": 3})
    counters.received_by_type.update({"subscribe": 4, "ping": 3, "invalid": 1})
    counters.messages_deferred, counters.messages_dropped = 5, 7
    counters.refused_user_limit, counters.refused_address_limit, counters.refused_connect_rate = 2, 1, 4
    histogram = services.streaming.fanout.send_latency = LatencyHistogram((0.001, 0.01, 0.1, 1.0))
    for seconds, times in ((0.0005, 4), (0.005, 3), (0.05, 2), (2.0, 1)):
        histogram.observe(seconds, times)
    samples = scrape(registry)
    assert value(samples, "legend_messages_sent_total", type="price_update") == 9
    assert value(samples, "legend_messages_sent_total", type="pong") == 3
    assert ("legend_messages_sent_total", frozenset()) not in samples  # the breakdown replaces the total
    assert value(samples, "legend_messages_received_total", type="invalid") == 1
    assert value(samples, "legend_messages_deferred_total") == 5
    assert value(samples, "legend_messages_dropped_total") == 7
    assert value(samples, "legend_connections_limited_total", limit="user") == 2
    assert value(samples, "legend_connections_limited_total", limit="address") == 1
    assert value(samples, "legend_connections_limited_total", limit="rate") == 4
    buckets = {
        labels: v for (name, labels), v in samples.items() if name == "legend_send_latency_seconds_bucket"
    }
    assert {dict(labels)["le"]: v for labels, v in buckets.items()} == {
        "0.001": 4,
        "0.01": 7,
        "0.1": 9,
        "1.0": 9,
        "+Inf": 10,
    }
    assert value(samples, "legend_send_latency_seconds_count") == 10
    assert value(samples, "legend_send_latency_seconds_sum") == pytest.approx(
        4 * 0.0005 + 3 * 0.005 + 2 * 0.05 + 2.0
    )
    documented = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
    names = {re.sub(r"_(bucket|sum|count)$", "", name) for name, _ in samples}
    assert not sorted(n for n in names if f"`{n}`" not in documented)


async def test_backplane_alerting_and_plugin_health(services: Services) -> None:
    registry = only_legend(services)
    samples = scrape(registry)
    assert value(samples, "legend_backplane_up", backend="memory") == 1
    assert value(samples, "legend_alert_evaluation_holder") == 1  # alone on the memory backplane
    assert value(samples, "legend_alert_evaluation_lag_seconds") == 0
    assert value(samples, "legend_plugin_state", plugin="news", state="enabled") == 1
    assert value(samples, "legend_plugin_state", plugin="news", state="failed") == 0

    assert services.plugins is not None
    news = services.plugins.records["news"]
    news.fail("on_price", RuntimeError("boom"))
    assert news.context is not None
    news.context.metrics.update({"items": 7, "label": "not a number"})
    samples = scrape(registry)
    assert value(samples, "legend_plugin_state", plugin="news", state="failed") == 1
    assert value(samples, "legend_plugin_state", plugin="news", state="enabled") == 0
    assert value(samples, "legend_plugin_errors_total", plugin="news") == 1
    assert value(samples, "legend_plugin_metric", plugin="news", metric="items") == 7
    assert ("legend_plugin_metric", frozenset({("plugin", "news"), ("metric", "label")})) not in samples
    assert news.state is PluginState.FAILED


async def test_the_quote_pollers_lease_losses_and_fenced_publishes_are_exported(services: Services) -> None:
    registry = only_legend(services)
    samples = scrape(registry)
    assert value(samples, "legend_streamer_lease_lost_total") == 0
    assert value(samples, "legend_streamer_fenced_total") == 0
    services.quote_poller.lease_lost, services.quote_poller.fenced = 3, 2
    samples = scrape(registry)
    assert value(samples, "legend_streamer_lease_lost_total") == 3
    assert value(samples, "legend_streamer_fenced_total") == 2


async def test_the_supervised_tasks_are_exported(services: Services) -> None:
    samples = scrape(only_legend(services))
    assert value(samples, "legend_task_state", task="sweeper", state="running") == 1
    assert value(samples, "legend_task_restarts_total", task="alert-evaluation") == 0

    async def broken() -> None:
        raise RuntimeError("a bug")

    task = services.supervisor.start("broken", broken, restart=None)
    assert task.task is not None
    await task.task
    samples = scrape(only_legend(services))
    assert value(samples, "legend_task_state", task="broken", state="failed") == 1
    assert value(samples, "legend_task_state", task="broken", state="running") == 0
    assert value(samples, "legend_task_failures_total", task="broken") == 1
    assert value(samples, "legend_task_restarts_total", task="broken") == 0


async def test_a_part_that_fails_is_left_out_and_counted_and_the_rest_is_scraped(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("health check exploded")

    monkeypatch.setattr(services.backplane, "health", broken)
    samples = scrape(only_legend(services))
    assert not any(name.startswith("legend_backplane_") for name, _ in samples)
    assert value(samples, "legend_metrics_collect_errors_total", section="backplane") == 1
    assert value(samples, "legend_metrics_collect_errors_total", section="instance") == 0
    assert value(samples, "legend_connections") == 0  # everything else is there
    assert value(samples, "legend_alert_evaluation_holder") == 1
