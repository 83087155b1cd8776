"""A plugin whose plain price callback blocks (until ``release_file`` exists): the server must keep
serving every connection meanwhile, and fail the plugin after ``hook_timeout``."""

from __future__ import annotations

import time
from pathlib import Path

from legend.plugins import PluginConfig, PluginContext, PriceUpdate, hookimpl


class SleepyConfig(PluginConfig):
    release_file: str = ""


@hookimpl
def config_schema() -> type[SleepyConfig]:
    return SleepyConfig


@hookimpl
def on_startup(context: PluginContext) -> None:
    release = Path(context.config.release_file)

    def on_price(price: PriceUpdate) -> None:  # like `time.sleep(10)` in a callback, but released by the test
        context.metrics["blocked_on"] = 1
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    context.on_price(on_price)
