"""The figures every leased loop has (alert evaluation, bar building): whether this instance holds the
lease, and how far behind the price log it is."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from legend.adapters.prometheus.families import gauge
from legend.services.leased_loop import LeasedLoop


def leased(loop: LeasedLoop, holder: tuple[str, str], lag: tuple[str, str]) -> Iterator[Metric]:
    """``holder`` and ``lag``: (name, documentation) of the 0/1 gauge and of the lag in seconds (only on
    the holder)."""
    yield gauge(*holder, float(loop.holder))
    seconds = loop.lag()
    if seconds is not None:
        yield gauge(*lag, seconds)
