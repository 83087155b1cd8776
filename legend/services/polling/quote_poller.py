"""The quote poller: polls quotes for watched tickers and announces market open/close transitions.

Exactly one instance polls at a time (a cluster lease); every instance reports its own interest, and
the holder fetches the union, so N instances never publish N copies of a price. Its prices and market
status are published with the lease's fencing token: a holder that was frozen or cut past its lease and
comes back is refused (Fenced), stops at once and goes back to trying to take the lease. The interval follows the
market clock: ``update_interval`` in regular hours, ``after_hours_interval`` outside (unless the provider
says it does not follow market hours, as the simulated demo does: then ``update_interval`` at all hours),
and a sleep never runs past the next open or close, so the transition is announced on time.

It was called the streamer; what others read keeps that name: the lease (``streamer``, which every
instance of a rolling upgrade must agree on), the ``streamer`` key of ``/api/ws/stats``, the logger and the
``legend_streamer_leader`` metric.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from legend.domain.market import MarketState
from legend.domain.timefmt import iso
from legend.ports.backplane import BackplaneUnavailable, Fenced
from legend.ports.clock import Clock
from legend.ports.cluster import ClusterMembership
from legend.ports.market import MarketCalendar, MarketCalendarError
from legend.ports.quotes import QuoteProvider, follows_market_hours
from legend.runtime.backoff import exponential
from legend.runtime.events import set_within
from legend.runtime.supervisor import Supervised, TaskSupervisor
from legend.services.streaming.publisher import Publisher
from legend.services.streaming.service import StreamingService

log = logging.getLogger("legend.streamer")

LEASE = "streamer"
MIN_SPACING = 0.5  # seconds between two rounds at the least


class QuotePoller:
    """Background polling loop; ``start``/``stop`` are idempotent."""

    def __init__(
        self,
        *,
        provider: QuoteProvider,
        calendar: MarketCalendar,
        publisher: Publisher,
        cluster: ClusterMembership,
        streaming: StreamingService,
        clock: Clock,
        update_interval: float,
        after_hours_interval: float,
        lease_ttl: float | None = None,
        max_backoff: float = 60.0,
        extra_interest: Callable[[], Iterable[str]] | None = None,
        supervisor: TaskSupervisor | None = None,
    ) -> None:
        self.provider = provider
        self.follows_market_hours = follows_market_hours(provider)
        self.calendar = calendar
        self.publisher = publisher
        self.cluster = cluster
        self.streaming = streaming
        self.clock = clock
        self.update_interval = update_interval
        self.after_hours_interval = after_hours_interval
        self.lease_ttl = lease_ttl
        self.max_backoff = max_backoff
        # Tickers to poll although no client watches them live (tickers with armed alert rules).
        self.extra_interest = extra_interest
        self.leader = False
        self.last_state: MarketState | None = None
        self._announced: bool | None = None
        self.polls = 0
        self.quotes_published = 0
        self.provider_errors = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_fetch: datetime | None = None
        self.fenced = 0  # times a publish was refused: the lease had been taken over meanwhile
        self.lease_lost = 0  # times this instance stopped polling because another took the lease over
        self.last_publish: datetime | None = None  # when the last price published was sent (this instance)
        self._stop = asyncio.Event()
        self.supervisor = supervisor or TaskSupervisor()  # runs the polling loop (restarted should it raise)
        self._task: Supervised | None = None
        self._wake = asyncio.Event()
        self._next_poll = float("-inf")
        self._poked = False

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = self.supervisor.start("streamer", self._run)

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            await task.stop()

    def poke(self, ticker: str | None = None) -> None:
        """Poll soon (a ticker was just subscribed: give it a price without waiting for the interval)."""
        self._poked = True
        self._wake.set()

    def market_state(self) -> MarketState | None:
        try:
            return self.calendar.state_at(self.clock.now())
        except MarketCalendarError as exc:
            log.error("market calendar: %s", exc)
            return None

    async def tick(self) -> float:
        """One round: report interest, take or renew the lease, and as leader announce transitions
        and poll when due. Returns the seconds until the next round."""
        state = self.market_state()
        self.last_state = state
        interval = self.interval(state)
        try:
            interest = set(self.streaming.tickers())
            if self.extra_interest is not None:
                interest.update(self.extra_interest())
            await self.cluster.set_interest(interest)
            held = await self.cluster.hold_lease(LEASE, self.lease_ttl or 3600.0)
            if self.leader and not held:
                self.lease_lost += 1
                log.warning("quote poller lost the lease to another instance; no longer polling")
            self.leader = held
        except BackplaneUnavailable as exc:
            if self.leader:  # cut from Redis: the lease lapses, another instance takes polling over
                self.lease_lost += 1
                log.warning("quote poller cannot renew its lease (%s); no longer polling", exc)
            else:
                log.warning("backplane unavailable: %s", exc)
            self.leader = False
        now = self.clock.monotonic()
        if not self.leader:
            self._announced = None  # a new leadership announces the current status again
            wait = interval
        else:
            fence = self.cluster.fence(LEASE)
            try:
                if state is not None and state.is_open != self._announced:
                    try:
                        await self.publisher.market_status(state, fence)
                        self._announced = state.is_open
                    except Fenced:
                        raise
                    except BackplaneUnavailable:
                        pass
                if self._poked or now >= self._next_poll or self._next_poll - now > interval:
                    self._poked = False
                    self._next_poll = now + await self._poll(interval, fence)
            except Fenced as exc:
                self._fenced(exc)
            wait = self._next_poll - now if self.leader else self._retry()
        if self.lease_ttl:
            wait = min(wait, self._retry())  # renew (or try to take) the lease in time
        if state is not None and state.next_transition is not None:
            until = (state.next_transition - self.clock.now()).total_seconds()
            wait = min(wait, max(until, 0.05))
        return max(wait, 0.0)

    def interval(self, state: MarketState | None) -> float:
        """Seconds between polls: ``after_hours_interval`` only outside market hours (or when the calendar
        failed) and only for a provider that follows them."""
        if not self.follows_market_hours or (state is not None and state.is_open):
            return self.update_interval
        return self.after_hours_interval

    def _retry(self) -> float:
        """How soon to try the lease again: a quarter of its ttl, so a takeover comes at most that long
        after a dead holder's lease lapsed."""
        return self.lease_ttl / 4 if self.lease_ttl else self.update_interval

    def _fenced(self, exc: Fenced) -> None:
        """Another instance took the lease while this one was paused or cut: stop publishing at once and go
        back to trying to take the lease."""
        self.fenced += 1
        self.lease_lost += 1
        self.leader = False
        self._announced = None
        log.warning("quote poller fenced: %s; no longer polling until the lease is taken again", exc)

    async def _poll(self, interval: float, fence: tuple[str, int] | None = None) -> float:
        tickers = await self.cluster.interest()
        if not tickers:
            return interval
        self.polls += 1
        try:
            quotes = await self.provider.fetch(sorted(tickers))
        except Exception as exc:  # a provider failure never stops the quote poller
            self.provider_errors += 1
            self.consecutive_failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "quote provider %s failed (%d in a row): %s",
                self.provider.name,
                self.consecutive_failures,
                exc,
            )
            return exponential(interval, self.consecutive_failures, maximum=max(self.max_backoff, interval))
        self.consecutive_failures = 0
        self.last_fetch = self.clock.now()
        for quote in quotes:
            try:
                sent = self.clock.now()
                await self.publisher.price(quote, fence)
                self.quotes_published += 1
                self.last_publish = sent
            except Fenced:
                raise
            except BackplaneUnavailable:
                break
        return interval

    async def _run(self) -> None:
        while not self._stop.is_set():
            started = self.clock.monotonic()
            self._wake.clear()  # a poke from here on brings the next round forward
            try:
                delay = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("streamer tick failed")
                delay = self.update_interval
            await set_within(self._wake, delay)
            # at least MIN_SPACING between rounds, so a burst of new subscriptions makes one early poll
            spent = self.clock.monotonic() - started
            if spent < MIN_SPACING:
                await asyncio.sleep(MIN_SPACING - spent)

    def status(self) -> dict[str, object]:
        """For stats and admins: who polls, what, and how it is going."""
        state = self.last_state
        return {
            "provider": self.provider.name,
            "leader": self.leader,
            "market": state.status if state else "unknown",
            "interval": self.interval(state),
            "polls": self.polls,
            "quotes_published": self.quotes_published,
            "provider_errors": self.provider_errors,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "last_fetch": iso(self.last_fetch) if self.last_fetch else None,
            "fenced": self.fenced,
            "lease_lost": self.lease_lost,
            "last_publish": iso(self.last_publish) if self.last_publish else None,
        }
