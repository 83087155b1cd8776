"""The composition root: the one place that picks adapters from settings and wires the services.

Every object is built with what it uses, in its constructor. In-process events go through one bus
(``legend.runtime.message_bus.MessageBus``): the objects that announce something are built with it, and the
handlers of those that react are subscribed here, in one table (``bootstrap``'s end), so that two objects
that need each other are never wired into one another after construction.

The app and the tests both build through ``bootstrap``; tests pass overrides (a FrozenClock, a backplane).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from legend.adapters.auth import Authenticator
from legend.adapters.clock.system import SystemClock
from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.sql import (
    Database,
    SqlAlchemyAlertRepository,
    SqlAlchemyPluginStateRepository,
    SqlAlchemyWatchlistRepository,
)
from legend.adapters.sql.bars import SqlAlchemyBarStore
from legend.adapters.sql.price_log import SqlPriceLog
from legend.delivery import AlertDelivery
from legend.domain.channels import ChannelRegistry
from legend.domain.events import (
    BackplaneHealthChanged,
    BarsClosed,
    ClientSubscribed,
    MessageDelivered,
    StreamGap,
    TickerWatched,
)
from legend.domain.stats import Counters
from legend.domain.stream_name import ticker_stream
from legend.plugins.context import Runtime
from legend.plugins.manager import PluginManager
from legend.plugins.store import InMemoryPluginStateRepository, PluginStateRepository
from legend.ports.admission import ConnectionRegistry
from legend.ports.backplane import Backplane
from legend.ports.bar_history import bar_history
from legend.ports.bars import BarStore
from legend.ports.clock import Clock
from legend.ports.cluster import ClusterMembership
from legend.ports.market import MarketCalendar, MarketCalendarError
from legend.ports.price_log import PriceLog
from legend.ports.quotes import QuoteProvider
from legend.ports.repositories import AlertRepository, WatchlistRepository
from legend.quote_provider import quote_provider
from legend.runtime.message_bus import MessageBus
from legend.runtime.supervisor import Supervised, TaskSupervisor
from legend.services.alerts.service import AlertingService
from legend.services.bars.backfill import BarBackfill
from legend.services.bars.building import BarBuilding
from legend.services.polling.quote_poller import QuotePoller
from legend.services.streaming.admission import Admission, AdmissionLimits
from legend.services.streaming.drain import drain_window
from legend.services.streaming.limits import Limits
from legend.services.streaming.publisher import Publisher
from legend.services.streaming.service import StreamingService
from legend.services.streaming.service_status import ServiceStatusNotifier
from legend.services.streaming.ticker_check import TickerCheck
from legend.services.watchlists.service import Watchlists
from legend.settings import Settings, SettingsError

log = logging.getLogger("legend")


@dataclass
class Services:
    """What ``bootstrap`` built from one Settings: the object that starts and stops everything, for the app
    and the tests. The app hands each edge only the services it uses; nothing below this module imports it."""

    settings: Settings
    clock: Clock
    registry: ChannelRegistry
    backplane: Backplane
    cluster: ClusterMembership
    counters: Counters
    streaming: StreamingService
    publisher: Publisher
    calendar: MarketCalendar
    provider: QuoteProvider
    quote_poller: QuotePoller
    auth: Authenticator
    instance_id: str
    status: ServiceStatusNotifier
    bus: MessageBus  # in-process events (their handlers were subscribed by ``bootstrap``)
    watchlists: Watchlists
    alerting: AlertingService
    plugins: PluginManager
    run_quote_poller: bool = True
    supervisor: TaskSupervisor = field(default_factory=TaskSupervisor)  # the background loops, for stats too
    _sweeper: Supervised | None = field(default=None, init=False)
    _bar_pruner: Supervised | None = field(default=None, init=False)
    started: bool = False
    database: Database | None = None  # None when both repositories were given as overrides
    bars: BarStore | None = None  # in ``database``: none without one
    ticker_check: TickerCheck | None = None  # whether the quote provider knows a ticker (subscribe, REST)
    bar_building: BarBuilding | None = None  # none without a bar store, or with ``bars.enabled = false``
    bar_backfill: BarBackfill | None = None  # none without a bar store or a provider with history
    notifications: AlertDelivery | None = None  # webhooks, Web Push, e-mail: none without a database
    _bar_backfiller: Supervised | None = field(default=None, init=False)
    _bar_builder: Supervised | None = field(default=None, init=False)

    async def start(self) -> None:
        """Open the database and load the alert rules, connect the backplane, then start the quote poller, the
        stale-connection sweeper, bar building and the pruning of old bars."""
        if self.started:
            return
        self.started = True
        if self.database is not None:
            # migrates the embedded default, checks the schema otherwise: the server's, then each plugin's
            # own tables; a plugin whose tables cannot be made ready fails alone
            failed = await self.database.start(self.plugins.schemas())
            for name, error in failed.items():
                self.plugins.records[name].fail("storage", error)
        await self.streaming.start()  # the backplane: alerting takes its lease and reads its price log
        await self.cluster.join(self.streaming.figures)  # registered, leases kept, figures reported
        await self.alerting.start()  # prices published before are in the price log
        if self.notifications is not None:  # the VAPID keys, then the delivery loop
            await self.notifications.start(self.supervisor)
        await self.plugins.start()  # on_startup hooks, then feeds; before the quote poller asks for interest
        if self.run_quote_poller:
            self.quote_poller.start()
        self._sweeper = self.supervisor.start("sweeper", self._sweep)
        if self.bar_building is not None:  # takes the ``bars`` lease when free, builds from the price log
            self._bar_builder = self.supervisor.start("bar-building", self.bar_building.run)
        if self.bars is not None:
            self._bar_pruner = self.supervisor.start("bar-pruning", self._prune_bars)
        if self.bar_backfill is not None:  # the past of the tickers asked for, from the provider's history
            self._bar_backfiller = self.supervisor.start("bar-backfill", self.bar_backfill.run)

    async def _sweep(self) -> None:
        interval = self.settings.realtime.cleanup_interval
        while True:
            await asyncio.sleep(interval)
            self.streaming.sweep()

    async def _prune_bars(self) -> None:
        """Every ``bars.prune_interval``, the bars past their retention (each instance: the deletes are
        batched and idempotent, so instances sharing a database only repeat an empty query)."""
        assert self.bars is not None
        settings = self.settings.bars
        while True:
            await asyncio.sleep(settings.prune_interval)
            deleted = await self.bars.prune(self.clock.now(), settings.keep())
            if deleted:
                log.info("deleted %d bars past their retention", deleted)

    async def close_clients(self) -> None:
        """Drain (the server got SIGTERM, before it stops accepting frames): refuse new connections,
        answer /ready with 503, and close every client with 1001 and a reconnect hint, spread over
        ``server.drain_seconds`` (docs/scaling.md, "Deploys")."""
        server = self.settings.server
        window = drain_window(
            server.drain_seconds, server.graceful_shutdown_seconds, self.settings.realtime.close_timeout
        )
        if window < server.drain_seconds:
            log.warning(
                "server.drain_seconds = %g cut to %g: graceful_shutdown_seconds (%g) minus "
                "realtime.close_timeout (%g) is what is left for it",
                server.drain_seconds,
                window,
                server.graceful_shutdown_seconds,
                self.settings.realtime.close_timeout,
            )
        await self.streaming.drain(window)

    async def stop(self) -> None:
        """Close clients with 1001, stop background work, release adapters; never hangs."""
        if not self.started:
            return
        self.started = False
        await self.streaming.shutdown()
        await self.quote_poller.stop()
        await self.plugins.stop()  # feeds first, then on_shutdown hooks; bounded
        for task in (self._sweeper, self._bar_pruner, self._bar_backfiller, self._bar_builder):
            if task is not None:
                await task.stop()
        await self.alerting.stop()
        if self.notifications is not None:
            await self.notifications.stop()
        await self.cluster.leave()  # leases handed over at once
        await self.backplane.stop()
        await self.provider.aclose()
        if self.database is not None:
            await self.database.close()
        await self.supervisor.stop()  # whatever is left, bounded (each part stopped its own above)


def _limits(settings: Settings) -> Limits:
    rt = settings.realtime
    return Limits(
        max_messages_per_second=rt.max_messages_per_second,
        max_subscriptions=rt.max_subscriptions,
        max_frame_bytes=rt.max_frame_bytes,
        inbound_rate=rt.inbound_rate,
        inbound_burst=rt.inbound_burst,
        stale_after=rt.stale_after,
        max_pending_messages=rt.max_pending_messages,
        max_pending_bytes=rt.max_pending_bytes,
        slow_consumer_timeout=rt.slow_consumer_timeout,
        close_timeout=rt.close_timeout,
        price_share=rt.price_share,
    )


class _Backplanes(NamedTuple):
    """The ports one backend serves, each wired on its own."""

    backplane: Backplane
    cluster: ClusterMembership
    price_log: PriceLog
    connections: ConnectionRegistry


def _backplane(
    settings: Settings,
    clock: Clock,
    instance_id: str,
    registry: ChannelRegistry,
    supervisor: TaskSupervisor,
    bus: MessageBus,
    database: Database | None,
) -> _Backplanes:
    """The backplane, the cluster membership, the price log and the connection registry: on Redis,
    adapters on one connection (its health changes announced on ``bus``; the price log written by the
    publish script); in memory, one object (a cluster of one, which never degrades), its price log in
    ``database`` (the one alert positions are stored in) unless ``alerts.price_log`` is ``memory``."""
    if settings.redis.enabled:
        from legend.adapters.redis import RedisBackplane

        redis = RedisBackplane(
            settings.redis,
            instance_id=instance_id,
            topics=[spec.topic for spec in registry],
            log_size=settings.alerts.log_size,
            once_ttl=settings.alerts.dedupe_seconds,
            supervisor=supervisor,
            bus=bus,
        )
        return _Backplanes(redis, redis.membership, redis, redis)
    log_size = settings.alerts.log_size
    durable = (
        SqlPriceLog.beside(database, clock, log_size)
        if database is not None and settings.alerts.price_log == "database"
        else None
    )
    memory = InMemoryBackplane(clock, log_size=log_size, price_log=durable)
    return _Backplanes(memory, memory, memory, memory)


class InterestSources:
    """Tickers the quote poller polls although no client watches them live: the union of several sources
    (armed alert rules, plugins). A source that raises is logged and skipped for that round."""

    def __init__(self, sources: Iterable[Callable[[], Iterable[str]]] = ()) -> None:
        self.sources: tuple[Callable[[], Iterable[str]], ...] = tuple(sources)

    def __call__(self) -> set[str]:
        wanted: set[str] = set()
        for source in self.sources:
            try:
                wanted.update(source())
            except Exception:
                log.exception("interest source %r failed", source)
        return wanted


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    backplane: Backplane | None = None,
    cluster: ClusterMembership | None = None,
    price_log: PriceLog | None = None,
    connections: ConnectionRegistry | None = None,
    provider: QuoteProvider | None = None,
    calendar: MarketCalendar | None = None,
    run_quote_poller: bool = True,
    database: Database | None = None,
    alert_repository: AlertRepository | None = None,
    watchlist_repository: WatchlistRepository | None = None,
    plugins: Mapping[str, object] | None = None,
    plugin_manager: PluginManager | None = None,
    plugin_state: PluginStateRepository | None = None,
    bus: MessageBus | None = None,
    instance_id: str | None = None,
) -> Services:
    """Build the services; any adapter may be overridden (a ``backplane`` that is not also the cluster
    membership, the price log and the connection registry, as the in-memory one is, comes with its
    ``cluster``, ``price_log`` and ``connections``). ``plugins`` adds plugin objects by
    name (as if installed); ``plugin_manager`` replaces discovery altogether. Raises SettingsError for
    invalid ``[plugins]`` settings."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    bus = bus if bus is not None else MessageBus()
    manager = plugin_manager or PluginManager.from_settings(settings, clock=clock, overrides=plugins)
    registry = ChannelRegistry()
    # Every register hook runs now, before the backplane exists: it listens on the plugins' topics too.
    manager.register_channels(registry)
    manager.register_quote_providers()
    manager.register_routes()
    manager.register_feeds()
    manager.register_storage()
    counters = Counters()
    instance_id = instance_id or secrets.token_hex(4)  # a worker's is chosen by its supervisor
    supervisor = TaskSupervisor(monotonic=clock.monotonic)  # every background loop of this instance
    log_database: Database | None = None  # where the alert repository stores positions, if built here
    if alert_repository is None or watchlist_repository is None:
        database = database or Database.from_settings(settings.database)
        if alert_repository is None:
            alert_repository, log_database = SqlAlchemyAlertRepository(database), database
        watchlist_repository = watchlist_repository or SqlAlchemyWatchlistRepository(database)
    if backplane is None:
        built = _backplane(settings, clock, instance_id, registry, supervisor, bus, log_database)
        backplane = built.backplane
        cluster = cluster or built.cluster
        price_log = price_log or built.price_log
        connections = connections or built.connections
    else:
        if cluster is None:
            if not isinstance(backplane, ClusterMembership):
                raise TypeError("bootstrap(backplane=...) needs cluster=... too: this backplane is not one")
            cluster = backplane
        if price_log is None:
            if not isinstance(backplane, PriceLog):
                raise TypeError("bootstrap(backplane=...) needs price_log=... too: this backplane is not one")
            price_log = backplane
        if connections is None:
            if not isinstance(backplane, ConnectionRegistry):
                raise TypeError(
                    "bootstrap(backplane=...) needs connections=... too: this backplane is not one"
                )
            connections = backplane
    rt = settings.realtime
    admission = Admission(
        connections,
        AdmissionLimits(
            max_connections_per_user=rt.max_connections_per_user,
            max_connections_per_ip=rt.max_connections_per_ip,
            connect_rate_per_ip=rt.connect_rate_per_ip,
            connect_burst_per_ip=rt.connect_burst_per_ip,
        ),
        counters,
    )
    if calendar is None:
        try:
            calendar = ExchangeCalendarsMarketCalendar(
                settings.market.calendar, now=clock.now, cache_dir=settings.market.calendar_cache
            )
        except MarketCalendarError as exc:
            raise SettingsError(f"market.calendar: {exc}") from None
    provider = provider or quote_provider(settings, clock, manager, calendar, cluster)

    async def published(ticker: str) -> bool:
        return (await backplane.replay(ticker_stream(ticker), None)).last_seq > 0

    check = TickerCheck(provider, clock, published=published)
    history_size, exchange = settings.realtime.history_size, settings.market.calendar
    publisher = Publisher(backplane, registry, clock, counters, history_size, exchange=exchange)
    watchlists = Watchlists(watchlist_repository, settings.watchlist.max_tickers, publisher.watchlist)
    streaming = StreamingService(
        backplane, registry, clock, _limits(settings), counters, admission, check, bus, watchlists.tickers
    )
    streaming.max_connections = settings.server.max_connections  # legend serve: or its descriptor limit's
    status = ServiceStatusNotifier(streaming)
    bars = SqlAlchemyBarStore(database) if database is not None else None
    alerting = AlertingService(
        alert_repository,
        publisher,
        backplane,
        clock,
        price_log=price_log,
        cluster=cluster,
        instance_id=instance_id,
        max_rules_per_user=settings.alerts.max_rules_per_user,
        retry_interval=settings.alerts.retry_interval,
        claim_seconds=settings.alerts.claim_seconds,
        reload_interval=settings.alerts.reload_interval,
        single_instance=isinstance(backplane, InMemoryBackplane),
        lease_ttl=settings.redis.lease_ttl,
        supervisor=supervisor,
        zone=calendar.zone,  # sessions and bar boundaries of the rules
        session_on=calendar.session_on,
        bars=bars if settings.bars.enabled else None,  # previews
    )
    quote_poller = QuotePoller(
        provider=provider,
        calendar=calendar,
        publisher=publisher,
        cluster=cluster,
        streaming=streaming,
        clock=clock,
        update_interval=settings.realtime.update_interval,
        after_hours_interval=settings.realtime.after_hours_interval,
        lease_ttl=settings.redis.poller_lease_ttl if settings.redis.enabled else None,
        # rules fire even when nobody watches the ticker live; plugins add theirs (portfolio positions)
        extra_interest=InterestSources([alerting.tickers, manager.interest]),
        supervisor=supervisor,
    )
    if plugin_state is None:
        plugin_state = (
            SqlAlchemyPluginStateRepository(database)
            if database is not None
            else InMemoryPluginStateRepository()
        )
    # Who hears which in-process event (legend.domain.events).
    bus.subscribe(BackplaneHealthChanged, lambda event: status.backplane_health(event.ok))  # service_status
    bus.subscribe(StreamGap, status.gaps.stream_gap)  # gap frames, and the next ok names them
    if run_quote_poller:  # a newly watched ticker's price without waiting
        bus.subscribe(TickerWatched, lambda event: quote_poller.poke(event.ticker))
    bus.subscribe(ClientSubscribed, manager.on_subscribed)  # the plugins' on_subscribe callbacks
    bus.subscribe(MessageDelivered, manager.prices.on_delivered)  # the plugins' on_price callbacks
    bus.subscribe(BarsClosed, manager.bars.on_closed)  # their on_bars callbacks (where the bars are built)
    runtime = Runtime(
        publisher=publisher,
        registry=registry,
        streaming=streaming,
        backplane=backplane,
        cluster=cluster,
        poke=quote_poller.poke,
        state=plugin_state,
        database=database,
        bars=bars if settings.bars.enabled else None,
        supervisor=supervisor,
    )
    manager.bind(runtime)  # the contexts, handed out before (register hooks, providers), reach the server
    bar_building = None
    if bars is not None and settings.bars.enabled:
        bar_building = BarBuilding(
            bars,
            price_log,
            cluster.hold_lease,
            clock,
            calendar.zone,
            calendar.session_on,
            publisher.publish_bar,  # the bars channel
            lease_ttl=settings.redis.lease_ttl,
            bus=bus,  # BarsClosed
            release_lease=cluster.release_lease,
        )
    history = bar_history(provider)
    bar_backfill = BarBackfill(history, bars) if bars is not None and history is not None else None
    if bar_backfill is not None:
        bus.subscribe(TickerWatched, bar_backfill.on_watched)  # a newly watched ticker's past, for its chart
    delivery = (
        AlertDelivery(settings.notifications, database, clock, instance_id) if database is not None else None
    )
    return Services(
        notifications=delivery if settings.notifications.enabled else None,
        settings=settings,
        clock=clock,
        registry=registry,
        backplane=backplane,
        cluster=cluster,
        counters=counters,
        streaming=streaming,
        publisher=publisher,
        calendar=calendar,
        provider=provider,
        quote_poller=quote_poller,
        auth=Authenticator(settings.security),
        instance_id=instance_id,
        status=status,
        bus=bus,
        run_quote_poller=run_quote_poller,
        supervisor=supervisor,
        database=database,
        watchlists=watchlists,
        alerting=alerting,
        plugins=manager,
        bars=bars,
        ticker_check=check,
        bar_building=bar_building,
        bar_backfill=bar_backfill,
    )
