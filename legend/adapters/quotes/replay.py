"""A QuoteProvider that replays real historical bars from CSV files, one file per ticker."""

from __future__ import annotations

import asyncio
import logging
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from legend.adapters.clock.system import SystemClock
from legend.adapters.quotes.bars import BarSeries, load_bars, read_columns
from legend.adapters.quotes.errors import ReplayDataError
from legend.adapters.quotes.history import CalendarAlignment
from legend.domain.bar_alignment import INTRADAY_US
from legend.domain.bar_history import daily, place, roll_up, within
from legend.domain.bars import Bar, BarInterval
from legend.domain.quotes import Quote
from legend.domain.timefmt import from_epoch
from legend.ports.backplane import BackplaneUnavailable
from legend.ports.clock import Clock
from legend.ports.cluster import SharedPositions
from legend.ports.market import MarketCalendar

log = logging.getLogger("legend.quotes.replay")

SAMPLE_TICKER = "SPX"
SAMPLE_FILE = Path(__file__).resolve().parent / "data" / "SP500_NOV2019_IDay.csv"
_EPSILON = 1e-9  # 0.29 * 100 is 28.999999999999996: count it as 29 bars


@dataclass(frozen=True, slots=True)
class ReplaySource:
    """One ticker's file and, optionally, the first session to replay."""

    path: Path
    start: date | None = None


@dataclass(slots=True)
class _Cursor:
    series: BarSeries
    first: int  # the window replayed is [first, len(series))


