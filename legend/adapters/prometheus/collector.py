"""The collector: what Prometheus reads at each scrape, section by section, and the registry of one app."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from legend import __version__
from legend.adapters.prometheus import alerting as alerting_metrics
from legend.adapters.prometheus import backplane as backplane_metrics
from legend.adapters.prometheus import bars as bar_metrics
from legend.adapters.prometheus import notifications as notification_metrics
from legend.adapters.prometheus import plugins as plugin_metrics
from legend.adapters.prometheus import quotes as quote_metrics
from legend.adapters.prometheus import streaming as streaming_metrics
from legend.adapters.prometheus import tasks as task_metrics
from legend.adapters.prometheus.families import gauge
from legend.domain.channels import ChannelRegistry
from legend.ports.backplane import Backplane
from legend.ports.quotes import QuoteProvider
from legend.runtime.supervisor import TaskSupervisor
from legend.services.alerts.service import AlertingService
from legend.services.bars.building import BarBuilding
from legend.services.notifications.service import NotificationService
from legend.services.polling.quote_poller import QuotePoller
from legend.services.streaming.service import StreamingService

log = logging.getLogger("legend.metrics")

Section = tuple[str, Callable[[], Iterable[Metric]]]  # a name, and what collects it


def instance(instance_id: str, provider: QuoteProvider, streaming: StreamingService) -> Iterator[Metric]:
    yield InfoMetricFamily(
        "legend_build",
        "Version of Legend Realtime and of Python.",
        value={"version": __version__, "python": platform.python_version()},
    )
    yield InfoMetricFamily(
        "legend_instance",
        "This instance: its id on the backplane (new at every start) and its quote provider.",
        value={"instance_id": instance_id, "provider": provider.name},
    )
    yield gauge(
        "legend_uptime_seconds",
        "Seconds since the streaming service started.",
        streaming.uptime(),
    )


def sections(
    *,
    instance_id: str,
    provider: QuoteProvider,
    streaming: StreamingService,
    registry: ChannelRegistry,
    backplane: Backplane,
    quote_poller: QuotePoller,
    alerting: AlertingService,
    plugins: plugin_metrics.PluginSummaries,
    plugin_states: Sequence[str],
    supervisor: TaskSupervisor,
    bar_building: BarBuilding | None = None,
    notifications: NotificationService | None = None,
) -> tuple[Section, ...]:
    """What a scrape collects, in this order, each section given only what it reads; a section that raises
    is left out of that scrape. ``plugins`` gives the plugins' summaries and ``plugin_states`` the names of
    their states (``legend.plugins`` is not imported here: it builds on the adapters, not they on it);
    ``bar_building`` is None where bars are not built (no database, ``bars.enabled = false``)."""
    bars: tuple[Section, ...] = (
        () if bar_building is None else (("bars", partial(bar_metrics.bars, bar_building)),)
    )
    delivery: tuple[Section, ...] = (
        ()
        if notifications is None
        else (("delivery", partial(notification_metrics.notifications, notifications)),)
    )
    return (
        ("instance", partial(instance, instance_id, provider, streaming)),
        ("sessions", partial(streaming_metrics.sessions, streaming, registry)),
        ("connections", partial(streaming_metrics.connections, streaming.counters)),
        ("messages", partial(streaming_metrics.messages, streaming.counters)),
        ("latency", partial(streaming_metrics.latency, streaming)),
        ("backplane", partial(backplane_metrics.backplane, backplane)),
        ("provider", partial(quote_metrics.provider, quote_poller, provider)),
        ("alerting", partial(alerting_metrics.alerting, alerting)),
        *bars,
        *delivery,
        ("plugins", partial(plugin_metrics.plugins, plugins, plugin_states)),
        ("tasks", partial(task_metrics.tasks, supervisor)),
    )


class LegendCollector(Collector):
    """Yields this instance's metric families from its ``sections`` at each scrape (on the event loop, so
    the figures are read between two steps of the domain, never while one is half done)."""

    def __init__(self, sections: Iterable[Section]) -> None:
        self.sections = tuple(sections)
        self.failures: dict[str, int] = {}  # section -> scrapes in which it raised

    def collect(self) -> Iterator[Metric]:
        for section, collect in self.sections:
            try:
                families = list(collect())  # all of a section, or none of it
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
        for section, _ in self.sections:
            failures.add_metric([section], self.failures.get(section, 0))
        yield failures


def metrics_registry(sections: Iterable[Section]) -> CollectorRegistry:
    """A registry of this instance's metrics plus the process's (CPU, memory, file descriptors) and the
    Python runtime's; one per app, so that several apps in one process never share figures."""
    registry = CollectorRegistry()
    registry.register(LegendCollector(sections))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
