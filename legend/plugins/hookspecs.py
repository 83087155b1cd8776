"""The hooks a Legend plugin may implement (pluggy project ``legend``).

A plugin is a module (or any object) with functions marked ``@hookimpl`` named like the specs below; it
may implement any subset, and each implementation may take any subset of the spec's arguments. Every
hook is documented with a runnable example in ``docs/plugins.md`` (a test checks that none is missing).

The manager calls each plugin's implementation itself, so that a plugin that raises or hangs is isolated:
register hooks run one plugin at a time in a worker thread bounded by ``[plugins] hook_timeout``.
``on_startup``/``on_shutdown`` of all plugins run concurrently, each bounded by the same timeout: a plain
function runs in a worker thread too (abandoned when it hangs); a coroutine function runs on the event loop
as a task of its own, stepped, and one that blocks the loop past the timeout in one go (which nothing can
interrupt) is measured and failed once it returns. Either way a plugin whose hook raised or overran is
marked failed and its feeds never start. Type hook implementations with the ``Register*`` protocols that
``legend.plugins`` exports.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import msgspec
import pluggy

if TYPE_CHECKING:
    from legend.plugins.context import (
        PluginContext,
        RegisterChannel,
        RegisterFeed,
        RegisterProvider,
        RegisterRoute,
    )
    from legend.plugins.storage import RegisterStorage

PROJECT = "legend"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def config_schema() -> type[msgspec.Struct] | None:
    """Return the msgspec Struct that validates this plugin's own ``[plugins.<name>]`` settings table."""


@hookspec
def register_channels(register: RegisterChannel, config: Any) -> None:
    """Register channel families: call ``register(ChannelSpec(...))`` once for each."""


@hookspec
def register_quote_providers(register: RegisterProvider) -> None:
    """Register quote providers by name: ``register("name", factory)`` with ``factory(context) -> QuoteProvider``."""


@hookspec
def register_routes(register: RegisterRoute) -> None:
    """Register Litestar route handlers or controllers; they can ask for ``plugin: PluginContext``."""


@hookspec
def register_feeds(register: RegisterFeed, context: PluginContext) -> None:
    """Register background feeds: ``register("name", feed)`` with ``async def feed(context) -> None``."""


@hookspec
def register_storage(register: RegisterStorage) -> None:
    """Declare the plugin's own tables: ``register(metadata, migrations_folder)``, migrated with the server's."""


@hookspec
def on_startup(context: PluginContext) -> Awaitable[None] | None:
    """Called once when the server starts, before feeds run, at the same time as the other plugins'. A plain
    function runs in a worker thread (register callbacks, make singletons; to spawn tasks or await, make it
    a coroutine function)."""


@hookspec
def on_shutdown(context: PluginContext) -> Awaitable[None] | None:
    """Called once when the server stops, after feeds were stopped, at the same time as the other plugins'.
    A plain function runs in a worker thread; a coroutine function on the event loop."""


HOOKS: tuple[str, ...] = tuple(
    name for name, value in list(globals().items()) if callable(value) and hasattr(value, "legend_spec")
)  # every hook's name, in the order of the specs above