class ReplayQuoteProvider:
    """Replays OHLCV bars; every file moves on one shared replay clock.

    ``advance = "fetch"``: each ``fetch`` moves ``speed`` bars forward (the first fetch shows the first bar).
    ``advance = "time"``: the replay moves ``speed`` bars per second of the injected clock's monotonic time,
    counted from the first fetch, however often the quote poller polls. At the end a file starts again at its
    first replayed bar (``loop``) or holds its last bar. Tickers without a file are left out.

    Files are read on first use, in a worker thread, once; a file that cannot be read raises a
    ReplayDataError naming the file and line (the other tickers' quotes are still returned when there are any).

    History (``BarHistory``): the file's bars before the one replayed now, rolled up on the ``calendar``'s
    sessions (NYSE when none is given); a daily file has daily bars only, and an intraday file has no
    bars finer than its own (a file of 5-minute bars has no 1m history).

    In a cluster (``positions``) the replay clock is kept in Redis: each fetch continues from the
    position saved by whichever instance fetched last (one bar on, or the real time since that save on),
    so the instance that takes polling over continues the series instead of starting it again.
    """

    name: str = "replay"
    follows_market_hours: bool = True  # real bars: polled like a live feed (docs/providers.md)

    def __init__(
        self,
        files: Mapping[str, ReplaySource],
        *,
        speed: float = 1.0,
        advance: Literal["fetch", "time"] = "fetch",
        loop: bool = True,
        start: date | None = None,
        timezone: str = "America/New_York",
        clock: Clock | None = None,
        calendar: MarketCalendar | None = None,
        positions: SharedPositions | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._sources = {ticker.upper(): source for ticker, source in files.items()}
        self._speed = speed
        self._advance = advance
        self._loop = loop
        self._start = start
        self._zone = ZoneInfo(timezone)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._fetches = 0
        self._origin: float | None = None  # monotonic time of the first fetch (advance = "time")
        self._series: dict[Path, BarSeries | ReplayDataError] = {}
        self._cursors: dict[str, _Cursor | ReplayDataError] = {}
        self._loading = asyncio.Lock()
        self._reported: set[str] = set()
        self._alignment = CalendarAlignment(calendar)
        self._shared = positions  # the cluster's: the replay clock kept there, a takeover continues it
        self._shared_failing = False  # logged once until it works again

    @property
    def tickers(self) -> list[str]:
        """The tickers this replay knows."""
        return sorted(self._sources)

    def check_files(self) -> None:
        """Raise a ReplayDataError now for a missing file or one without an OHLC header (reads one line each)."""
        for source in self._sources.values():
            read_columns(source.path)

    async def known(self, tickers: Iterable[str]) -> set[str]:
        """The tickers a replay file was given for (a subscription to any other is refused)."""
        return {ticker for ticker in tickers if ticker in self._sources}

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        wanted = [t for t in dict.fromkeys(tickers) if t in self._sources]
        steps = await self._shared_step(self._step())
        quotes: list[Quote] = []
        errors: list[ReplayDataError] = []
        for ticker in wanted:
            cursor = await self._cursor(ticker)
            if isinstance(cursor, ReplayDataError):
                errors.append(cursor)
                continue
            quotes.append(cursor.series.quote(ticker, self._index(cursor, steps)))
        if errors:
            if not quotes:
                raise errors[0]
            for error in errors:
                if str(error) not in self._reported:  # once, not every poll
                    self._reported.add(str(error))
                    log.error("%s", error)
        return quotes

    async def aclose(self) -> None:
        """Nothing to release: files are read whole and closed at load."""

    async def history_until(self, ticker: str) -> datetime | None:
        """The replay's present for ``ticker``: the time of the bar it replays now."""
        if ticker not in self._sources:
            return None
        cursor = await self._loaded(ticker)
        return from_epoch(cursor.series.timestamp[self._index(cursor, self._last_step())])

    async def bars(self, ticker: str, interval: BarInterval, start: datetime, end: datetime) -> list[Bar]:
        """The file's bars before the one replayed now, at ``interval``, starting in ``[start, end)``."""
        if ticker not in self._sources:
            return []
        cursor = await self._loaded(ticker)
        series = cursor.series
        now = self._index(cursor, self._last_step())
        alignment = await self._alignment.get()
        # Only the bars that can fall in the stretch asked for: a bar of ``interval`` starting before ``end``
        # takes file bars up to a day later.
        first = bisect_left(series.timestamp, start.timestamp())
        last = min(now, bisect_left(series.timestamp, (end + timedelta(days=1)).timestamp()))
        if series.daily:
            if interval != "1d":
                return []
            days = (
                daily(alignment, ticker, series.session_date(i), series.figures(i))
                for i in range(first, last)
            )
            return within((bar for bar in days if bar is not None), start, end)
        step = series.step
        if interval != "1d" and (step is None or step * 1_000_000 > INTRADAY_US[interval]):
            return []
        until = from_epoch(series.timestamp[now])
        own = (
            place(alignment, ticker, "1m", from_epoch(series.timestamp[i]), series.figures(i))
            for i in range(first, last)
        )
        minutes = [bar for bar in own if bar is not None]
        return within(
            minutes if interval == "1m" else roll_up(minutes, interval, alignment, until), start, end
        )

    async def _loaded(self, ticker: str) -> _Cursor:
        cursor = await self._cursor(ticker)
        if isinstance(cursor, ReplayDataError):
            raise cursor
        return cursor

    def position(self, ticker: str) -> dict[str, object] | None:
        """Where the replay of ``ticker`` stands (for admins and tests); None before its file is loaded."""
        cursor = self._cursors.get(ticker)
        if not isinstance(cursor, _Cursor):
            return None
        i = self._index(cursor, self._last_step())
        return {
            "file": str(cursor.series.path),
            "bar": i,
            "bars": len(cursor.series),
            "session": cursor.series.session_date(i).isoformat(),
            "timestamp": cursor.series.timestamp[i],
        }

    def _step(self) -> float:
        """Replay time of this fetch, in bars before ``speed`` is applied; moves the replay clock on."""
        if self._advance == "time":
            now = self._clock.monotonic()
            if self._origin is None:
                self._origin = now
            self._fetches += 1
            return now - self._origin
        step = float(self._fetches)
        self._fetches += 1
        return step

    async def _shared_step(self, local: float) -> float:
        """This fetch's replay time, moved on in the shared position when there is one (``local`` when it
        cannot be: the replay goes on from this instance's own clock until it can again)."""
        if self._shared is None:
            return local
        by_time = self._advance == "time"
        try:
            step = await self._shared.advance_position(self.name, by_time, local)
        except BackplaneUnavailable as exc:
            if not self._shared_failing:
                log.warning("replay: shared position unavailable, going on from this instance's: %s", exc)
            self._shared_failing = True
            return local
        self._shared_failing = False
        if by_time:
            self._origin = self._clock.monotonic() - step
        else:
            self._fetches = int(step) + 1
        return step

    def _last_step(self) -> float:
        if self._advance == "time":
            return 0.0 if self._origin is None else self._clock.monotonic() - self._origin
        return float(max(self._fetches - 1, 0))

    def _index(self, cursor: _Cursor, steps: float) -> int:
        offset = math.floor(steps * self._speed + _EPSILON)
        window = len(cursor.series) - cursor.first
        if self._loop:
            return cursor.first + offset % window
        return cursor.first + min(offset, window - 1)

    async def _cursor(self, ticker: str) -> _Cursor | ReplayDataError:
        cursor = self._cursors.get(ticker)
        if cursor is not None:
            return cursor
        source = self._sources[ticker]
        async with self._loading:
            series = self._series.get(source.path)
            if series is None:
                try:
                    series = await asyncio.to_thread(load_bars, source.path, self._zone)
                    log.info("replay: %s bars of %s loaded from %s", len(series), ticker, source.path)
                except ReplayDataError as exc:
                    series = exc
                self._series[source.path] = series
        if isinstance(series, ReplayDataError):
            cursor = series
        else:
            start = source.start or self._start
            try:
                cursor = _Cursor(series, series.first_index_on_or_after(start) if start else 0)
            except ReplayDataError as exc:
                cursor = exc
        self._cursors[ticker] = cursor
        return cursor
