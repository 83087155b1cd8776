"""The ``scanner`` plugin's hooks (its ``legend.plugins`` entry point): a bars-reading plugin written only
against the plugin API (docs/plugins.md, "A bars-reading plugin: the scanner").

Every bar of the configured ``intervals`` that closes (``context.on_bars``: once in the cluster, on the
instance that builds the bars) is scanned with the series' recent bars (``context.bars``) by the detectors
of ``detectors.py`` (a breakout from a flat base, a new 52-week or N-bar high, a gap up or down at the open,
a volatility contraction pattern), and each pattern the bar completes is published once as a
``pattern_alert`` on ``patterns`` (``context.publish_pattern``). Parameters and scores: ``config.py``
(``[plugins.scanner]``). Its figures (``GET /api/plugins``): ``bars_scanned``, ``patterns_found``,
``alerts_published``.
"""

from __future__ import annotations

from legend.plugins import PluginContext, hookimpl
from legend.plugins.builtin.scanner.config import ScannerConfig
from legend.plugins.builtin.scanner.scanner import Scanner


@hookimpl
def config_schema() -> type[ScannerConfig]:
    return ScannerConfig


@hookimpl
async def on_startup(context: PluginContext) -> None:
    context.on_bars(context.singleton(Scanner).on_bars)
