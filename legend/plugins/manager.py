"""The plugin manager: discovery, settings, the kill switch, and calling every hook in isolation.

Discovery: the built-in plugins (by module path, so a checkout works without being installed; they are
declared as ``legend.plugins`` entry points too), every ``legend.plugins`` entry point, the modules named
in ``[plugins] modules``, and objects handed to ``bootstrap(plugins=...)``. ``[plugins] enabled`` chooses
which run (default: the built-ins and ``modules``; an installed third-party plugin runs once named there).
``LEGEND_DISABLED_PLUGINS=a,b`` blocks plugins before they are even imported (``set_blocked``).

pluggy calls every implementation of a hook in one loop and stops at the first exception, so this manager
calls each plugin's implementation itself (``legend.plugins.calls``): a plugin that raises, hangs past
``hook_timeout`` or registers something invalid is logged, counted and marked failed, and the server and
the other plugins go on. The callbacks a plugin hands over run as ``legend.plugins.callbacks`` describes.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import pluggy

from legend import __version__
from legend.domain.channels import ChannelRegistry, ChannelSpec, check_schema
from legend.domain.envelope import Envelope
from legend.domain.logcontext import HOSTILE
from legend.domain.messages import PriceUpdate
from legend.domain.symbols import InvalidSymbol, normalize_ticker
from legend.plugins import hookspecs
from legend.plugins.callbacks import PriceMailbox, guard_authorize, subscribed
from legend.plugins.calls import (
    Worker,
    call_bounded,
    call_bounded_async,
    call_on_loop,
    is_async_callable,
)
from legend.plugins.context import FeedFunction, PluginContext, ProviderFactory, Runtime
from legend.plugins.feeds import FeedRunner
from legend.plugins.state import PluginRecord, PluginState, describe
from legend.ports.clock import Clock
from legend.ports.quotes import QuoteProvider
from legend.settings import Settings, SettingsError

log = logging.getLogger("legend.plugins")

GROUP = "legend.plugins"
KILL_SWITCH = "LEGEND_DISABLED_PLUGINS"
BUILTINS: Mapping[str, str] = {
    "news": "legend.plugins.builtin.news.plugin",
    "portfolio": "legend.plugins.builtin.portfolio.plugin",
}
HOOKS: tuple[str, ...] = tuple(
    name for name, value in vars(hookspecs).items() if callable(value) and hasattr(value, "legend_spec")
)

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class PluginOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The keys of ``[plugins]`` itself; every table beside them is one plugin's settings."""

    enabled: list[str] | None = None  # None: the built-ins and the `modules`
    modules: dict[str, str] = msgspec.field(default_factory=dict)  # name -> importable module path
    hook_timeout: PositiveFloat = 10.0  # seconds any one hook call may take
    # the longest a subscribe waits for a channel's `authorize` (the loop waits: keep it short)
    authorize_timeout: PositiveFloat = 0.1
    restart_delay: PositiveFloat = 1.0  # first wait before a failed feed restarts, doubling …
    restart_max_delay: PositiveFloat = 60.0  # … up to this


RESERVED = frozenset(PluginOptions.__struct_fields__)


@dataclass
class _Candidate:
    name: str
    source: str
    module: str
    load: Callable[[], object]
    version: str | None


