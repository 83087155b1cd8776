"""The plugin manager: loads the plugins of one server, runs their hooks, and starts and stops them.

It holds one ``PluginRecord`` per plugin and goes through their life in order; ``[plugins] enabled`` chooses
which run (default: the built-ins and ``modules``; an installed third-party plugin runs once named there).
Each step has a module of its own: discovery and the kill switch (``discovery``), the ``[plugins]`` settings
and each plugin's table (``settings``), each plugin's hooks called in isolation (``hook_caller``), what the
register hooks register, checked (``registration``), their own tables (``storage``), and the mailboxes of
the price and bar callbacks (``prices``, ``bars``). A plugin that raises, hangs past ``hook_timeout`` or
registers something invalid is logged, counted and marked failed, and the server and the other plugins go
on. The callbacks a plugin hands over run as ``legend.plugins.callbacks`` describes.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from legend.domain.channels import ChannelRegistry
from legend.domain.events import ClientSubscribed
from legend.domain.symbols import InvalidSymbol, normalize_ticker
from legend.plugins import hookspecs
from legend.plugins.bars import PluginBars
from legend.plugins.callbacks import guard_authorize, subscribed
from legend.plugins.calls import Worker, call_bounded, call_on_loop
from legend.plugins.context import PluginContext, ProviderFactory, Runtime
from legend.plugins.discovery import KILL_SWITCH, Candidate, blocked_names, discover, plugin_version
from legend.plugins.feeds import FeedRunner
from legend.plugins.hook_caller import HookCaller
from legend.plugins.hookspecs import HOOKS
from legend.plugins.prices import PluginPrices
from legend.plugins.registration import (
    channel_arg,
    channels_problem,
    feed_args,
    feeds_problem,
    provider_arg,
    route_args,
)
from legend.plugins.settings import PluginOptions, configure, parse_plugin_settings
from legend.plugins.state import PluginRecord, PluginState, describe
from legend.plugins.storage import register_storage
from legend.ports.clock import Clock
from legend.ports.quotes import QuoteProvider
from legend.settings import Settings, SettingsError

if TYPE_CHECKING:
    from legend.adapters.sql.migrate import Schema

log = logging.getLogger("legend.plugins")


class PluginManager:
    """Finds, configures and runs the plugins of one server."""

    def __init__(
        self,
        options: PluginOptions | None = None,
        tables: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
        lease_ttl: float = 10.0,
    ) -> None:
        from legend.adapters.clock.system import SystemClock

        self.options = options or PluginOptions()
        self.tables = {name: dict(table) for name, table in (tables or {}).items()}
        self.clock: Clock = clock or SystemClock()
        self.environ = os.environ if environ is None else environ
        self.overrides = dict(overrides or {})
        self._entry_points = entry_points
        self.lease_ttl = lease_ttl
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.hooks = HookCaller(self.pm, self.options.hook_timeout)
        self.records: dict[str, PluginRecord] = {}
        self.providers: dict[str, tuple[PluginRecord, ProviderFactory]] = {}
        self._runtime: Runtime | None = None
        self.prices = PluginPrices()
        self.bars = PluginBars()
        self._workers: dict[tuple[str, str], Worker] = {}
        self.problems: list[str] = []  # settings errors found by a lenient `load` (the listing)
        self.started = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
        strict: bool = True,
    ) -> PluginManager:
        """Discover and configure the plugins; raises SettingsError for invalid ``[plugins]`` settings
        (``strict=False``: a plugin whose table is invalid is marked failed instead, for listings)."""
        options, tables = parse_plugin_settings(settings.plugins)
        manager = cls(
            options,
            tables,
            clock=clock,
            environ=environ,
            overrides=overrides,
            entry_points=entry_points,
            lease_ttl=settings.redis.lease_ttl,
        )
        manager.load(strict=strict)
        return manager

    # ───────────────────────── discovery and settings ─────────────────────────

    @property
    def blocked(self) -> set[str]:
        """Names in the kill switch ``LEGEND_DISABLED_PLUGINS``."""
        return blocked_names(self.environ)

    def _problem(self, message: str, strict: bool) -> None:
        """A settings error: raised (``strict``, as ``serve`` does), else kept in ``problems``."""
        if strict:
            raise SettingsError(message)
        self.problems.append(message)

    def _enabled(self, candidates: list[Candidate], strict: bool) -> set[str]:
        names = {c.name for c in candidates}
        wanted = self.options.enabled
        if wanted is None:
            return {c.name for c in candidates if c.source in ("builtin", "module", "override")}
        for index, name in enumerate(wanted):
            if name not in names and name not in self.blocked:
                message = (
                    f"[plugins] enabled names {name!r}, which is not installed (installed: "
                    f"{', '.join(sorted(names)) or 'none'}) - at `$.plugins.enabled[{index}]`"
                )
                self._problem(message, strict)
                record = PluginRecord(name=name, source="not installed", chosen=True)
                self.records[name] = record
                record.fail("discovery", message)
        return set(wanted)

    def load(self, strict: bool = True) -> None:
        """Discover, block, import, register and configure every plugin (once).

        The settings table of every installed plugin is validated, also of one that is not enabled (a typo
        must not wait until someone enables it). ``strict``: the first settings error raises SettingsError;
        otherwise each is kept in ``problems`` and the plugin concerned shows the error."""
        if self.records:
            return
        candidates = discover(self.options.modules, self.overrides, self._entry_points)
        blocked = self.blocked
        for name in blocked:
            self.pm.set_blocked(name)
        enabled = self._enabled(candidates, strict)
        for candidate in candidates:
            record = PluginRecord(
                name=candidate.name,
                source=candidate.source,
                module=candidate.module,
                version=candidate.version,
                chosen=candidate.name in enabled,
            )
            self.records[candidate.name] = record
            if candidate.name in blocked:
                record.state = PluginState.BLOCKED
                log.warning("plugin %s is blocked by %s", candidate.name, KILL_SWITCH)
                continue
            self._register(record, candidate, enabled=candidate.name in enabled)
        self.pm.check_pending()  # whatever is still registered implements only known hooks
        for name in self.tables:
            if name not in self.records:
                self._problem(
                    f"[plugins.{name}] there is no plugin named {name!r} (installed: "
                    f"{', '.join(sorted(self.records)) or 'none'}) - at `$.plugins.{name}`",
                    strict,
                )
        for record in self.records.values():
            if record.active or (record.state is PluginState.DISABLED and record.name in self.tables):
                configure(
                    record,
                    self.hooks.impl(record, "config_schema"),
                    self.tables.get(record.name),
                    self.options.hook_timeout,
                    lambda message: self._problem(message, strict),
                )
        for record in self.active():
            record.context = PluginContext(record, record.config, self.clock, self)

    def _register(self, record: PluginRecord, candidate: Candidate, *, enabled: bool) -> None:
        try:
            plugin = candidate.load()
        except Exception as exc:
            record.fail("import", exc)
            return
        record.plugin = plugin
        if record.version is None:
            record.version = plugin_version(plugin, search_installed=candidate.source == "module")
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:  # pluggy.PluginValidationError: arguments the spec does not have
            record.fail("register", exc)
            return
        callers = self.pm.get_hookcallers(plugin) or []
        record.hooks = sorted(caller.name for caller in callers)
        unknown = [caller.name for caller in callers if caller.spec is None]
        if unknown:
            self.pm.unregister(plugin)
            record.fail(
                "hooks",
                f"unknown hook(s) {', '.join(sorted(unknown))} (misspelt? the hooks are {', '.join(HOOKS)})",
            )
            return
        if enabled:
            record.state = PluginState.ENABLED
        else:
            record.state = PluginState.DISABLED
            self.pm.unregister(plugin)

    # ───────────────────────── which plugins run ─────────────────────────

    def active(self) -> list[PluginRecord]:
        """Plugins that are enabled and have not failed, in discovery order."""
        return [record for record in self.records.values() if record.active]

    # ───────────────────────── what plugins register ─────────────────────────

    def register_channels(self, registry: ChannelRegistry) -> None:
        """Run ``register_channels`` of each plugin; a plugin's channels are all valid or none is added."""
        for record in self.active():
            specs = self.hooks.collect(record, "register_channels", {"config": record.config}, channel_arg)
            if not specs:
                continue
            problem = channels_problem(specs, registry)
            if problem:
                record.fail("register_channels", problem)
                continue
            decider = self._worker(record, "authorize")
            assert record.context is not None
            for spec in specs:
                guarded = guard_authorize(
                    spec,
                    record,
                    decider,
                    self.options.authorize_timeout,
                    self.options.hook_timeout,
                    record.context.clock.monotonic,
                )
                registry.register(guarded)
                record.channels.append(guarded.name)
                record.context._own(guarded)

    def register_quote_providers(self) -> None:
        """Run ``register_quote_providers``: provider names to factories."""
        for record in self.active():
            pairs = self.hooks.collect(record, "register_quote_providers", {}, provider_arg)
            if not pairs:
                continue
            for name, factory in pairs:
                if name in self.providers:
                    record.error(
                        "register_quote_providers",
                        f"provider {name!r} is registered by another plugin already",
                    )
                    continue
                self.providers[name] = (record, factory)
                record.providers.append(name)

    def provider_names(self) -> dict[str, str]:
        """Quote provider names the plugins registered, each with its plugin's name."""
        return {name: record.name for name, (record, _) in self.providers.items()}

    def build_quote_provider(self, name: str) -> QuoteProvider | None:
        """The provider a plugin registered under ``name`` (None: no plugin did). A factory that fails
        stops the start with SettingsError: the server would otherwise stream the wrong prices."""
        found = self.providers.get(name)
        if found is None:
            return None
        record, factory = found
        if not record.active or record.context is None:
            raise SettingsError(f"quotes.provider = {name!r}: plugin {record.name} is {record.state.value}")
        try:
            provider: QuoteProvider = call_bounded(
                factory, {"context": record.context}, self.options.hook_timeout
            )
        except Exception as exc:
            record.fail(f"quote provider {name}", exc)
            raise SettingsError(
                f"quotes.provider = {name!r} (plugin {record.name}) could not be built: {describe(exc)}"
            ) from None
        return provider

    def register_routes(self) -> None:
        """Run ``register_routes``: the plugin's Litestar handlers, mounted by ``create_app``.

        Also for a plugin that was chosen to run but failed before (at load, or in an earlier register
        hook), as long as it was imported: its routes are mounted all the same and answer 503 with the
        reason, instead of a 404 that would hide it."""
        from legend.plugins.web import is_route_handler

        for record in self.records.values():
            if record.active:
                handlers = self.hooks.collect(record, "register_routes", {}, route_args)
            elif record.chosen and record.state is PluginState.FAILED:
                handlers = self._routes_of_failed(record)
            else:
                continue
            if not handlers:
                continue
            flat = [handler for group in handlers for handler in group]
            bad = [h for h in flat if not is_route_handler(h)]
            if bad:
                if record.active:
                    record.fail(
                        "register_routes", f"not a Litestar route handler, controller or router: {bad[0]!r}"
                    )
                continue
            record.routes.extend(flat)

    def _routes_of_failed(self, record: PluginRecord) -> list[Any] | None:
        """What ``register_routes`` of a failed plugin registers, only to know the paths that answer 503.
        What goes wrong here is logged, not counted: the plugin's own error stays its ``last_error``."""
        impl = self.hooks.impl(record, "register_routes")
        if impl is None or set(impl.argnames) - {"register"}:
            return None
        items: list[Any] = []
        try:
            call_bounded(
                impl.function,
                {"register": lambda *handlers: items.append(handlers)} if impl.argnames else {},
                self.options.hook_timeout,
            )
        except Exception as exc:
            log.warning("plugin %s (failed): its routes are unknown: register_routes: %s", record.name, exc)
            return None
        return items

    def register_feeds(self) -> None:
        """Run ``register_feeds``: each feed is started, supervised, by ``start``."""
        for record in self.active():
            assert record.context is not None
            feeds = self.hooks.collect(record, "register_feeds", {"context": record.context}, feed_args)
            if not feeds:
                continue
            problem = feeds_problem(feeds)
            if problem:
                record.fail("register_feeds", problem)
                continue
            for name, feed, every_instance in feeds:
                record.feeds[name] = FeedRunner(
                    record,
                    record.context,
                    name,
                    feed,
                    every_instance=every_instance,
                    restart_delay=self.options.restart_delay,
                    restart_max_delay=self.options.restart_max_delay,
                    lease_ttl=self.lease_ttl,
                )

    def register_storage(self) -> None:
        """Run ``register_storage``: each plugin's tables and migrations, checked (``legend.plugins.storage``)."""
        register_storage(self.hooks, self.active())

    def schemas(self) -> list[Schema]:
        """The tables of each enabled plugin that has some, to migrate with the server's."""
        return [record.storage for record in self.active() if record.storage is not None]

    # ───────────────────────── running ─────────────────────────

    @property
    def runtime(self) -> Runtime | None:
        """The running server's parts the contexts reach; None until the server is built."""
        return self._runtime

    def bind(self, runtime: Runtime) -> None:
        """The composition root built the server: every context reaches ``runtime`` from now on (contexts
        exist before: the register hooks and quote provider factories receive them)."""
        self._runtime = runtime

    def interest(self) -> set[str]:
        """Tickers the plugins want polled (``PluginContext.add_interest``). Called on the event loop every
        round: a source that raises or blocks for longer than ``hook_timeout`` fails its plugin."""
        wanted: set[str] = set()
        timeout = self.options.hook_timeout
        for record in self.active():
            assert record.context is not None
            for source in list(record.context.interest_sources):
                ok, tickers = call_on_loop(record, "interest", lambda s=source: list(s()), (), timeout)
                if not ok:
                    break
                for ticker in tickers:
                    try:
                        wanted.add(normalize_ticker(ticker))
                    except InvalidSymbol:
                        record.error("interest", f"not a ticker: {ticker!r}", quiet=True)
        return wanted

    def _worker(self, record: PluginRecord, purpose: str) -> Worker:
        """The plugin's worker thread for ``purpose``: "callbacks" (price and subscribe callbacks) or
        "authorize" (which the loop waits for, so nothing else may queue before it)."""
        key = (record.name, purpose)
        worker = self._workers.get(key)
        if worker is None:
            worker = self._workers[key] = Worker(f"plugin {record.name}: {purpose}")
        return worker

    def on_subscribed(self, event: ClientSubscribed) -> None:
        """A client subscribed (``ClientSubscribed``, on the server's bus): the subscribe callbacks, each a
        task of its plugin (the subscribe never waits for them); a plain one runs in its worker thread."""
        user_id, channel, key = event.user_id, event.channel, event.key
        for record in self.active():
            context = record.context
            if context is None:
                continue
            for callback in list(context.subscribe_callbacks.get(channel, ())):
                if not record.active:
                    break
                where = f"on_subscribe {channel}"
                call = subscribed(
                    record,
                    self._worker(record, "callbacks"),
                    where,
                    callback,
                    (user_id, key),
                    self.options.hook_timeout,
                    context.clock.monotonic,
                )
                context.spawn(call, name=where)

    def want_mailboxes(self, context: PluginContext) -> None:
        """A callback was added (``on_price``, ``on_bars``): on a running server, open its mailbox now."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not on the event loop (a register hook): ``start`` sets the mailbox up
        if self.started:
            self._mailbox(context)

    def _mailbox(self, context: PluginContext) -> None:
        record = self.records[context.name]
        worker, timeout = self._worker(record, "callbacks"), self.options.hook_timeout
        if context.price_callbacks:
            self.prices.open(record, context, worker, timeout)
        if context.bar_callbacks:
            self.bars.open(record, context, worker, timeout)

    async def start(self) -> None:
        """``on_startup`` of every plugin, then its price mailbox and feeds."""
        if self.started:
            return
        self.started = True
        loop = asyncio.get_running_loop()
        for record in self.records.values():
            if record.context is not None:
                record.context._loop = loop
        # concurrently, each bounded: hooks that hang delay readiness by one hook_timeout, not by one each
        await asyncio.gather(
            *(
                self.hooks.call_async(record, "on_startup", {"context": record.context})
                for record in self.active()
            )
        )
        for record in self.active():
            context = record.context
            assert context is not None
            self._mailbox(context)  # price and bar mailboxes, for the callbacks added so far
            for runner in record.feeds.values():
                runner.start()

    async def stop(self) -> None:
        """Stop feeds and tasks, then ``on_shutdown`` of every plugin that is still running; bounded."""
        if not self.started:
            return
        self.started = False
        for record in self.records.values():
            for runner in record.feeds.values():
                await runner.stop()
        await asyncio.gather(self.prices.stop(), self.bars.stop())
        for record in self.records.values():
            if record.context is not None:
                await record.context._cancel_tasks()
        await asyncio.gather(
            *(
                self.hooks.call_async(record, "on_shutdown", {"context": record.context})
                for record in self.active()
            )
        )
        for worker in self._workers.values():
            worker.close()

    def summaries(self) -> list[dict[str, Any]]:
        """Every plugin's name, version, hooks, state and errors, by name."""
        return [self.records[name].summary() for name in sorted(self.records)]
