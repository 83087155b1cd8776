"""The callbacks a plugin hands the server (price and subscribe callbacks, a channel's ``authorize``), and
how they are called so that a slow one delays only its own plugin.

A plain callback never runs on the event loop: it runs in a worker thread of its plugin (``Worker``), one
call at a time. Price and subscribe callbacks are awaited there without holding up the loop, bounded by
``hook_timeout``. ``authorize`` must answer inside the subscribe: the subscribe (and only it) waits for it
at most ``authorize_timeout``, then denies. An ``async def`` callback runs on the loop,
stepped, so that one which blocks it is measured. Prices reach the price callbacks through a mailbox per
plugin: ``legend.plugins.prices``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Callable
from typing import Any

import msgspec

from legend.domain.channels import ChannelSpec
from legend.plugins.calls import HookTimeout, Stepped, Worker, is_async_callable, run_off_loop
from legend.plugins.context import BarsCallback, PriceCallback, SubscribeCallback
from legend.plugins.state import PluginRecord


def guard_authorize(
    spec: ChannelSpec,
    record: PluginRecord,
    worker: Worker,
    wait: float,
    timeout: float,
    now: Callable[[], float],
) -> ChannelSpec:
    """``spec`` with its ``authorize`` rule run on ``worker``, the caller (the event loop, in a subscribe)
    waiting at most ``wait`` seconds for the answer.

    No answer in time denies that subscribe (counted). While a rule still runs past ``wait``, the next
    subscribes are denied at once instead of queueing behind it; one that runs longer than ``timeout``
    (``hook_timeout``) fails the plugin, as does a rule that raises. A failed plugin's channels deny
    everyone."""
    rule = spec.authorize
    if rule is None:
        return spec
    where = f"authorize {spec.name}"
    wait = min(wait, timeout)

    def overran() -> HookTimeout:
        return HookTimeout(f"did not return within {timeout:g}s")

    async def authorize(user_id: str, key: str | None) -> bool:
        if not record.active:
            return False
        running = worker.busy_for()
        if running:  # an earlier decision still runs: deny without waiting for it
            if running > timeout:
                record.fail(where, overran())
            else:
                record.error_repeating(
                    where, f"still deciding an earlier subscribe: {user_id!r} denied", now()
                )
            return False
        future = worker.submit(rule, user_id, key)
        try:
            async with asyncio.timeout(wait):  # the loop goes on meanwhile: only this subscribe waits
                allowed = await asyncio.shield(asyncio.wrap_future(future))
        except TimeoutError:
            future.cancel()
            record.error_repeating(
                where,
                f"no answer within {wait:g}s (authorize_timeout): {user_id!r} denied; authorize must be quick",
                now(),
            )
            _fail_if_still_running(future, record, where, timeout - wait, overran)
            return False
        except Exception as exc:
            record.fail(where, exc)
            return False
        if inspect.isawaitable(allowed):
            if inspect.iscoroutine(allowed):
                allowed.close()
            record.fail(where, "returned an awaitable: authorize must be a plain function returning a bool")
            return False
        return bool(allowed)

    return msgspec.structs.replace(spec, authorize=authorize)


def _fail_if_still_running(
    future: concurrent.futures.Future[Any],
    record: PluginRecord,
    where: str,
    after: float,
    error: Any,
) -> None:
    """Fail the plugin if ``future`` has not finished ``after`` seconds from now (when on a loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # called outside the loop: the next call sees the worker busy

    def check() -> None:
        if not future.done() and record.active:
            record.fail(where, error())

    loop.call_later(max(after, 0.0), check)


async def call_back(
    record: PluginRecord,
    worker: Worker,
    where: str,
    callback: PriceCallback | SubscribeCallback | BarsCallback,
    args: tuple[Any, ...],
    timeout: float,  # noqa: ASYNC109 - bounds the worker thread, not an await
) -> Any:
    """Call one plugin callback: a plain one on ``worker`` (awaited off the loop, at most ``timeout``
    seconds; what it returns, if awaitable, is awaited too), an ``async def`` one on the loop, stepped.
    Raises HookTimeout when it ran too long or blocked the loop too long, else what the callback raised."""
    if is_async_callable(callback):
        result: Any = callback(*args)
    else:
        result = await run_off_loop(worker, callback, args, timeout)
    if inspect.iscoroutine(result):
        stepped = Stepped(result)
        await stepped
        stepped.check(timeout)
    elif inspect.isawaitable(result):
        await result
    return None


async def subscribed(
    record: PluginRecord,
    worker: Worker,
    where: str,
    callback: SubscribeCallback,
    args: tuple[str, str | None],
    timeout: float,  # noqa: ASYNC109 - bounds the worker thread, not an await
    now: Callable[[], float],
) -> None:
    """One subscribe callback, as a task of its plugin: a plain one that raises, or one that runs past
    ``timeout``, fails the plugin; an exception in an ``async def`` one is counted."""
    plain = not is_async_callable(callback)
    try:
        await call_back(record, worker, where, callback, args, timeout)
    except HookTimeout as exc:
        record.fail(where, exc)
    except Exception as exc:
        if plain:
            record.fail(where, exc)
        else:
            record.error_repeating(where, exc, now())
