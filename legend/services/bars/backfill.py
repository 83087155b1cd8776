"""Bar backfill: the past of each watched ticker fetched from the provider's history, in the background.

``ensure(ticker)`` (a ticker first watched, or asked for over REST; and the start-up list) queues a ticker
and returns at once. ``run()`` (a supervised loop) works through the queue with ``concurrency`` workers:
per interval it asks the provider (``BarHistory``) for the stretch ``depth[interval]`` back from the
provider's present that the store does not cover yet, a ``CHUNK`` at a time, and stores each chunk with
``insert_missing`` (a bar the live builder wrote is never replaced) together with how far the series is
covered, so a restart fetches only what is missing: the stretch since the covered end first (from one
bar before it, since the bar forming then was not closed yet; oldest first, so the coverage stays one
stretch), then further back. A provider failure puts the ticker back in
the queue after a backoff (``initial`` doubling up to ``maximum``) while the workers go on with other
tickers; after ``attempts`` failures in a row the ticker is given up until it is ensured again. When more
tickers fail, with no request succeeding in between, than there are workers, the provider itself is
failing (down, or a plan without history): each worker then pauses that long before its next ticker, so
that the backfill never spends the provider's rate limit, which the quote poller shares, on requests that
fail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Final

from legend.domain.bar_history import Coverage
from legend.domain.bars import INTERVALS, INTRADAY, BarInterval
from legend.domain.events import TickerWatched
from legend.ports.bar_history import BarHistory
from legend.ports.bars import BarStore
from legend.runtime.backoff import exponential

log = logging.getLogger("legend.bars.backfill")

#: How far back each interval is filled by default: the chart's usual reach at that interval.
DEPTH: Final[dict[BarInterval, timedelta]] = {
    "1m": timedelta(days=5),
    "5m": timedelta(days=30),
    "15m": timedelta(days=60),
    "1h": timedelta(days=180),
    "1d": timedelta(days=366),
}
#: The stretch asked for in one request: at most some 3,000 bars, well within a vendor's page.
CHUNK: Final[dict[BarInterval, timedelta]] = {
    "1m": timedelta(days=2),
    "5m": timedelta(days=10),
    "15m": timedelta(days=30),
    "1h": timedelta(days=120),
    "1d": timedelta(days=400),
}


class BarBackfill:
    """Fills the bar store from ``history``; ``ensure`` never waits, ``run`` does the work."""

    def __init__(
        self,
        history: BarHistory,
        store: BarStore,
        *,
        tickers: Iterable[str] = (),
        depth: Mapping[BarInterval, timedelta] = DEPTH,
        concurrency: int = 2,
        initial: float = 1.0,
        maximum: float = 300.0,
        attempts: int = 8,
        max_queued: int = 10_000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if concurrency < 1 or attempts < 1 or max_queued < 1 or initial < 0 or maximum < initial:
            raise ValueError(
                "backfill needs concurrency >= 1, attempts >= 1, max_queued >= 1 and 0 <= initial <= maximum "
                f"(got {concurrency}, {attempts}, {max_queued}, {initial}, {maximum})"
            )
        for interval, period in depth.items():
            if period <= timedelta(0):
                raise ValueError(f"depth[{interval!r}]: expected a positive period, got {period}")
        self._history = history
        self._store = store
        self._depth = dict(depth)
        self._concurrency = concurrency
        self._initial = initial
        self._maximum = maximum
        self._attempts = attempts
        self._max_queued = max_queued
        self._sleep = sleep
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._seen: set[str] = set()  # queued, in progress, waiting for a retry, or done in this process
        self._failures: dict[str, int] = {}  # failures in a row per ticker
        self._failing: set[str] = set()  # the tickers that failed since the last request that succeeded
        self._retries: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._busy = 0
        self.done = 0  # tickers fully backfilled
        self.given_up = 0
        self.dropped = 0  # ensures refused because max_queued were pending
        self.inserted = 0  # bars stored
        self.last_error: str | None = None
        for ticker in tickers:
            self.ensure(ticker)

    def ensure(self, ticker: str) -> bool:
        """Queue ``ticker`` unless it is queued or done already; True when queued. Never waits."""
        ticker = ticker.strip()
        if not ticker or ticker in self._seen:
            return False
        if self._queue.qsize() >= self._max_queued:
            self.dropped += 1
            return False
        self._seen.add(ticker)
        self._idle.clear()
        self._queue.put_nowait(ticker)
        return True

    def on_watched(self, event: TickerWatched) -> None:
        """The message bus's ``TickerWatched``: a ticker got its first subscriber here, its chart wants a past."""
        self.ensure(event.ticker)

    def status(self) -> dict[str, object]:
        """Counters for admins."""
        return {
            "queued": self._queue.qsize(),
            "in_progress": self._busy,
            "retrying": len(self._retries),
            "done": self.done,
            "given_up": self.given_up,
            "dropped": self.dropped,
            "inserted": self.inserted,
            "last_error": self.last_error,
        }

    async def idle(self) -> None:
        """Wait until nothing is queued, in progress or waiting for a retry (for tests and the CLI)."""
        while self._queue.qsize() or self._busy or self._retries:
            self._idle.clear()
            await self._idle.wait()

    async def run(self) -> None:
        """Work through the queue until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self._concurrency):
                    group.create_task(self._work())
        finally:
            for task in self._retries:
                task.cancel()

    async def _work(self) -> None:
        while True:
            ticker = await self._queue.get()
            self._busy += 1
            try:
                await self._ticker(ticker)
            finally:
                self._busy -= 1
                self._settle()

    def _settle(self) -> None:
        if not (self._queue.qsize() or self._busy or self._retries):
            self._idle.set()

    async def _ticker(self, ticker: str) -> None:
        try:
            until = await self._history.history_until(ticker)
            if until is not None:
                for interval in INTERVALS:
                    if interval in self._depth:
                        await self._series(ticker, interval, until)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(ticker, exc)
            self._failing.add(ticker)
            streak = len(self._failing)
            if streak > self._concurrency:  # more tickers failing than workers: the provider itself is down
                await self._sleep(
                    exponential(self._initial, streak - self._concurrency - 1, maximum=self._maximum)
                )
            return
        self._failures.pop(ticker, None)
        self.done += 1

    async def _series(self, ticker: str, interval: BarInterval, until: datetime) -> None:
        """Fill what the coverage lacks of ``[until - depth, until)``, chunk by chunk."""
        want = Coverage(until - self._depth[interval], until)
        have = await self._store.coverage(ticker, interval)
        step = CHUNK[interval]
        if have is None or have.end < want.start or have.start > want.end:
            start = end = until  # nothing usable: start again from the present
        else:
            # The bar forming at the covered end was not closed then: ask again from where it may start.
            start, end = have
            if end < until:
                end = max(start, end - INTRADAY.get(interval, timedelta(days=1)))
        while end < want.end:  # forward from the covered end, so that the coverage stays one stretch
            upper = min(end + step, want.end)
            await self._chunk(ticker, interval, end, upper, Coverage(start, upper))
            end = upper
        while start > want.start:  # then further back
            lower = max(start - step, want.start)
            await self._chunk(ticker, interval, lower, start, Coverage(lower, end))
            start = lower

    async def _chunk(
        self, ticker: str, interval: BarInterval, start: datetime, end: datetime, after: Coverage
    ) -> None:
        bars = await self._history.bars(ticker, interval, start, end)
        closed = [bar for bar in bars if bar.closed and bar.ticker == ticker and bar.interval == interval]
        self.inserted += await self._store.insert_missing(closed, (ticker, interval, after))
        self._failing.clear()

    def _failed(self, ticker: str, exc: Exception) -> None:
        failures = self._failures.get(ticker, 0) + 1
        self.last_error = f"{ticker}: {exc}"
        if failures >= self._attempts:
            self._failures.pop(ticker, None)
            self._seen.discard(ticker)  # a later ensure tries again
            self.given_up += 1
            log.warning("bar backfill of %s given up after %d failures: %s", ticker, failures, exc)
            return
        self._failures[ticker] = failures
        delay = exponential(self._initial, failures - 1, maximum=self._maximum)
        log.info("bar backfill of %s failed (%s); again in %.1f s", ticker, exc, delay)
        task = asyncio.create_task(self._retry(ticker, delay), name=f"bar-backfill-retry-{ticker}")
        self._retries.add(task)

    async def _retry(self, ticker: str, delay: float) -> None:
        try:
            await self._sleep(delay)
            self._queue.put_nowait(ticker)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._retries.discard(task)
            self._settle()
