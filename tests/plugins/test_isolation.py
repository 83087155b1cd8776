"""Isolation at run time: startup and shutdown hooks that block (plain or async), ``authorize``, interest
sources and subscribe callbacks that raise or block (slow callbacks: test_callbacks.py), what a failed plugin may still do (nothing: its feeds
and tasks stop, its publishes are refused), and which streams a plugin may read."""

from __future__ import annotations

import asyncio
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from legend.bootstrap import Services
from legend.domain.channels import ChannelSpec
from legend.plugins import Message, PluginContext, hookimpl
from legend.plugins.context import StreamNotReadable
from legend.plugins.state import PluginRecord
from tests.support.streaming import send

from .helpers import Transport, eventually
from .samples import echo

Build = Callable[..., Services]


def record(services: Services, name: str) -> PluginRecord:
    assert services.plugins is not None
    return services.plugins.records[name]


def history(services: Services, stream: str) -> list[dict[str, Any]]:
    log = getattr(services.backplane, "_log")  # noqa: B009 - the in-memory backplane's own history
    return [msgspec.json.decode(e.text) for e in log.after(stream, None)[0]]


# ───────────────────────────── startup and shutdown ─────────────────────────────


async def test_a_plain_startup_hook_that_blocks_is_cut_off_and_fails(
    build: Build, release: threading.Event
) -> None:
    started_feed: list[str] = []

    @hookimpl
    def on_startup(context: PluginContext) -> None:
        release.wait(3.0)  # blocking work in a plain function

    async def feed(context: PluginContext) -> None:
        started_feed.append(context.name)

    @hookimpl
    def register_feeds(register: Any) -> None:
        register("never", feed)

    plugin = types.SimpleNamespace(on_startup=on_startup, register_feeds=register_feeds)
    services = build({"hook_timeout": 0.5, "echo": {}}, plugins={"blocking": plugin, "echo": echo})
    began = time.monotonic()
    await services.start()
    assert time.monotonic() - began < 2.0  # not the 3 s it blocks
    blocked = record(services, "blocking")
    assert blocked.state.value == "failed"
    assert blocked.last_error == "on_startup: HookTimeout: did not return within 0.5s"
    await asyncio.sleep(0.1)
    assert started_feed == []  # a failed plugin's feeds never start
    assert await eventually(lambda: history(services, "echo"), what="the healthy plugin's feed")


async def test_an_async_startup_hook_that_blocks_the_loop_is_failed(build: Build) -> None:
    @hookimpl
    async def on_startup(context: PluginContext) -> None:
        time.sleep(0.6)  # blocks the event loop: asyncio.timeout cannot interrupt it

    services = build({"hook_timeout": 0.2}, plugins={"sleepy": types.SimpleNamespace(on_startup=on_startup)})
    await services.start()
    sleepy = record(services, "sleepy")
    assert sleepy.state.value == "failed"
    assert (
        sleepy.last_error is not None
        and "on_startup: HookTimeout: blocked the event loop" in sleepy.last_error
    )


async def test_a_plain_shutdown_hook_that_blocks_is_cut_off(build: Build, release: threading.Event) -> None:
    @hookimpl
    def on_shutdown(context: PluginContext) -> None:
        release.wait(3.0)

    services = build({"hook_timeout": 0.3}, plugins={"stuck": types.SimpleNamespace(on_shutdown=on_shutdown)})
    await services.start()
    began = time.monotonic()
    await services.stop()
    assert time.monotonic() - began < 2.0
    assert record(services, "stuck").last_error == "on_shutdown: HookTimeout: did not return within 0.3s"


async def test_a_plain_startup_hook_may_use_the_context(build: Build) -> None:
    seen: list[str] = []

    @hookimpl
    def on_startup(context: PluginContext) -> None:
        assert threading.current_thread() is not threading.main_thread()  # a worker thread
        context.on_price(lambda price: seen.append(price.ticker))
        context.add_interest(lambda: ["ZZWW"])
        context.poll_soon()

    services = build({}, plugins={"plain": types.SimpleNamespace(on_startup=on_startup)})
    await services.start()
    assert record(services, "plain").state.value == "enabled"
    assert services.plugins is not None and "ZZWW" in services.plugins.interest()
    from legend.domain.inputs import PriceInput

    await services.publisher.price(PriceInput(ticker="ZZWW", price=10.0))
    await eventually(lambda: seen == ["ZZWW"], what="the price callback")


# ───────────────────────────── callbacks that raise or block ─────────────────────────────


def guarded_channel(rule: Callable[[str, str | None], bool]) -> types.SimpleNamespace:
    @hookimpl
    def register_channels(register: Any) -> None:
        register(ChannelSpec(name="guarded", schema=echo.Echo, authorize=rule))

    return types.SimpleNamespace(register_channels=register_channels)


async def test_an_authorize_rule_that_raises_denies_and_fails_its_plugin(build: Build) -> None:
    def rule(user: str, key: str | None) -> bool:
        raise RuntimeError("rule broke")

    services = build({}, plugins={"guard": guarded_channel(rule)})
    await services.start()
    transport = Transport()
    session = services.streaming.open_session(transport, "ann")
    await send(services.streaming, session, "subscribe", channel="guarded")
    await eventually(lambda: any('"not_authorized"' in t for t in transport.sent), what="the denial")
    guard = record(services, "guard")
    assert guard.state.value == "failed" and guard.last_error == "authorize guarded: RuntimeError: rule broke"


