"""``PluginContext``: everything a plugin may use of the server, scoped to that plugin.

A plugin never touches the server's services directly. Through its context it publishes on its own
channels only (each message checked against the channel's schema first), listens to prices and
subscriptions, adds tickers for the quote poller to poll, keeps small state, and runs tasks that are
supervised: whatever raises is logged and counted against the plugin, never against the server.

These limits keep a plugin from doing the wrong thing by accident. They are no sandbox: a plugin is
trusted code running in the server's own process, and Python cannot stop it from reaching past its context.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import msgspec

from legend.domain.bars import Bar, parse_interval
from legend.domain.channels import ChannelError, ChannelRegistry, ChannelSpec, InvalidMessage
from legend.domain.envelope import Envelope
from legend.domain.inputs import PatternInput
from legend.domain.messages import PriceUpdate
from legend.domain.stream_name import InvalidStreamName, StreamName
from legend.domain.symbols import normalize_ticker
from legend.domain.timefmt import iso
from legend.plugins.database import SqlDatabase
from legend.plugins.fence import FEED_FENCE
from legend.plugins.status import PluginStatus
from legend.plugins.store import PluginStateRepository, PluginStore
from legend.ports.backplane import Backplane
from legend.ports.bars import BarStore
from legend.ports.clock import Clock
from legend.ports.cluster import ClusterMembership
from legend.ports.quotes import QuoteProvider
from legend.runtime.supervisor import TaskSupervisor, cancel_threadsafe
from legend.services.streaming.publisher import MirrorUnavailable, Publisher
from legend.services.streaming.service import StreamingService

T = TypeVar("T")

FeedFunction = Callable[["PluginContext"], Coroutine[Any, Any, None]]
ProviderFactory = Callable[["PluginContext"], QuoteProvider]
PriceCallback = Callable[[PriceUpdate], Awaitable[None] | None]
SubscribeCallback = Callable[[str, str | None], Awaitable[None] | None]
BarsCallback = Callable[[list[Bar]], Awaitable[None] | None]


class StreamNotReadable(PermissionError):
    """``history``/``last_message`` of a stream the plugin may not read."""


class RegisterChannel(Protocol):
    """``register(ChannelSpec(...))`` in ``register_channels``."""

    def __call__(self, spec: ChannelSpec) -> None: ...


class RegisterProvider(Protocol):
    """``register("name", factory)`` in ``register_quote_providers``."""

    def __call__(self, name: str, factory: ProviderFactory) -> None: ...


class RegisterRoute(Protocol):
    """``register(handler_or_controller, ...)`` in ``register_routes``."""

    def __call__(self, *handlers: object) -> None: ...


class RegisterFeed(Protocol):
    """``register("name", feed, every_instance=False)`` in ``register_feeds``."""

    def __call__(self, name: str, feed: FeedFunction, *, every_instance: bool = False) -> None: ...


@dataclass
class Runtime:
    """The parts of the running server that contexts reach (handed over by ``PluginManager.bind`` once the server is built)."""

    publisher: Publisher
    registry: ChannelRegistry
    streaming: StreamingService
    backplane: Backplane
    cluster: ClusterMembership  # leases of feeds that run on one instance
    poke: Callable[[], None]
    state: PluginStateRepository
    database: SqlDatabase | None = None
    bars: BarStore | None = None  # None: the server keeps no bars (no database, or bars.enabled = false)
    supervisor: TaskSupervisor = field(default_factory=TaskSupervisor)  # runs the feeds and price mailboxes


class ContextHost(Protocol):
    """What a context needs of the plugin manager that made it: the server's parts once the server is built
    (``PluginManager.bind``), and a price or bar mailbox when a callback is added on a running server. Narrow on
    purpose: the context knows this, not the manager (``legend.plugins.manager`` imports this module)."""

    @property
    def runtime(self) -> Runtime | None: ...

    def want_mailboxes(self, context: PluginContext) -> None: ...


class PluginContext:
    """What a plugin gets from the server; one per plugin per server.

    Attributes: ``name``, ``config`` (the validated ``[plugins.<name>]`` Struct, or None), ``clock``,
    ``log`` (logger ``legend.plugins.<name>``) and ``metrics`` (numbers of your own, shown to admins).
    """

    def __init__(
        self, record: PluginStatus, config: Any, clock: Clock, host: ContextHost | None = None
    ) -> None:
        self.name = record.name
        self.config = config
        self.clock = clock
        self.log = logging.getLogger(f"legend.plugins.{record.name}")
        self.metrics: dict[str, float] = {}
        self._record = record
        self._host = host  # the server's parts once built (``runtime``), and the price mailboxes
        self._channels: dict[str, ChannelSpec] = {}
        self._singletons: dict[object, object] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # the server's loop, once started
        self.price_callbacks: list[PriceCallback] = []
        self.bar_callbacks: list[BarsCallback] = []
        self.subscribe_callbacks: dict[str, list[SubscribeCallback]] = {}
        self.interest_sources: list[Callable[[], Iterable[str]]] = []

    def __repr__(self) -> str:
        return f"<PluginContext {self.name}>"

    # ───────────────────────── registration (the manager) ─────────────────────────

    def _own(self, spec: ChannelSpec) -> None:
        self._channels[spec.name] = spec

    def _halt(self) -> None:
        """The plugin failed: cancel its tasks (from any thread)."""
        for task in list(self._tasks):
            cancel_threadsafe(task)

    @property
    def runtime(self) -> Runtime:
        runtime = self._host.runtime if self._host is not None else None
        if runtime is None:
            raise RuntimeError(f"plugin {self.name}: the server is not built yet (use on_startup or a feed)")
        return runtime

    @property
    def channels(self) -> dict[str, ChannelSpec]:
        """This plugin's own channels by name."""
        return dict(self._channels)

    # ───────────────────────── publishing ─────────────────────────

    def stream(self, channel: str, key: str | None = None, user_id: str | None = None) -> str:
        """The stream name for a channel: ``news``, ``news:AAPL``, ``portfolio:user:alice``; raises
        ``InvalidStreamName`` (a ValueError) for parts that make no stream name (empty, or with ``:``)."""
        return StreamName(channel, key or None, user_id or None).format()

    async def publish(self, stream: str, message: msgspec.Struct | Mapping[str, Any]) -> Envelope | None:
        """Publish on one of this plugin's streams; the envelope, or None when the message was rejected.

        The message (an instance of the channel's schema, or a mapping converted to it) is validated
        first; ``channel`` and ``timestamp`` are filled in. A rejected message is logged and counted, never
        sent. Once the plugin has failed, every publish is refused (counted in ``messages_refused``) and
        returns None. Raises ``BackplaneUnavailable`` when the backplane cannot publish right now, and its
        subclass ``MirrorUnavailable`` when the message went out on its keyed stream but could not be
        mirrored to the bare one (``mirror_keyed``): publish it on ``exc.stream`` to complete it.
        """
        if not self._record.active:
            self._record.messages_refused += 1
            return None
        spec = self._channels.get(StreamName.channel_of(stream))
        if spec is None:
            self._reject(f"stream {stream!r} is not on a channel of plugin {self.name}")
            return None
        try:
            spec.parse_stream(stream)
            message = spec.conform(message)
        except (ChannelError, InvalidMessage) as exc:
            self._reject(str(exc))
            return None
        changes: dict[str, Any] = {"channel": stream}
        if "timestamp" in message.__struct_fields__ and not getattr(message, "timestamp", None):
            changes["timestamp"] = iso(self.clock.now())
        message = msgspec.structs.replace(message, **changes)
        if not self._record.active:  # failed while the message was being checked (another thread)
            self._record.messages_refused += 1
            return None
        try:
            envelope = await self.runtime.publisher.publish(stream, message, fence=FEED_FENCE.get())
        except MirrorUnavailable:
            self._record.messages_published += 1  # it did go out on its own stream
            raise
        self._record.messages_published += 1
        return envelope

    def _reject(self, reason: str) -> None:
        record = self._record
        record.messages_rejected += 1
        # the first few in full, then one in a hundred: a broken feed must not flood the log
        quiet = record.messages_rejected > 10 and record.messages_rejected % 100 != 0
        record.error("message rejected", reason, quiet=quiet)

    # ───────────────────────── listening ─────────────────────────

    def on_price(self, callback: PriceCallback) -> None:
        """Call ``callback(price_update)`` for every price reaching this server instance.

        Prices are handed over through a per-plugin mailbox that keeps the newest price per ticker, so a
        slow callback delays only this plugin and never the quote_poller. A plain callback runs in this
        plugin's worker thread, never on the event loop (so it must not touch asyncio objects); one that
        takes longer than ``hook_timeout`` fails the plugin. An ``async def`` callback runs on the loop (it
        must not block). One that raises is counted; its traceback is logged once, then one line a minute.
        """
        self.price_callbacks.append(callback)
        if self._host is not None:
            self._host.want_mailboxes(self)

    def on_bars(self, callback: BarsCallback) -> None:
        """Call ``callback(bars)`` with the bars that just closed (a list of ``Bar``, oldest first, of any
        tickers and intervals), **once in the cluster**: on the instance that builds the bars (it holds the
        ``bars`` lease), each closed bar once, in order, as soon as it is published (before it is stored, so
        ``bars()`` may not hold it yet). A closed bar changed by a late price is handed over again with its
        new figures. Isolated as ``on_price`` callbacks are: a plain callback runs in this plugin's worker
        thread (past ``hook_timeout`` it fails the plugin), an ``async def`` one on the loop; one that raises
        is counted. Nothing is called on a server that keeps no bars (``[bars] enabled = false``)."""
        self.bar_callbacks.append(callback)
        if self._host is not None:
            self._host.want_mailboxes(self)

    def on_subscribe(self, channel: str, callback: SubscribeCallback) -> None:
        """Call ``callback(user_id, key)`` when a client on this instance subscribes to ``channel``.

        It runs after the subscribe, which never waits for it: a plain function in this plugin's worker
        thread (one that raises, or takes longer than ``hook_timeout``, fails the plugin), a coroutine
        function as a task of its own on the loop (an exception in it is counted)."""
        self.subscribe_callbacks.setdefault(channel, []).append(callback)

    def add_interest(self, tickers: Callable[[], Iterable[str]]) -> None:
        """Have the quote poller poll the tickers ``tickers()`` returns. It is called on the event loop every
        round: it must be quick (no I/O). One that raises, or blocks for longer than ``hook_timeout``,
        fails the plugin."""
        self.interest_sources.append(tickers)

    def poll_soon(self) -> None:
        """Ask the quote poller for a round of quotes now (after adding interest); from any thread."""
        poke = self.runtime.poke
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                on_loop = asyncio.get_running_loop() is loop
            except RuntimeError:
                on_loop = False
            if not on_loop:
                loop.call_soon_threadsafe(poke)
                return
        poke()

    def subscribers(self, channel: str) -> set[str]:
        """The users subscribed to ``channel`` on this server instance."""
        return self.runtime.streaming.subscribed_users(channel)

    def feed_running(self, name: str) -> bool:
        """True while this plugin's feed ``name`` runs on this instance (for a feed that runs on one
        instance of a cluster at a time: while this instance holds its lease)."""
        return self._record.feed_running(name)

    def can_read(self, stream: str) -> bool:
        """Whether ``history``/``last_message`` may read ``stream``: any stream of this plugin's own
        channels, and the public streams of the channels declared ``readable_by_plugins`` (``ticker:*``,
        ``patterns``, ``market_status``, the built-in plugin's ``news*``). Private streams
        (``…:user:<id>``) of other channels, such as ``alerts:user:bob`` or another plugin's
        ``portfolio:user:alice``, are not readable."""
        if StreamName.channel_of(stream) in self._channels:
            return True
        try:
            name = StreamName.parse(stream)
        except InvalidStreamName:
            return False
        return name.channel in self._readable_channels() and not name.private

    def _readable_channels(self) -> list[str]:
        """The channels of the server declared ``readable_by_plugins`` (none before it is built)."""
        runtime = self._host.runtime if self._host is not None else None
        if runtime is None:
            return []
        return [spec.name for spec in runtime.registry if spec.readable_by_plugins]

    async def history(self, stream: str, since: int | None = None) -> list[dict[str, Any]]:
        """The messages a stream's history holds (after ``since``), oldest first, decoded. Raises
        ``StreamNotReadable`` (a PermissionError) for a stream outside ``can_read``."""
        if not self.can_read(stream):
            raise StreamNotReadable(
                f"plugin {self.name} may not read stream {stream!r} (its own channels and the public "
                f"streams of {', '.join(sorted(self._readable_channels()))} only)"
            )
        replay = await self.runtime.backplane.replay(stream, since)
        return [msgspec.json.decode(envelope.text) for envelope in replay.envelopes]

    async def last_message(self, stream: str) -> dict[str, Any] | None:
        """The newest message of a stream ``history`` may read (``ticker:AAPL`` gives the last price), or
        None."""
        messages = await self.history(stream)
        return messages[-1] if messages else None

    async def bars(
        self, ticker: str, interval: str, limit: int = 100, before: datetime | None = None
    ) -> list[Bar]:
        """The newest ``limit`` (1 to 5000) stored bars of ``ticker`` at ``interval`` (``1m``, ``5m``,
        ``15m``, ``1h``, ``1d``) that start before ``before`` (timezone-aware) if given, oldest first: closed
        bars, and the bar still forming last (``closed`` False). An empty list when the server keeps no
        bars. ValueError for an unknown interval, a bad ticker, a limit out of range or a naive ``before``."""
        store = self.runtime.bars
        if store is None:
            return []
        return await store.history(normalize_ticker(ticker), parse_interval(interval), limit, before)

    # ───────────────────────── pattern alerts ─────────────────────────

    async def publish_pattern(self, alert: PatternInput | Mapping[str, Any]) -> Envelope | None:
        """Publish a ``pattern_alert`` on the built-in ``patterns`` channel: the one built-in channel a plugin
        may publish on, and only this message, shaped by the server as ``POST /api/ws/broadcast/pattern``
        shapes it (``ticker``, ``pattern_type``, ``score`` 0-100, ``entry_price``, ``stop_price`` (not the
        entry), ``target_price``, optional ``risk_reward_ratio`` (computed when left out), ``message``,
        ``timestamp``). An invalid alert is rejected and counted, as in ``publish``; None then, or once the
        plugin has failed."""
        if not self._record.active:
            self._record.messages_refused += 1
            return None
        try:
            data = alert if isinstance(alert, PatternInput) else msgspec.convert(alert, PatternInput)
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            self._reject(f"pattern alert: {exc}")
            return None
        envelope = await self.runtime.publisher.pattern(data, FEED_FENCE.get())
        self._record.messages_published += 1
        return envelope

    # ───────────────────────── state and tasks ─────────────────────────

    @property
    def store(self) -> PluginStore:
        """Persistent key-value state of this plugin (the server's database)."""
        return PluginStore(self.runtime.state, self.name)

    @property
    def database(self) -> SqlDatabase | None:
        """The server's database, for the plugin's own tables (``register_storage``): ``read()`` and
        ``write(lock=None)`` give SQLAlchemy async connections in a transaction. None when the server was
        built without a database."""
        return self.runtime.database

    def singleton(self, factory: Callable[[PluginContext], T]) -> T:
        """One object per plugin per server, made by ``factory(context)`` on first use."""
        if factory not in self._singletons:
            self._singletons[factory] = factory(self)
        found: T = self._singletons[factory]  # type: ignore[assignment]
        return found

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str = "task") -> asyncio.Task[Any]:
        """Run a coroutine in the background; an exception is logged and counted; cancelled at stop or
        when the plugin fails. Call it on the event loop (an ``async def`` hook, a feed, a handler)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coroutine.close()
            raise RuntimeError(
                f"plugin {self.name}: spawn() needs the event loop (a plain on_startup runs in a worker "
                "thread: make it `async def` to spawn tasks)"
            ) from None
        if not self._record.active:
            coroutine.close()
            raise RuntimeError(f"plugin {self.name} is {self._record.state.value}: nothing more runs")
        task = loop.create_task(coroutine, name=f"plugin {self.name}: {name}")
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self._record.error(name, finished.exception())  # type: ignore[arg-type]

        task.add_done_callback(done)
        return task

    def report_error(self, error: BaseException | str, where: str = "reported") -> None:
        """Count an error without raising (it shows in ``GET /api/plugins`` as the last error)."""
        self._record.error(where, error)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
