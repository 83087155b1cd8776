"""A plugin's callbacks never freeze the server: plain price and subscribe callbacks run in the plugin's
worker thread, ``authorize`` is waited for at most ``authorize_timeout``, and a callback that raises on
every price logs its traceback once, then one line a minute with the count."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.bootstrap import Services
from legend.domain.channels import ChannelSpec
from legend.domain.inputs import PriceInput
from legend.plugins import PluginContext, PriceUpdate, hookimpl
from legend.plugins.calls import Worker
from legend.plugins.state import REPEAT_LOG_EVERY, PluginRecord
from tests.support.streaming import send

from .helpers import Transport, eventually
from .samples import echo

Build = Callable[..., Services]


def record(services: Services, name: str) -> PluginRecord:
    assert services.plugins is not None
    return services.plugins.records[name]


def listening(callback: Callable[[PriceUpdate], Any]) -> types.SimpleNamespace:
    @hookimpl
    def on_startup(context: PluginContext) -> None:
        context.on_price(callback)

    return types.SimpleNamespace(on_startup=on_startup)


async def price(services: Services, ticker: str = "ZZWW") -> None:
    await services.publisher.price(PriceInput(ticker=ticker, price=10.0))


async def ping_answered(services: Services) -> bool:
    """A client of the server pings and gets its pong: the event loop is serving connections."""
    transport = Transport()
    session = services.streaming.open_session(transport, "pinger")
    await services.streaming.handle_frame(session, '{"type":"ping"}')
    await eventually(lambda: transport.got("pong"), timeout=5.0, what="a pong")
    return True


# ───────────────────────────── price callbacks ─────────────────────────────


async def test_a_plain_price_callback_runs_off_the_event_loop(build: Build, release: threading.Event) -> None:
    started = threading.Event()
    seen: list[Any] = []

    def on_price(update: PriceUpdate) -> None:  # blocks until the test, on the loop, lets it go
        seen.append(threading.current_thread() is threading.main_thread())
        started.set()
        seen.append(release.wait(10))

    services = build({}, plugins={"slow": listening(on_price)})
    await services.start()
    await price(services)
    await eventually(started.is_set, what="the callback to start")
    assert await ping_answered(services)  # while the callback blocks
    release.set()  # only the loop can do this: had the callback held the loop, wait(10) would time out
    await eventually(lambda: len(seen) == 2, what="the callback to return")
    assert seen == [False, True]  # in a worker thread, released by the loop
    assert record(services, "slow").state.value == "enabled" and record(services, "slow").errors == 0


async def test_a_plain_price_callback_that_hangs_fails_its_plugin_while_the_server_goes_on(
    build: Build, release: threading.Event
) -> None:
    finished: list[bool] = []

    def on_price(update: PriceUpdate) -> None:
        release.wait(10)
        finished.append(True)

    services = build({"hook_timeout": 0.2}, plugins={"frozen": listening(on_price)})
    await services.start()
    await price(services)
    frozen = record(services, "frozen")
    await eventually(lambda: frozen.state.value == "failed", what="the plugin to be failed")
    assert not finished  # reported while the callback still hangs, not once it returns
    assert frozen.last_error == "on_price: HookTimeout: did not return within 0.2s"
    assert await ping_answered(services)


async def test_an_async_price_callback_that_blocks_the_loop_fails_its_plugin(build: Build) -> None:
    async def on_price(update: PriceUpdate) -> None:
        time.sleep(0.3)  # blocks the event loop (the mistake being caught)

    services = build({"hook_timeout": 0.1}, plugins={"blocking": listening(on_price)})
    await services.start()
    await price(services)
    blocking = record(services, "blocking")
    await eventually(lambda: blocking.state.value == "failed", what="the plugin to be failed")
    assert "on_price: HookTimeout: blocked the event loop for 0.3" in (blocking.last_error or "")


async def test_a_price_callback_that_raises_logs_its_traceback_once_then_a_line_a_minute(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FrozenClock()

    def on_price(update: PriceUpdate) -> None:
        raise ValueError(f"no model for {update.ticker}")

    services = build({}, plugins={"broken": listening(on_price)}, clock=clock)
    await services.start()
    broken = record(services, "broken")
    caplog.set_level(logging.ERROR, logger="legend.plugins")
    for n, ticker in enumerate(("ZZAA", "ZZAB", "ZZAC", "ZZAD", "ZZAE"), start=1):
        await price(services, ticker)
        await eventually(lambda n=n: broken.errors == n, what=f"error {n}")
    lines = [r.getMessage() for r in caplog.records if r.name == "legend.plugins"]
    assert len(lines) == 1 and "Traceback" in lines[0] and "ValueError: no model for ZZAA" in lines[0]

    clock.advance(REPEAT_LOG_EVERY + 1)
    await price(services, "ZZAF")
    await eventually(lambda: broken.errors == 6, what="error 6")
    lines = [r.getMessage() for r in caplog.records if r.name == "legend.plugins"]
    assert len(lines) == 2 and "Traceback" not in lines[1]
    assert lines[1] == (
        "plugin broken: on_price failed 5 more time(s) in the last 61s (traceback logged once); "
        "latest: ValueError: no model for ZZAF"
    )
    assert broken.state.value == "enabled"  # raising is counted, not fatal
    assert broken.last_error == "on_price: ValueError: no model for ZZAF"


# ───────────────────────────── authorize ─────────────────────────────


def guarded(rule: Callable[[str, str | None], Any]) -> types.SimpleNamespace:
    @hookimpl
    def register_channels(register: Any) -> None:
        register(ChannelSpec(name="guarded", schema=echo.Echo, authorize=rule))

    return types.SimpleNamespace(register_channels=register_channels)


async def subscribe(services: Services, user: str) -> Transport:
    transport = Transport()
    session = services.streaming.open_session(transport, user)
    await send(services.streaming, session, "subscribe", channel="guarded")
    return transport


async def test_authorize_runs_in_a_worker_thread_and_decides(build: Build) -> None:
    threads: list[bool] = []

    def rule(user: str, key: str | None) -> bool:
        threads.append(threading.current_thread() is threading.main_thread())
        return user == "ann"

    # a generous timeout: on a loaded machine the worker thread may take longer than the default to start
    services = build({"authorize_timeout": 10}, plugins={"guard": guarded(rule)})
    await services.start()
    ann, bob = await subscribe(services, "ann"), await subscribe(services, "bob")
    await eventually(lambda: ann.got("subscribed") and bob.got("error"), what="both answers")
    assert not ann.got("error") and '"code":"not_authorized"' in "".join(bob.sent)
    assert threads == [False, False] and record(services, "guard").errors == 0


async def test_a_slow_authorize_denies_without_holding_the_loop_and_a_hanging_one_fails_its_plugin(
    build: Build, release: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    finished: list[str] = []

    def rule(user: str, key: str | None) -> bool:
        calls.append(user)
        release.wait(10)
        finished.append(user)
        return True

    # the wait is long enough for the worker to start the rule even on a loaded machine
    services = build({"hook_timeout": 1.5, "authorize_timeout": 0.5}, plugins={"guard": guarded(rule)})
    await services.start()
    ann = await subscribe(services, "ann")  # the loop waits 0.5 s for the rule, then denies
    assert calls == ["ann"] and finished == []  # the subscribe did not wait for the rule to finish
    bob = await subscribe(services, "bob")  # denied at once: no queueing behind the running rule
    assert calls == ["ann"]
    await eventually(lambda: ann.got("error") and bob.got("error"), what="both denials")
    guard = record(services, "guard")
    assert guard.errors == 2 and guard.state.value == "enabled"
    assert guard.last_error == "authorize guarded: still deciding an earlier subscribe: 'bob' denied"
    assert (
        "plugin guard: authorize guarded: no answer within 0.5s (authorize_timeout): 'ann' denied; "
        "authorize must be quick" in caplog.messages
    )
    await eventually(lambda: guard.state.value == "failed", what="the hanging rule to fail its plugin")
    assert finished == [] and guard.last_error == "authorize guarded: HookTimeout: did not return within 1.5s"
    assert await ping_answered(services)
    carol = await subscribe(services, "carol")  # a failed plugin's channel denies everyone
    await eventually(lambda: carol.got("error"), what="carol's denial")
    assert calls == ["ann"]


async def test_an_async_authorize_is_refused_when_registered(build: Build) -> None:
    async def rule(user: str, key: str | None) -> bool:
        return True  # a coroutine is truthy: awaited by nobody, it would let everyone in

    services = build({}, plugins={"guard": guarded(rule)})
    guard = record(services, "guard")
    assert guard.state.value == "failed" and "guarded" not in services.registry.names()
    assert guard.last_error == (
        "register_channels: channel 'guarded': authorize must be a plain function (user_id, key) -> bool; "
        "the server asks it inside the subscribe and cannot await it"
    )


# ───────────────────────────── subscribe callbacks ─────────────────────────────


async def subscribed_with(
    build: Build, callback: Callable[[str, str | None], Any]
) -> tuple[Services, Transport, PluginRecord]:
    """A server whose plugin ``listener`` calls ``callback`` on subscribes to ``patterns``, after ann
    subscribed; the subscribe's transport and the plugin's record."""

    @hookimpl
    def on_startup(context: PluginContext) -> None:
        context.on_subscribe("patterns", callback)

    services = build({}, plugins={"listener": types.SimpleNamespace(on_startup=on_startup)})
    await services.start()
    transport = Transport()
    session = services.streaming.open_session(transport, "ann")
    await send(services.streaming, session, "subscribe", channel="patterns")
    return services, transport, record(services, "listener")


async def test_a_plain_subscribe_callback_runs_after_the_subscribe_in_a_worker_thread(
    build: Build, release: threading.Event
) -> None:
    seen: list[Any] = []

    def callback(user: str, key: str | None) -> None:
        seen.append((user, threading.current_thread() is threading.main_thread()))
        seen.append(release.wait(10))

    _, transport, listener = await subscribed_with(build, callback)
    await eventually(lambda: transport.got("subscribed") and seen, what="the reply and the callback")
    release.set()
    await eventually(lambda: len(seen) == 2, what="the callback to return")
    assert seen == [("ann", False), True] and listener.errors == 0


async def test_a_plain_subscribe_callback_that_raises_fails_its_plugin(build: Build) -> None:
    def callback(user: str, key: str | None) -> None:
        raise KeyError(user)

    _, transport, listener = await subscribed_with(build, callback)
    await eventually(lambda: transport.got("subscribed"), what="served all the same")
    await eventually(lambda: listener.state.value == "failed", what="the plugin to be failed")
    assert listener.last_error == "on_subscribe patterns: KeyError: 'ann'"


async def test_an_async_subscribe_callback_that_raises_is_counted(build: Build) -> None:
    async def callback(user: str, key: str | None) -> None:
        await asyncio.sleep(0)
        raise LookupError(f"no snapshot for {user}")

    _, _, listener = await subscribed_with(build, callback)
    await eventually(lambda: listener.errors == 1, what="the error counted")
    assert listener.state.value == "enabled"
    assert listener.last_error == "on_subscribe patterns: LookupError: no snapshot for ann"


def test_the_worker_is_idle_before_its_answer_is_heard() -> None:
    """Whoever hears a call's answer may submit the next call at once (the next subscribe's authorize):
    the worker must already count as idle then, or that call is denied as "still deciding"."""
    worker = Worker("test-worker")
    seen: list[float] = []

    def answer() -> bool:
        gate.wait(10)
        return True

    def fail() -> None:
        gate.wait(10)
        raise ValueError("no")

    for function in (answer, fail):
        gate = threading.Event()
        future = worker.submit(function)
        future.add_done_callback(lambda _: seen.append(worker.busy_for()))  # runs as the answer is set
        gate.set()
        with contextlib.suppress(ValueError):
            future.result(timeout=10)
    worker.close()
    assert seen == [0.0, 0.0]