async def test_an_interest_source_that_raises_or_blocks_fails_its_plugin(build: Build) -> None:
    def raising() -> list[str]:
        raise ValueError("no tickers today")

    def slow() -> list[str]:
        time.sleep(0.3)
        return ["AAPL"]

    plugins: dict[str, object] = {}
    for name, source in (("raising", raising), ("slow", slow)):

        @hookimpl
        def on_startup(context: PluginContext, source: Callable[[], list[str]] = source) -> None:
            context.add_interest(source)

        plugins[name] = types.SimpleNamespace(on_startup=on_startup)
    services = build({"hook_timeout": 0.1}, plugins=plugins)
    await services.start()
    assert services.plugins is not None
    assert services.plugins.interest() == set()
    assert record(services, "raising").last_error == "interest: ValueError: no tickers today"
    assert record(services, "slow").state.value == "failed" == record(services, "raising").state.value
    assert "blocked the event loop" in (record(services, "slow").last_error or "")


# ───────────────────────────── a failed plugin stops ─────────────────────────────


async def test_a_plugin_that_failed_at_run_time_stops_its_feeds_and_tasks_and_may_not_publish(
    build: Build,
) -> None:
    services = build({"echo": {"interval": 0.01}}, plugins={"echo": echo})
    await services.start()
    await eventually(lambda: len(history(services, "echo")) >= 3, what="the echo feed running")
    echoed = record(services, "echo")
    context = echoed.context
    assert context is not None
    task = context.spawn(asyncio.sleep(60), name="long")
    echoed.fail("test", "failed on purpose")
    await asyncio.sleep(0.05)
    assert task.cancelled()
    assert echoed.feeds["chatter"].state == "stopped"
    count = len(history(services, "echo"))
    await asyncio.sleep(0.2)
    assert len(history(services, "echo")) == count  # nothing more from its feed
    refused = echoed.messages_refused
    assert await context.publish("echo", echo.Echo(text="after", n=1)) is None
    assert echoed.messages_refused == refused + 1 and len(history(services, "echo")) == count
    assert echoed.last_error == "test: failed on purpose"  # the reason it failed stays visible


async def test_a_plugin_failed_from_another_thread_is_stopped_too(build: Build) -> None:
    services = build({"echo": {"interval": 0.01}}, plugins={"echo": echo})
    await services.start()
    await eventually(lambda: history(services, "echo"), what="the echo feed running")
    echoed = record(services, "echo")
    await asyncio.to_thread(echoed.fail, "worker", "failed in a thread")
    await eventually(lambda: echoed.feeds["chatter"].state == "stopped", what="the feed stopped")
    await asyncio.sleep(0.05)
    count = len(history(services, "echo"))
    await asyncio.sleep(0.1)
    assert len(history(services, "echo")) == count


# ───────────────────────────── what a plugin may read ─────────────────────────────


async def test_history_is_limited_to_own_channels_and_public_streams(build: Build) -> None:
    services = build({"echo": {}}, plugins={"echo": echo})
    context = record(services, "echo").context
    assert context is not None
    for stream in ("echo", "echo:AAPL", "ticker:AAPL", "patterns", "market_status", "news", "news:AAPL"):
        assert await context.history(stream) == []
    assert await context.last_message("ticker:AAPL") is None
    for stream in (
        "alerts",
        "alerts:user:bob",
        "portfolio:user:alice",
        "news:user:bob",
        "ticker:AAPL:user:x",
    ):
        with pytest.raises(StreamNotReadable, match="may not read stream"):
            await context.history(stream)
        with pytest.raises(PermissionError):
            await context.last_message(stream)
        assert not context.can_read(stream), stream
    assert context.can_read("echo:AAPL") and context.can_read("ticker:MSFT")


class Wire(Message, tag="wire"):
    text: str = ""


def channel_plugin(name: str, **spec: Any) -> types.SimpleNamespace:
    """A plugin that only registers the channel ``name`` (schema ``Wire``)."""

    @hookimpl
    def register_channels(register: Any) -> None:
        register(ChannelSpec(name=name, schema=Wire, keyed=True, **spec))

    return types.SimpleNamespace(register_channels=register_channels)


async def test_a_plugin_reads_the_channels_other_plugins_declare_readable_and_no_others(
    build: Build,
) -> None:
    """The server has no list of plugin channels others may read: a plugin declares its channel
    ``readable_by_plugins`` (as the built-in news plugin does), and only then do the others read it."""
    services = build(
        {"enabled": ["echo", "wire", "secret"]},
        plugins={
            "echo": echo,
            "wire": channel_plugin("wire", private=True, readable_by_plugins=True),
            "secret": channel_plugin("secret"),
        },
    )
    context = record(services, "echo").context
    assert context is not None
    assert await context.history("wire:AAPL") == [] and context.can_read("wire")
    for stream in ("secret", "secret:AAPL", "wire:user:bob", "news", "news:AAPL"):  # news is not enabled
        assert not context.can_read(stream), stream
    with pytest.raises(StreamNotReadable, match="market_status, patterns, ticker, wire only"):
        await context.history("secret:AAPL")
    assert record(services, "secret").context.can_read("secret:AAPL")  # type: ignore[union-attr]
