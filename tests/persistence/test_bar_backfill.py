"""Bar backfill (legend.services.bars.backfill) over the real bar store: history fills what is missing, a live
bar is never replaced, a restart fetches only what it lacks, and a failing provider backs off without
holding up the other tickers. The history is the simulated demo's, on the real NYSE calendar."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.adapters.quotes import ProviderUnavailable
from legend.adapters.quotes.simulated import SimulatedQuoteProvider
from legend.adapters.sql import Database
from legend.adapters.sql.bars import SqlAlchemyBarStore
from legend.domain.bar_history import Coverage
from legend.domain.bars import Bar, BarInterval
from legend.ports.bar_history import BarHistory
from legend.ports.bars import BarStore
from legend.ports.repositories import PositionMove
from legend.services.bars.backfill import CHUNK, BarBackfill

MONDAY = datetime(2026, 12, 7, 15, 3, 20, tzinfo=UTC)  # 10:03:20 in New York
DEPTH: dict[BarInterval, timedelta] = {
    "1m": timedelta(days=3),
    "1h": timedelta(days=6),
    "1d": timedelta(days=40),
}


@pytest.fixture(scope="module")
def nyse() -> ExchangeCalendarsMarketCalendar:
    return ExchangeCalendarsMarketCalendar("XNYS", start="2025-01-01", end="2027-12-31")


@pytest.fixture
def store(database: Database) -> BarStore:
    return SqlAlchemyBarStore(database)


class RecordingHistory:
    """A real history, with every ``bars`` call recorded and, per ticker, the next ``fail[ticker]`` calls
    (or all of them: -1) failing as an unreachable vendor does."""

    def __init__(self, history: BarHistory) -> None:
        self.history = history
        self.calls: list[tuple[str, BarInterval, datetime, datetime]] = []
        self.fail: dict[str, int] = {}

    async def history_until(self, ticker: str) -> datetime | None:
        return await self.history.history_until(ticker)

    async def bars(self, ticker: str, interval: BarInterval, start: datetime, end: datetime) -> list[Bar]:
        self.calls.append((ticker, interval, start, end))
        left = self.fail.get(ticker, 0)
        if left:
            self.fail[ticker] = left - 1
            raise ProviderUnavailable("simulated", "cannot reach the vendor (a test)")
        return await self.history.bars(ticker, interval, start, end)


def demo(nyse: ExchangeCalendarsMarketCalendar, clock: FrozenClock) -> RecordingHistory:
    return RecordingHistory(SimulatedQuoteProvider(seed=1, clock=clock, calendar=nyse))


async def running(backfill: BarBackfill) -> AsyncIterator[None]:
    task = asyncio.create_task(backfill.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def finish(backfill: BarBackfill) -> None:
    """Run the backfill until it has nothing left to do."""
    async for _ in running(backfill):
        await asyncio.wait_for(backfill.idle(), 30)


def live_bar(start: datetime, *, closed: bool) -> Bar:
    return Bar(
        ticker="AAPL", interval="1m", start=start, open=1.0, high=1.0, low=1.0, close=1.0, volume=7,
        regular=True, closed=closed,
    )  # fmt: skip


async def test_insert_missing_stores_only_what_is_absent_and_records_the_coverage(store: BarStore) -> None:
    t = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    live = [live_bar(t, closed=True), live_bar(t + timedelta(minutes=1), closed=False)]
    await store.write(live, PositionMove("log", None, "1-0"))
    history = [
        Bar(ticker="AAPL", interval="1m", start=t + timedelta(minutes=k), open=2.0, high=2.0, low=2.0, close=2.0,
            volume=1, regular=True, closed=True)
        for k in range(-1, 3)
    ]  # fmt: skip
    covered = Coverage(t - timedelta(minutes=1), t + timedelta(minutes=3))
    assert await store.coverage("AAPL", "1m") is None
    assert await store.insert_missing(history, ("AAPL", "1m", covered)) == 2  # before and after the live ones
    stored = await store.history("AAPL", "1m", 10)
    assert [(b.close, b.closed) for b in stored] == [(2.0, True), (1.0, True), (1.0, False), (2.0, True)]
    assert await store.coverage("AAPL", "1m") == covered
    wider = Coverage(t - timedelta(hours=1), t + timedelta(minutes=3))
    assert await store.insert_missing(history, ("AAPL", "1m", wider)) == 0  # again: nothing new
    assert await store.coverage("AAPL", "1m") == wider
    assert await store.coverage("AAPL", "1h") is None


async def test_backfill_fills_every_interval_in_the_background_and_keeps_live_bars(
    store: BarStore, nyse: ExchangeCalendarsMarketCalendar
) -> None:
    clock = FrozenClock(MONDAY)
    history = demo(nyse, clock)
    last_minute = datetime(2026, 12, 7, 15, 2, tzinfo=UTC)
    await store.write([live_bar(last_minute, closed=True)], PositionMove("log", None, "1-0"))
    backfill = BarBackfill(history, store, tickers=["AAPL"], depth=DEPTH)
    assert backfill.ensure("AAPL") is False  # queued already: once per ticker
    await finish(backfill)
    assert backfill.status()["done"] == 1 and backfill.inserted > 0
    expected = {
        interval: await history.history.bars("AAPL", interval, MONDAY - DEPTH[interval], MONDAY)
        for interval in DEPTH
    }
    for interval, bars in expected.items():
        stored = await store.history("AAPL", interval, 5000)
        assert await store.coverage("AAPL", interval) == Coverage(MONDAY - DEPTH[interval], MONDAY)
        if interval == "1m":
            assert stored[-1].close == 1.0 and stored[-1].volume == 7  # the live builder's bar stands
            assert stored[:-1] == bars[:-1]
        else:
            assert stored == bars and len(bars) > 3
    assert await store.history("AAPL", "5m", 10) == []  # not in depth: not fetched


async def test_a_restart_fetches_only_what_the_coverage_lacks(
    store: BarStore, nyse: ExchangeCalendarsMarketCalendar
) -> None:
    clock = FrozenClock(MONDAY)
    history = demo(nyse, clock)
    # The first run fails after two chunks of minutes: the coverage holds what they stored.
    first = RecordingHistory(history.history)
    original = first.bars
    stored_chunks = 0

    async def two_then_crash(ticker: str, interval: BarInterval, start: datetime, end: datetime) -> list[Bar]:
        nonlocal stored_chunks
        if stored_chunks == 2:
            raise ProviderUnavailable("simulated", "the process died (a test)")
        stored_chunks += 1
        return await original(ticker, interval, start, end)

    first.bars = two_then_crash  # type: ignore[method-assign]
    crashed = BarBackfill(first, store, tickers=["AAPL"], depth={"1m": timedelta(days=5)}, attempts=1)
    await finish(crashed)
    assert crashed.status()["given_up"] == 1
    chunk = CHUNK["1m"]
    assert await store.coverage("AAPL", "1m") == Coverage(MONDAY - 2 * chunk, MONDAY)
    # A restart 30 minutes later: the half hour since (from the minute that was forming at the end), then
    # the rest further back, nothing twice.
    clock.advance(1800)
    later = MONDAY + timedelta(minutes=30)
    restarted = BarBackfill(history, store, tickers=["AAPL"], depth={"1m": timedelta(days=5)})
    await finish(restarted)
    assert [(start, end) for _, _, start, end in history.calls] == [
        (MONDAY - timedelta(minutes=1), later),
        (MONDAY - 2 * chunk - timedelta(hours=23, minutes=30), MONDAY - 2 * chunk),
    ]
    assert await store.coverage("AAPL", "1m") == Coverage(later - timedelta(days=5), later)
    minutes = await store.history("AAPL", "1m", 5000)
    starts = [bar.start for bar in minutes]
    assert starts[-1] == datetime(2026, 12, 7, 15, 32, tzinfo=UTC)  # the last minute closed by 15:33:20
    assert datetime(2026, 12, 7, 15, 3, tzinfo=UTC) in starts  # the one forming at the first run's end
    assert starts == sorted(set(starts))
    assert all(
        b - a == timedelta(minutes=1) for a, b in itertools.pairwise(starts)
    )  # the demo moves at any hour
    # Once more, with nothing new: no request at all.
    history.calls.clear()
    await finish(BarBackfill(history, store, tickers=["AAPL"], depth={"1m": timedelta(days=5)}))
    assert history.calls == []


async def test_a_failing_provider_backs_off_without_holding_up_other_tickers(
    store: BarStore, nyse: ExchangeCalendarsMarketCalendar
) -> None:
    history = demo(nyse, FrozenClock(MONDAY))
    history.fail["BAD"] = -1  # never answers
    waits: list[float] = []
    release = asyncio.Event()

    async def sleep(seconds: float) -> None:  # the backoff's waits, held until the test lets them pass
        waits.append(seconds)
        await release.wait()
        release.clear()

    backfill = BarBackfill(
        history, store, depth={"1d": timedelta(days=30)}, concurrency=1, initial=1.0, maximum=4.0, attempts=4,
        sleep=sleep,
    )  # fmt: skip
    async for _ in running(backfill):
        backfill.ensure("BAD")
        backfill.ensure("AAPL")
        for _ in range(200):  # one worker: AAPL is served while BAD waits for its retry
            await asyncio.sleep(0.01)
            if backfill.status()["done"] == 1:
                break
        assert backfill.status() | {"last_error": None} == {
            "queued": 0, "in_progress": 0, "retrying": 1, "done": 1, "given_up": 0, "dropped": 0,
            "inserted": backfill.inserted, "last_error": None,
        }  # fmt: skip
        assert len(await store.history("AAPL", "1d", 100)) > 15
        for count in (2, 3):  # each retry fails again and waits longer
            release.set()
            while len(waits) < count:
                await asyncio.sleep(0.01)
        release.set()
        await asyncio.wait_for(backfill.idle(), 5)
        assert waits == [1.0, 2.0, 4.0]  # doubling, at most the maximum; then given up
        assert backfill.status()["given_up"] == 1
        assert backfill.status()["last_error"] == "BAD: simulated: cannot reach the vendor (a test)"
        assert await store.coverage("BAD", "1d") is None
        assert backfill.ensure("BAD") is True  # a later ensure tries again


async def test_when_every_request_fails_the_workers_pause_longer_and_longer(
    store: BarStore, nyse: ExchangeCalendarsMarketCalendar
) -> None:
    history = demo(nyse, FrozenClock(MONDAY))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    backfill = BarBackfill(
        history, store, depth={"1d": timedelta(days=30)}, concurrency=1, initial=1.0, maximum=3.0, attempts=1,
        sleep=sleep,
    )  # fmt: skip
    for ticker in ("A", "B", "C", "D"):
        history.fail[ticker] = -1  # a plan without history: every request refused
        backfill.ensure(ticker)
    await finish(backfill)
    assert backfill.status()["given_up"] == 4
    assert waits == [1.0, 2.0, 3.0]  # a pause once more failed in a row than there are workers
    backfill.ensure("AAPL")  # one success ends the streak
    backfill.ensure("E")
    history.fail["E"] = -1
    await finish(backfill)
    assert waits == [1.0, 2.0, 3.0] and backfill.status()["done"] == 1
