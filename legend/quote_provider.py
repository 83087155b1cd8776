"""The quote provider ``quotes.provider`` names: a plugin's (``register_quote_providers``) or a built-in one.

Kept beside the composition root (``legend.bootstrap``), which calls it once: it is the one place that
knows both the plugins' providers and the built-in ones.
"""

from __future__ import annotations

import logging

from legend.adapters.quotes import build_provider
from legend.plugins.manager import PluginManager
from legend.ports.clock import Clock
from legend.ports.cluster import ClusterMembership, SharedPositions
from legend.ports.market import MarketCalendar
from legend.ports.quotes import QuoteProvider
from legend.settings import Settings

log = logging.getLogger("legend")


def quote_provider(
    settings: Settings,
    clock: Clock,
    plugins: PluginManager,
    calendar: MarketCalendar,
    cluster: ClusterMembership,
) -> QuoteProvider:
    """A plugin's provider when ``quotes.provider`` names one, else a built-in one (simulated, replay,
    finnhub, alpaca); an unknown name is a settings error that lists the plugins' providers too."""
    name = str(settings.quotes.provider)
    from_plugin = plugins.build_quote_provider(name)
    if from_plugin is not None:
        log.info("quote provider %r comes from a plugin", name)
        return from_plugin
    positions = cluster if isinstance(cluster, SharedPositions) else None  # a takeover continues a replay
    names = plugins.provider_names()
    return build_provider(
        settings.quotes, clock, plugin_providers=names, calendar=calendar, positions=positions
    )
