"""Calling one plugin's implementation of a hook, in isolation.

pluggy calls every implementation of a hook in one loop and stops at the first exception, so the manager
calls each plugin's implementation itself, through a ``HookCaller``: bounded by ``hook_timeout``
(``legend.plugins.calls``), and a plugin that raises, hangs or answers with the wrong kind of result is
marked failed while the others go on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from legend.plugins.calls import call_bounded, call_bounded_async
from legend.plugins.state import PluginRecord


class HookCaller:
    """Calls the hook implementations of the plugins of one pluggy manager, one plugin at a time."""

    def __init__(self, pm: pluggy.PluginManager, hook_timeout: float) -> None:
        self.pm = pm
        self.hook_timeout = hook_timeout

    def impl(self, record: PluginRecord, hook: str) -> pluggy.HookImpl | None:
        """The plugin's implementation of ``hook``; also of a plugin no longer registered with pluggy (not
        enabled, or failed at load), read from the plugin object the way pluggy reads it."""
        plugin = record.plugin
        if plugin is None:
            return None
        if self.pm.is_registered(plugin):
            caller = getattr(self.pm.hook, hook)
            return next((i for i in caller.get_hookimpls() if i.plugin_name == record.name), None)
        opts = self.pm.parse_hookimpl_opts(plugin, hook)
        if opts is None:
            return None
        return pluggy.HookImpl(plugin, record.name, getattr(plugin, hook), opts)

    def call(self, record: PluginRecord, hook: str, kwargs: Mapping[str, Any]) -> tuple[bool, Any]:
        """Call one plugin's implementation of a synchronous hook, bounded; (ok, result)."""
        impl = self.impl(record, hook)
        if impl is None or not record.active:
            return record.active, None
        args = {name: kwargs[name] for name in impl.argnames}
        try:
            result = call_bounded(impl.function, args, self.hook_timeout)
        except Exception as exc:
            record.fail(hook, exc)
            return False, None
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            record.fail(hook, "must be a plain function, not a coroutine function")
            return False, None
        return True, result

    async def call_async(self, record: PluginRecord, hook: str, kwargs: Mapping[str, Any]) -> bool:
        """Call one plugin's implementation of ``on_startup``/``on_shutdown``, bounded; whether it is
        still active."""
        impl = self.impl(record, hook)
        if impl is None or not record.active:
            return record.active
        args = {name: kwargs[name] for name in impl.argnames}
        try:
            await call_bounded_async(impl.function, args, self.hook_timeout)
        except Exception as exc:
            record.fail(hook, exc)
            return False
        return True

    def collect(
        self, record: PluginRecord, hook: str, kwargs: Mapping[str, Any], register: Callable[..., Any]
    ) -> list[Any] | None:
        """Call a register hook with a ``register`` callback; what it registered, or None when it failed.
        Registrations after the hook returned (or timed out) are refused."""
        items: list[Any] = []
        open_ = [True]

        def collect(*args: Any, **kw: Any) -> None:
            if not open_[0]:
                raise RuntimeError(f"{hook}: register called after the hook returned")
            items.append(register(*args, **kw))

        ok, _ = self.call(record, hook, {**kwargs, "register": collect})
        open_[0] = False
        return items if ok else None
