"""Bar building's figures: which instance builds the cluster's bars, how far behind it is, what it
stored, corrected and dropped."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from legend.adapters.prometheus.families import counters
from legend.adapters.prometheus.leased import leased
from legend.services.bars.building import BarBuilding


def bars(building: BarBuilding) -> Iterator[Metric]:
    yield from leased(
        building,
        ("legend_bars_leader", "1 on the instance that builds the OHLCV bars for the cluster, else 0."),
        (
            "legend_bars_lag_seconds",
            "How long the oldest price not yet stored in its bars has waited (0 when caught up; only on "
            "the building instance).",
        ),
    )
    yield from counters(
        {
            "legend_bars_prices_built": (building.prices_built, "Prices built into bars and stored."),
            "legend_bars_prices_invalid": (
                building.prices_invalid,
                "Price log entries that made no bar (unreadable, or outside the market calendar).",
            ),
            "legend_bars_written": (
                building.bars_written,
                "Bars written to the bar store (each write batched).",
            ),
            "legend_bars_published": (building.bars_published, "Bars published on the bars channel."),
            "legend_bars_corrections": (building.corrections, "Closed bars changed by a late price."),
            "legend_bars_late_dropped": (
                building.late_dropped,
                "Bar updates dropped because the price's bar was no longer held (too late).",
            ),
            "legend_bars_log_gaps": (
                building.log_gaps,
                "Times bar building fell behind the price log and prices were trimmed unbuilt.",
            ),
            "legend_bars_publish_failures": (building.publish_failures, "Bars that could not be published."),
            "legend_bars_position_conflicts": (
                building.position_conflicts,
                "Writes refused because another instance had moved the position (then reloaded).",
            ),
            "legend_bars_failures": (
                building.failures,
                "Build rounds that failed (store, log or backplane unavailable) and were reloaded.",
            ),
        }
    )
