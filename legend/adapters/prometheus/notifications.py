"""Alert delivery's figures per channel (webhook, push, email): attempts, attempts that did not deliver,
and the time they took."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from legend.adapters.prometheus.families import by_label, counter
from legend.services.notifications.service import NotificationService


def notifications(service: NotificationService) -> Iterator[Metric]:
    figures = service.figures
    yield by_label(
        "legend_alert_delivery_attempts",
        "Attempts to deliver a trigger, per channel.",
        "channel",
        figures.attempts,
    )
    yield by_label(
        "legend_alert_delivery_failures",
        "Attempts that did not deliver (retried, failed or removed), per channel.",
        "channel",
        figures.failures,
    )
    yield by_label(
        "legend_alert_delivery_seconds",
        "Seconds spent in delivery attempts, per channel (over attempts: the mean latency).",
        "channel",
        figures.seconds,
    )
    planned = "Deliveries planned by this instance (a trigger times its destinations)."
    yield counter("legend_alert_deliveries_planned", planned, figures.planned)
