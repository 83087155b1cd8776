"""A plugin whose on_startup never finishes, and that has a feed which must then never start."""

from __future__ import annotations

import asyncio
from typing import Any

from legend.plugins import PluginContext, hookimpl

STARTED_FEED: list[str] = []


@hookimpl
def register_feeds(register: Any) -> None:
    register("never", never)


async def never(context: PluginContext) -> None:
    STARTED_FEED.append(context.name)


@hookimpl
async def on_startup(context: PluginContext) -> None:
    await asyncio.Event().wait()
