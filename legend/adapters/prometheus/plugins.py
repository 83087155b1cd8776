"""The plugins' figures: state, errors, messages, feeds, and each plugin's own ``metrics``.

Read from the plugins' summaries (the entries of ``GET /api/plugins``), which the composition root hands
over with the names of the plugin states: the adapters know nothing of ``legend.plugins``, which builds on
them (its HTTP helpers and SQL tables), so the dependency between the two points one way."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from legend.adapters.prometheus.families import number

PluginSummaries = Callable[[], Iterable[Mapping[str, Any]]]  # PluginManager.summaries


def plugins(summaries: PluginSummaries, states: Sequence[str]) -> Iterator[Metric]:
    """``summaries()``: one mapping per plugin with the keys of ``PluginRecord.summary`` (``name``,
    ``state``, ``errors``, ``messages_*``, ``feeds``, ``metrics``); ``states``: every state a plugin can
    be in (each gets a sample, 1 for the current one)."""
    records = sorted(summaries(), key=lambda summary: str(summary["name"]))
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
        name = str(record["name"])
        for value in states:
            state.add_metric([name, value], float(record["state"] == value))
        errors.add_metric([name], record["errors"])
        for outcome in ("published", "rejected", "refused"):
            messages.add_metric([name, outcome], record[f"messages_{outcome}"])
        for feed, status in sorted(record["feeds"].items()):
            feed_runs.add_metric([name, feed], status["restarts"])
            feed_errors.add_metric([name, feed], status["errors"])
        for key, raw in sorted(record["metrics"].items(), key=lambda item: str(item[0])):
            figure = number(raw)
            if figure is not None:
                own.add_metric([name, str(key)], figure)
    yield from (family for family in (state, errors, messages, feed_runs, feed_errors, own) if family.samples)