_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `([^`]+)`(?: - at `\$([^`]*)`)?$")
_AT = re.compile(r" - at `\$([^`]*)`$")


def config_error(name: str, exc: msgspec.ValidationError) -> str:
    """A plugin settings error with the key's full path: ``… - at `$.plugins.news.feeds[0].url```."""
    text = str(exc)
    unknown = _UNKNOWN_FIELD.match(text)
    if unknown:
        return f"[plugins.{name}] unknown setting `{unknown.group(1)}` - at `$.plugins.{name}{unknown.group(2) or ''}.{unknown.group(1)}`"
    at = _AT.search(text)
    if at:
        return f"[plugins.{name}] {text[: at.start()]} - at `$.plugins.{name}{at.group(1)}`"
    return f"[plugins.{name}] {text} - at `$.plugins.{name}`"


def parse_plugin_settings(raw: Mapping[str, Any]) -> tuple[PluginOptions, dict[str, dict[str, Any]]]:
    """Split ``[plugins]`` into its own options and the per-plugin tables; raises SettingsError."""
    options: dict[str, Any] = {}
    tables: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        if key in RESERVED:
            options[key] = value
        elif isinstance(value, dict):
            tables[key] = value
        else:
            raise SettingsError(
                f"[plugins] unknown setting `{key}` (plugin settings go in a [plugins.{key}] table; "
                f"the keys of [plugins] are {', '.join(sorted(RESERVED))}) - at `$.plugins.{key}`"
            )
    try:
        parsed = msgspec.convert(options, PluginOptions, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = _AT.search(text)
        raise SettingsError(
            f"[plugins] {text[: at.start()]} - at `$.plugins{at.group(1)}`" if at else f"[plugins] {text}"
        ) from None
    return parsed, tables


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
        from legend.adapters.system_clock import SystemClock

        self.options = options or PluginOptions()
        self.tables = {name: dict(table) for name, table in (tables or {}).items()}
        self.clock: Clock = clock or SystemClock()
        self.environ = os.environ if environ is None else environ
        self.overrides = dict(overrides or {})
        self._entry_points = entry_points
        self.lease_ttl = lease_ttl
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.providers: dict[str, tuple[PluginRecord, ProviderFactory]] = {}
        self._feeds: list[tuple[PluginRecord, str, FeedFunction, bool]] = []
        self._runtime: Runtime | None = None
        self._mailboxes: dict[str, PriceMailbox] = {}
        self._tapped = False
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
        return {name.strip() for name in self.environ.get(KILL_SWITCH, "").split(",") if name.strip()}

    def _discover(self) -> list[_Candidate]:
        found: dict[str, _Candidate] = {}
        for name, module in BUILTINS.items():
            found[name] = _Candidate(name, "builtin", module, _importer(module), __version__)
        points = (
            self._entry_points
            if self._entry_points is not None
            else importlib.metadata.entry_points(group=GROUP)
        )
        for point in points:
            dist = point.dist
            version = dist.version if dist is not None else None
            known = found.get(point.name)
            if known is not None:
                if known.module != point.value:
                    log.error(
                        "plugin %s: entry point %s is ignored: the name is taken by %s %s",
                        point.name,
                        point.value,
                        known.source,
                        known.module,
                    )
                continue
            source = f"entry point ({dist.name} {version})" if dist is not None else "entry point"
            found[point.name] = _Candidate(point.name, source, point.value, point.load, version)
        for name, module in self.options.modules.items():
            found[name] = _Candidate(name, "module", module, _importer(module), None)
        for name, plugin in self.overrides.items():
            module = getattr(plugin, "__name__", type(plugin).__name__)
            found[name] = _Candidate(name, "override", module, _given(plugin), None)
        return list(found.values())

    def _problem(self, message: str, strict: bool) -> None:
        """A settings error: raised (``strict``, as ``serve`` does), else kept in ``problems``."""
        if strict:
            raise SettingsError(message)
        self.problems.append(message)

    def _enabled(self, candidates: list[_Candidate], strict: bool) -> set[str]:
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
        candidates = self._discover()
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
                self._configure(record, strict)
        for record in self.active():
            record.context = PluginContext(record, record.config, self.clock, self)

    def _register(self, record: PluginRecord, candidate: _Candidate, *, enabled: bool) -> None:
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

    def _configure(self, record: PluginRecord, strict: bool) -> None:
        """Validate the plugin's table with its ``config_schema``. For a plugin that is not enabled only
        the table is checked: its broken schema is logged, not held against it."""
        running = record.active
        table = self.tables.get(record.name)

        def broken(where: str, error: BaseException | str) -> None:
            if running:
                record.fail(where, error)
            else:
                record.error(where, error)

        def invalid(message: str) -> None:
            self._problem(message, strict)
            broken("settings", message)

        impl = self._impl(record, "config_schema")
        schema: Any = None
        if impl is not None:
            try:
                schema = call_bounded(impl.function, {}, self.options.hook_timeout)
            except Exception as exc:
                broken("config_schema", exc)
                return
        if inspect.iscoroutine(schema):
            schema.close()
            broken("config_schema", "must be a plain function, not a coroutine function")
            return
        if schema is None:
            if table:
                invalid(
                    f"[plugins.{record.name}] plugin {record.name} takes no settings - at `$.plugins.{record.name}`"
                )
            return
        if not (isinstance(schema, type) and issubclass(schema, msgspec.Struct)):
            broken("config_schema", f"must return a msgspec.Struct type, not {schema!r}")
            return
        if not schema.__struct_config__.forbid_unknown_fields:
            log.warning(
                "plugin %s: its settings Struct does not forbid unknown fields (typos go unseen)", record.name
            )
        record.config_schema = schema
        try:
            config = msgspec.convert(table or {}, schema, strict=False)
        except msgspec.ValidationError as exc:
            invalid(config_error(record.name, exc))
            return
        except Exception as exc:  # the plugin's Struct itself is broken (an unresolvable annotation)
            broken("config_schema", exc)
            return
        if running:
            record.config = config

    # ───────────────────────── calling hooks ─────────────────────────

    def active(self) -> list[PluginRecord]:
        """Plugins that are enabled and have not failed, in discovery order."""
        return [record for record in self.records.values() if record.active]

    def _impl(self, record: PluginRecord, hook: str) -> pluggy.HookImpl | None:
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

    def _call(self, record: PluginRecord, hook: str, kwargs: Mapping[str, Any]) -> tuple[bool, Any]:
        """Call one plugin's implementation of a synchronous hook, bounded; (ok, result)."""
        impl = self._impl(record, hook)
        if impl is None or not record.active:
            return record.active, None
        args = {name: kwargs[name] for name in impl.argnames}
        try:
            result = call_bounded(impl.function, args, self.options.hook_timeout)
        except Exception as exc:
            record.fail(hook, exc)
            return False, None
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            record.fail(hook, "must be a plain function, not a coroutine function")
            return False, None
        return True, result

    async def _call_async(self, record: PluginRecord, hook: str, kwargs: Mapping[str, Any]) -> bool:
        impl = self._impl(record, hook)
        if impl is None or not record.active:
            return record.active
        args = {name: kwargs[name] for name in impl.argnames}
        try:
            await call_bounded_async(impl.function, args, self.options.hook_timeout)
        except Exception as exc:
            record.fail(hook, exc)
            return False
        return True

    def _collect(
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

        ok, _ = self._call(record, hook, {**kwargs, "register": collect})
        open_[0] = False
        return items if ok else None

    # ───────────────────────── what plugins register ─────────────────────────

    def register_channels(self, registry: ChannelRegistry) -> None:
        """Run ``register_channels`` of each plugin; a plugin's channels are all valid or none is added."""
        for record in self.active():
            specs = self._collect(record, "register_channels", {"config": record.config}, _channel_arg)
            if not specs:
                continue
            problem = _check_specs(specs, registry)
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
            pairs = self._collect(record, "register_quote_providers", {}, _provider_arg)
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
                handlers = self._collect(record, "register_routes", {}, _route_args)
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
        impl = self._impl(record, "register_routes")
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
            feeds = self._collect(record, "register_feeds", {"context": record.context}, _feed_args)
            if not feeds:
                continue
            names = [name for name, _, _ in feeds]
            problem = next(
                (f"feed {name!r} is registered twice" for name in names if names.count(name) > 1), None
            ) or next(
                (f"feed {name!r} is not callable" for name, feed, _ in feeds if not callable(feed)), None
            )
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

    # ───────────────────────── running ─────────────────────────

    def bind(self, runtime: Runtime) -> None:
        """Hand the built server to every context."""
        self._runtime = runtime
        for record in self.active():
            assert record.context is not None
            record.context._bind(runtime)
        runtime.streaming.subscribe_listeners.append(self._on_subscribe)

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

    def _on_subscribe(self, user_id: str, channel: str, key: str | None) -> None:
        """Subscribe callbacks, each a task of its plugin (the subscribe never waits for them): a plain one
        runs in the plugin's worker thread."""
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

    def _want_prices(self, context: PluginContext) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not on the event loop (a register hook): ``start`` sets the mailbox up
        if self.started:
            self._mailbox(context)

    def _mailbox(self, context: PluginContext) -> None:
        record = self.records[context.name]
        if context.name not in self._mailboxes:
            mailbox = PriceMailbox(
                record, context, self._worker(record, "callbacks"), self.options.hook_timeout
            )
            self._mailboxes[context.name] = mailbox
            mailbox.start()
        if not self._tapped and self._runtime is not None:
            self._runtime.streaming.taps.setdefault("price_update", []).append(self._on_price_envelope)
            self._tapped = True

    def _on_price_envelope(self, envelope: Envelope) -> None:
        try:
            price = _price_decoder.decode(envelope.text)
        except msgspec.DecodeError:
            log.warning("undecodable price envelope on %s", envelope.stream, extra=HOSTILE)
            return
        for mailbox in self._mailboxes.values():
            mailbox.put(price)

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
            *(self._call_async(record, "on_startup", {"context": record.context}) for record in self.active())
        )
        for record in self.active():
            context = record.context
            assert context is not None
            if context.price_callbacks:
                self._mailbox(context)
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
        for mailbox in self._mailboxes.values():
            await mailbox.stop()
        self._mailboxes.clear()
        for record in self.records.values():
            if record.context is not None:
                await record.context._cancel_tasks()
        await asyncio.gather(
            *(
                self._call_async(record, "on_shutdown", {"context": record.context})
                for record in self.active()
            )
        )
        for worker in self._workers.values():
            worker.close()

    def summaries(self) -> list[dict[str, Any]]:
        """Every plugin's name, version, hooks, state and errors, by name."""
        return [self.records[name].summary() for name in sorted(self.records)]


_price_decoder = msgspec.json.Decoder(PriceUpdate)


def plugin_version(plugin: object, *, search_installed: bool = False) -> str | None:
    """The version of a plugin that was not found through an entry point: the ``__version__`` of its
    module or of that module's top-level package, else the version of the installed distribution named
    like that package (``acme_plugin`` -> ``acme-plugin``), else (``search_installed``: reading every
    installed distribution's file list, slow) of the one distribution that provides the package; None
    when there is none."""
    module_name = plugin.__name__ if inspect.ismodule(plugin) else type(plugin).__module__
    top = module_name.partition(".")[0]
    for holder in (plugin, sys.modules.get(module_name), sys.modules.get(top)):
        version = getattr(holder, "__version__", None)
        if isinstance(version, str) and version:
            return version
    try:
        named = importlib.metadata.distribution(top)
    except importlib.metadata.PackageNotFoundError:
        named = None
    if named is not None:
        declared = (named.read_text("top_level.txt") or top).split()
        if top in declared:
            return named.version
    if search_installed:
        providers = set(importlib.metadata.packages_distributions().get(top, ()))
        if len(providers) == 1:
            return importlib.metadata.version(providers.pop())
    return None


def _given(plugin: object) -> Callable[[], object]:
    return lambda: plugin


def _importer(module: str) -> Callable[[], object]:
    def load() -> object:
        path, _, attribute = module.partition(":")
        loaded: object = importlib.import_module(path)
        for part in filter(None, attribute.split(".")):
            loaded = getattr(loaded, part)
        return loaded

    return load


def _channel_arg(spec: Any) -> Any:
    return spec


def _provider_arg(name: Any, factory: Any) -> tuple[Any, Any]:
    return name, factory


def _route_args(*handlers: Any) -> tuple[Any, ...]:
    return handlers


def _feed_args(name: Any, feed: Any, *, every_instance: bool = False) -> tuple[Any, Any, bool]:
    return name, feed, every_instance


def _check_specs(specs: list[Any], registry: ChannelRegistry) -> str | None:
    taken = set(registry.names())
    for spec in specs:
        if not isinstance(spec, ChannelSpec):
            return f"register() takes a ChannelSpec, not {spec!r}"
        if spec.name in taken:
            return f"channel {spec.name!r} is registered already"
        if not spec.name or ":" in spec.name:
            return f"invalid channel name {spec.name!r}"
        if spec.schema is None:
            return f"channel {spec.name!r} needs a schema (the msgspec Struct of its messages)"
        if spec.authorize is not None and (not callable(spec.authorize) or is_async_callable(spec.authorize)):
            return (
                f"channel {spec.name!r}: authorize must be a plain function (user_id, key) -> bool; the "
                "server asks it inside the subscribe and cannot await it"
            )
        try:
            check_schema(spec.schema)
        except ValueError as exc:
            return f"channel {spec.name!r}: {exc}"
        taken.add(spec.name)
    return None
