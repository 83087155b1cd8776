"""The collector: what Prometheus reads at each scrape, section by section, and the registry of one app."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from legend import __version__
from legend.adapters.prometheus import alerting, backplane, plugins, quotes, streaming, tasks
from legend.adapters.prometheus.families import gauge
from legend.bootstrap import Services

log = logging.getLogger("legend.metrics")


def instance(services: Services) -> Iterator[Metric]:
    yield InfoMetricFamily(
        "legend_build",
        "Version of Legend Realtime and of Python.",
        value={"version": __version__, "python": platform.python_version()},
    )
    yield InfoMetricFamily(
        "legend_instance",
        "This instance: its id on the backplane (new at every start) and its quote provider.",
        value={"instance_id": services.instance_id, "provider": services.provider.name},
    )
    yield gauge(
        "legend_uptime_seconds",
        "Seconds since the streaming service started.",
        services.streaming.uptime(),
    )


SECTIONS: tuple[tuple[str, Callable[[Services], Iterable[Metric]]], ...] = (
    ("instance", instance),
    ("sessions", streaming.sessions),
    ("connections", streaming.connections),
    ("messages", streaming.messages),
    ("latency", streaming.latency),
    ("backplane", backplane.backplane),
    ("provider", quotes.provider),
    ("alerting", alerting.alerting),
    ("plugins", plugins.plugins),
    ("tasks", tasks.tasks),
)  # what a scrape collects, in this order; a section that raises is left out of that scrape


class LegendCollector(Collector):
    """Yields this instance's metric families from ``services`` at each scrape (on the event loop, so the
    figures are read between two steps of the domain, never while one is half done)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.failures: dict[str, int] = {}  # section -> scrapes in which it raised

    def collect(self) -> Iterator[Metric]:
        for section, collect in SECTIONS:
            try:
                families = list(collect(self.services))  # all of a section, or none of it
            except Exception:
                self.failures[section] = self.failures.get(section, 0) + 1
                if self.failures[section] == 1:
                    log.exception("metrics: collecting %s failed; left out of the scrape", section)
                continue
            yield from families
        failures = CounterMetricFamily(
            "legend_metrics_collect_errors",
            "Scrapes in which a section of these metrics could not be collected (the log has the first "
            "traceback).",
            labels=["section"],
        )
        for section, _ in SECTIONS:
            failures.add_metric([section], self.failures.get(section, 0))
        yield failures


def metrics_registry(services: Services) -> CollectorRegistry:
    """A registry of this instance's metrics plus the process's (CPU, memory, file descriptors) and the
    Python runtime's; one per app, so that several apps in one process never share figures."""
    registry = CollectorRegistry()
    registry.register(LegendCollector(services))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
