"""The plugins' figures: state, errors, messages, feeds, and each plugin's own ``metrics``."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from legend.adapters.prometheus.families import number
from legend.plugins.manager import PluginManager
from legend.plugins.state import PluginState


def plugins(manager: PluginManager) -> Iterator[Metric]:
    records = [manager.records[name] for name in sorted(manager.records)]
    state = GaugeMetricFamily(
        "legend_plugin_state",
        "1 for each plugin's current state: enabled, disabled, blocked or failed.",
        labels=["plugin", "state"],
    )
    errors = CounterMetricFamily(
        "legend_plugin_errors",
        "Errors counted against a plugin (hooks, callbacks, feeds).",
        labels=["plugin"],
    )
    messages = CounterMetricFamily(
        "legend_plugin_messages",
        "Messages a plugin tried to publish, by outcome: published, rejected (invalid), refused (the "
        "plugin had failed).",
        labels=["plugin", "outcome"],
    )
    feed_runs = CounterMetricFamily(
        "legend_plugin_feed_restarts",
        "Times a plugin's feed was restarted after it ended or raised.",
        labels=["plugin", "feed"],
    )
    feed_errors = CounterMetricFamily(
        "legend_plugin_feed_errors", "Errors raised by a plugin's feed.", labels=["plugin", "feed"]
    )
    own = GaugeMetricFamily(
        "legend_plugin_metric",
        "A plugin's own numbers (PluginContext.metrics), by their name.",
        labels=["plugin", "metric"],
    )
    for record in records:
        for value in PluginState:
            state.add_metric([record.name, value.value], float(record.state is value))
        errors.add_metric([record.name], record.errors)
        messages.add_metric([record.name, "published"], record.messages_published)
        messages.add_metric([record.name, "rejected"], record.messages_rejected)
        messages.add_metric([record.name, "refused"], record.messages_refused)
        for feed, runner in sorted(record.feeds.items()):
            feed_runs.add_metric([record.name, feed], runner.restarts)
            feed_errors.add_metric([record.name, feed], runner.errors)
        if record.context is not None:
            for key, raw in sorted(record.context.metrics.items()):
                figure = number(raw)
                if figure is not None:
                    own.add_metric([record.name, str(key)], figure)
    yield from (family for family in (state, errors, messages, feed_runs, feed_errors, own) if family.samples)
