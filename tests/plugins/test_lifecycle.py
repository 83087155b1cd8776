"""``on_startup`` and ``on_shutdown`` of all plugins run concurrently, each bounded by ``hook_timeout``: hooks
that hang delay readiness by one timeout, not one each, and a hook that blocks the event loop is blamed on
itself, not on the hooks that happened to be waiting meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from legend.bootstrap import Services
from legend.plugins import PluginContext, hookimpl

Build = Callable[..., Services]


def states(services: Services, *names: str) -> dict[str, tuple[str, str | None]]:
    assert services.plugins is not None
    return {
        name: (services.plugins.records[name].state.value, services.plugins.records[name].last_error)
        for name in names
    }


async def test_plain_startup_hooks_run_at_the_same_time(build: Build) -> None:
    # each waits for the other: run one after another, the first would time out
    meet = threading.Barrier(2, timeout=5)
    plugins: dict[str, object] = {}
    for name in ("left", "right"):

        @hookimpl
        def on_startup(context: PluginContext) -> None:
            meet.wait()

        plugins[name] = types.SimpleNamespace(on_startup=on_startup)
    services = build({"hook_timeout": 2.0}, plugins=plugins)
    await services.start()
    assert states(services, "left", "right") == {"left": ("enabled", None), "right": ("enabled", None)}


async def test_async_startup_and_shutdown_hooks_run_at_the_same_time(build: Build) -> None:
    ready = {"left": asyncio.Event(), "right": asyncio.Event()}
    down = {"left": asyncio.Event(), "right": asyncio.Event()}
    plugins: dict[str, object] = {}
    for name, other in (("left", "right"), ("right", "left")):

        @hookimpl
        async def on_startup(context: PluginContext, name: str = name, other: str = other) -> None:
            ready[name].set()
            await ready[other].wait()

        @hookimpl
        async def on_shutdown(context: PluginContext, name: str = name, other: str = other) -> None:
            down[name].set()
            await down[other].wait()

        plugins[name] = types.SimpleNamespace(on_startup=on_startup, on_shutdown=on_shutdown)
    services = build({"hook_timeout": 2.0}, plugins=plugins)
    await services.start()
    assert states(services, "left", "right") == {"left": ("enabled", None), "right": ("enabled", None)}
    await services.stop()
    assert states(services, "left", "right") == {"left": ("enabled", None), "right": ("enabled", None)}


async def test_a_hook_that_blocks_the_loop_is_blamed_on_itself_only(build: Build) -> None:
    @hookimpl
    async def patient(context: PluginContext) -> None:
        await asyncio.sleep(0.05)  # would end at 0.05 s, but the loop is held until 1.2 s

    @hookimpl
    async def blocking(context: PluginContext) -> None:
        time.sleep(1.2)  # blocks the event loop for longer than hook_timeout

    plugins: dict[str, Any] = {
        "patient": types.SimpleNamespace(on_startup=patient),
        "blocking": types.SimpleNamespace(on_startup=blocking),
    }
    services = build({"hook_timeout": 1.0}, plugins=plugins)
    await services.start()
    found = states(services, "patient", "blocking")
    assert found["patient"] == ("enabled", None)
    assert found["blocking"][0] == "failed"
    assert "on_startup: HookTimeout: blocked the event loop for 1.2" in (found["blocking"][1] or "")
