"""The backplane's figures, from ``Backplane.health()`` (the Redis backplane has them all, the in-memory one
only whether it is up)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from legend.adapters.prometheus.families import by_label, counter, gauge, number
from legend.ports.backplane import Backplane

# Numeric fields of ``Backplane.health()`` (the Redis backplane has them all, the in-memory one none).
_BACKPLANE_COUNTERS: Mapping[str, tuple[str, str]] = {
    "reconnects": ("legend_backplane_reconnects", "Times the backplane connection was re-established."),
    "publish_failures": (
        "legend_backplane_publish_failures",
        "Backplane publish commands that failed (Redis down or too slow).",
    ),
    "delivered": (
        "legend_backplane_messages_received",
        "Messages received from the backplane and delivered here (duplicates skipped).",
    ),
    "delivery_errors": (
        "legend_backplane_delivery_errors",
        "Messages from the backplane whose local delivery raised.",
    ),
    "gap_filled": (
        "legend_backplane_gaps_filled",
        "Sequence gaps (messages missed while disconnected) filled from history.",
    ),
    "duplicates_skipped": (
        "legend_backplane_duplicates_skipped",
        "Messages received twice from the backplane and delivered once.",
    ),
}
_EXTERNAL = {
    "external_resequenced": "resequenced",
    "external_duplicates": "duplicate",
    "external_invalid": "invalid",
    "external_failed": "failed",
}


def backplane(backplane: Backplane) -> Iterator[Metric]:
    health = backplane.health()
    backend = str(health.get("backend", "unknown"))
    up = GaugeMetricFamily(
        "legend_backplane_up",
        "1 while the backplane works (Redis: subscribed and the last command succeeded), else 0.",
        labels=["backend"],
    )
    up.add_metric([backend], 1.0 if health.get("ok") else 0.0)
    yield up
    for key, (name, documentation) in _BACKPLANE_COUNTERS.items():
        value = number(health.get(key))
        if value is not None:
            yield counter(name, documentation, value)
    outcomes = {outcome: number(health.get(key)) for key, outcome in _EXTERNAL.items()}
    known = {outcome: value for outcome, value in outcomes.items() if value is not None}
    if known:
        yield by_label(
            "legend_backplane_external_messages",
            "Messages PUBLISHed to the backplane by other programs, by outcome: resequenced (delivered), "
            "duplicate, invalid, failed (lost).",
            "outcome",
            known,
        )
    streams = health.get("streams")
    if isinstance(streams, int | float):
        yield gauge("legend_backplane_streams", "Streams the backplane tracks on this instance.", streams)
