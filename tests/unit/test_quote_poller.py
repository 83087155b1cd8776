"""The quote poller against in-memory adapters and a frozen clock: interest-only polling, transitions,
provider failures with backoff, and the simulated demo ticking at all hours."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.quotes import AlpacaQuoteProvider, FinnhubQuoteProvider, ReplayQuoteProvider
from legend.adapters.quotes.simulated import SimulatedQuoteProvider
from legend.bootstrap import bootstrap
from legend.domain.envelope import Envelope
from legend.domain.events import TickerWatched
from legend.domain.quotes import Quote
from legend.ports.backplane import Fenced, Outgoing
from legend.ports.quotes import follows_market_hours
from legend.services.polling.quote_poller import QuotePoller
from legend.services.streaming.service import StreamingService
from legend.settings import DatabaseSettings, QuotesSettings, Settings
from tests.support.streaming import build_streaming, send
from tests.support.transport import RecordingTransport

CALENDAR = ExchangeCalendarsMarketCalendar("XNYS")


class CountingProvider:
    """Wraps the simulated provider, recording what was asked, failing on demand."""

    name = "counting"

    def __init__(self, clock: FrozenClock) -> None:
        self.inner = SimulatedQuoteProvider(seed=1, clock=clock)
        self.asked: list[list[str]] = []
        self.fail = False

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        wanted = list(tickers)
        self.asked.append(wanted)
        if self.fail:
            raise ConnectionError("vendor down")
        return await self.inner.fetch(wanted)

    async def aclose(self) -> None:
        pass


class AllHoursProvider(CountingProvider):
    """Like the simulated demo: prices move at any hour."""

    follows_market_hours = False


def build(
    now: datetime, provider_class: type[CountingProvider] = CountingProvider
) -> tuple[QuotePoller, StreamingService, CountingProvider, FrozenClock, InMemoryBackplane]:
    clock = FrozenClock(now)
    backplane = InMemoryBackplane()
    streaming, publisher, _ = build_streaming(clock, backplane)
    provider = provider_class(clock)
    quote_poller = QuotePoller(
        provider=provider, calendar=CALENDAR, publisher=publisher, cluster=backplane, streaming=streaming,
        clock=clock, update_interval=5, after_hours_interval=60,
    )  # fmt: skip
    return quote_poller, streaming, provider, clock, backplane


async def test_polls_only_watched_tickers_and_forgets_them() -> None:
    quote_poller, streaming, provider, clock, backplane = build(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    await streaming.start()
    assert await quote_poller.tick() <= 5 and provider.asked == []  # nobody watches anything
    session = streaming.open_session(RecordingTransport(), "u")
    await send(streaming, session, "subscribe", channel="ticker", ticker="AAPL")
    await send(streaming, session, "subscribe", channel="ticker", ticker="msft")
    clock.advance(5)
    await quote_poller.tick()
    assert provider.asked[-1] == ["AAPL", "MSFT"]
    assert (await backplane.replay("ticker:AAPL", None)).last_seq == 1
    await send(streaming, session, "unsubscribe", channel="ticker", ticker="AAPL")
    clock.advance(5)
    await quote_poller.tick()
    assert provider.asked[-1] == ["MSFT"]
    streaming.end_session(session)
    clock.advance(5)
    await quote_poller.tick()
    assert provider.asked[-1] == ["MSFT"] and len(provider.asked) == 2


async def test_interval_follows_market_hours_and_stops_at_transitions() -> None:
    # Tuesday 24 Nov 2026, 20:59:30 UTC: open, closing in 30 s
    quote_poller, streaming, _, clock, backplane = build(datetime(2026, 11, 24, 20, 59, 30, tzinfo=UTC))
    await streaming.start()
    assert await quote_poller.tick() == 5
    clock.advance(28)  # 20:59:58
    assert abs(await quote_poller.tick() - 2) < 1e-6  # wakes at the close, not 5 s later
    clock.advance(2)  # 21:00:00, closed: the poll already planned for 21:00:03 stands
    assert await quote_poller.tick() == 3
    clock.advance(3)
    assert await quote_poller.tick() == 60  # after hours
    statuses = [json.loads(e.text) for e in (await backplane.replay("market_status", None)).envelopes]
    assert [s["status"] for s in statuses] == ["open", "closed"]  # announced once per transition
    assert statuses[1]["next_open"] == "2026-11-25T14:30:00.000Z"
    clock.set_now(datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    clock.advance(60)
    await quote_poller.tick()
    assert (await backplane.replay("market_status", None)).last_seq == 3


async def test_a_provider_that_moves_at_all_hours_is_polled_at_update_interval_when_closed() -> None:
    # Saturday 28 Nov 2026, 03:00 UTC: the exchange is closed until Monday.
    weekend = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    quote_poller, streaming, provider, clock, backplane = build(weekend, AllHoursProvider)
    await streaming.start()
    session = streaming.open_session(RecordingTransport(), "u")
    await send(streaming, session, "subscribe", channel="ticker", ticker="AAPL")
    delays = []
    for _ in range(3):
        delays.append(await quote_poller.tick())
        clock.advance(delays[-1])
    assert delays == [5, 5, 5] and len(provider.asked) == 3
    assert quote_poller.status()["interval"] == 5 and quote_poller.status()["market"] == "closed"
    statuses = [json.loads(e.text) for e in (await backplane.replay("market_status", None)).envelopes]
    assert [s["status"] for s in statuses] == ["closed"]  # the market status still follows the calendar

    # A provider that does not say (as a plugin's written before the attribute) follows market hours.
    quote_poller, streaming, provider, clock, _ = build(weekend)
    await streaming.start()
    session = streaming.open_session(RecordingTransport(), "u")
    await send(streaming, session, "subscribe", channel="ticker", ticker="AAPL")
    assert not hasattr(provider, "follows_market_hours")
    assert await quote_poller.tick() == 60 and quote_poller.status()["interval"] == 60


def test_the_embedded_demo_and_a_replay_as_bootstrap_builds_them(tmp_path: Path) -> None:
    """The default settings (simulated quotes) poll every update_interval on a weekend; a replay of real
    bars, every after_hours_interval."""
    weekend = FrozenClock(datetime(2026, 11, 28, 3, 0, tzinfo=UTC))
    database = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db")
    for quotes, expected in ((QuotesSettings(), 5.0), (QuotesSettings(provider="replay"), 60.0)):
        settings = Settings(database=database, quotes=quotes)
        quote_poller = bootstrap(settings, clock=weekend, run_quote_poller=False).quote_poller
        assert quote_poller.provider.name == quotes.provider
        assert quote_poller.interval(quote_poller.market_state()) == expected


def test_the_simulation_ticks_at_all_hours_and_market_data_follows_the_calendar() -> None:
    assert SimulatedQuoteProvider.follows_market_hours is False
    real = [ReplayQuoteProvider, FinnhubQuoteProvider, AlpacaQuoteProvider]
    assert [cls.follows_market_hours for cls in real] == [True, True, True]
    assert follows_market_hours(SimulatedQuoteProvider()) is False
    assert follows_market_hours(CountingProvider(FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))) is True


async def test_provider_failure_is_counted_backed_off_and_recovered() -> None:
    quote_poller, streaming, provider, clock, _ = build(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    await streaming.start()
    session = streaming.open_session(RecordingTransport(), "u")
    await send(streaming, session, "subscribe", channel="ticker", ticker="AAPL")
    provider.fail = True
    delays = []
    for _ in range(3):
        delays.append(await quote_poller.tick())
        clock.advance(delays[-1])
    assert delays == [10, 20, 40]
    assert quote_poller.provider_errors == 3 and "vendor down" in (quote_poller.status()["last_error"] or "")
    provider.fail = False
    assert await quote_poller.tick() == 5 and quote_poller.consecutive_failures == 0
    assert quote_poller.status()["quotes_published"] == 1


async def test_poke_brings_the_next_round_forward() -> None:
    quote_poller, streaming, provider, _, _ = build(datetime(2026, 11, 24, 23, 0, tzinfo=UTC))  # after hours
    await streaming.start()
    streaming.bus.subscribe(TickerWatched, lambda event: quote_poller.poke(event.ticker))  # as bootstrap does
    quote_poller.start()
    try:
        for _ in range(100):
            if quote_poller.polls or (provider.asked == [] and quote_poller.last_state is not None):
                break
            await asyncio.sleep(0.01)
        session = streaming.open_session(RecordingTransport(), "u")
        await send(streaming, session, "subscribe", channel="ticker", ticker="NEW")
        for _ in range(200):
            if provider.asked:
                break
            await asyncio.sleep(0.01)
        assert provider.asked == [["NEW"]]  # well before the 60 s after-hours interval
    finally:
        await quote_poller.stop()


def test_frozen_clock_is_aware() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(2)
    assert clock.now() - datetime(2026, 1, 1, tzinfo=UTC) == timedelta(seconds=2) and clock.monotonic() == 2


async def test_bootstrap_has_a_new_ticker_polled_at_once_when_it_runs_the_streamer(tmp_path: Path) -> None:
    """A ticker's first subscription (``TickerWatched``) brings the next round forward, as bootstrap wires
    it; a server built with ``run_quote_poller=False`` leaves its quote poller alone."""
    for run_quote_poller in (True, False):
        clock = FrozenClock(datetime(2026, 11, 24, 23, 0, tzinfo=UTC))  # after hours: 60 s between rounds
        provider = CountingProvider(clock)
        database = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend-{run_quote_poller}.db")
        services = bootstrap(
            Settings(database=database),
            clock=clock,
            backplane=InMemoryBackplane(clock),
            provider=provider,
            calendar=CALENDAR,
            run_quote_poller=run_quote_poller,
            plugins={},
        )
        streaming, quote_poller = services.streaming, services.quote_poller
        await streaming.start()
        session = streaming.open_session(RecordingTransport(), "u")
        await send(streaming, session, "subscribe", channel="ticker", ticker="AAPL")
        await quote_poller.tick()  # the first round polls what is watched
        assert provider.asked == [["AAPL"]]
        await send(streaming, session, "subscribe", channel="ticker", ticker="NEW")
        clock.advance(1)
        await quote_poller.tick()
        assert provider.asked[1:] == ([["AAPL", "NEW"]] if run_quote_poller else [])
        await services.backplane.stop()
        await provider.aclose()


class TakenOver(InMemoryBackplane):
    """A cluster where another instance can take the poller's lease over behind this one's back: publishes
    fenced with an older token are refused, as the Redis publish script refuses them."""

    def __init__(self) -> None:
        super().__init__()
        self.token = 1  # the lease's current token
        self.mine = 1  # the token this instance was given
        self.stale = False  # its renewal answered just before the takeover: it believes it holds the lease

    async def hold_lease(self, name: str, ttl: float) -> bool:
        return self.stale or self.mine == self.token

    def fence(self, name: str) -> tuple[str, int] | None:
        return (name, self.mine) if self.stale or self.mine == self.token else None

    async def publish(self, message: Outgoing) -> Envelope:
        if message.fence is not None and message.fence[1] != self.token:
            raise Fenced("taken over")
        return await super().publish(message)


async def test_a_fenced_poller_stops_publishing_at_once_and_goes_back_to_taking_the_lease() -> None:
    clock = FrozenClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    backplane = TakenOver()
    streaming, publisher, _ = build_streaming(clock, backplane)
    provider = CountingProvider(clock)
    quote_poller = QuotePoller(
        provider=provider, calendar=CALENDAR, publisher=publisher, cluster=backplane, streaming=streaming,
        clock=clock, update_interval=5, after_hours_interval=60, lease_ttl=2.0,
    )  # fmt: skip
    await streaming.start()
    session = streaming.open_session(RecordingTransport(), "u")
    for ticker in ("AAPL", "MSFT"):
        await send(streaming, session, "subscribe", channel="ticker", ticker=ticker)
    await quote_poller.tick()
    assert quote_poller.leader and quote_poller.quotes_published == 2
    backplane.token, backplane.stale = 2, True  # another took the lease over while this one was paused
    clock.advance(5)
    wait = await quote_poller.tick()  # this round still believed it held the lease: its publish is fenced
    status = quote_poller.status()
    assert status["leader"] is False and status["fenced"] == 1 and status["lease_lost"] == 1
    assert quote_poller.quotes_published == 2  # the second price of the round was not even tried
    assert (await backplane.replay("ticker:MSFT", None)).last_seq == 1
    assert wait <= 0.5  # tries the lease again soon: a quarter of its ttl
    backplane.stale = False
    clock.advance(wait)
    await quote_poller.tick()
    assert quote_poller.leader is False and len(provider.asked) == 2  # not its lease: no polling
    backplane.mine = 2  # it takes the lease again (a new holding, a new token)
    clock.advance(5)
    await quote_poller.tick()
    assert quote_poller.leader and quote_poller.quotes_published == 4
