"""A QuoteProvider that invents plausible, reproducible prices, for demos and tests without a data vendor."""

from __future__ import annotations

import asyncio
import math
import random
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from legend.adapters.clock.system import SystemClock
from legend.adapters.quotes.history import CalendarAlignment
from legend.adapters.quotes.simulated_history import (
    MINUTE_US,
    REGULAR_MINUTES,
    SimulatedHistory,
    ending_at,
    generate,
    profile,
    u_shape,
)
from legend.domain.bar_alignment import Segment, SessionAlignment
from legend.domain.bar_history import roll_up, within
from legend.domain.bars import Bar, BarInterval
from legend.domain.quotes import Quote
from legend.domain.timefmt import epoch_us
from legend.ports.clock import Clock
from legend.ports.market import MarketCalendar

_MIN_PREVIOUS_CLOSE, _MAX_PREVIOUS_CLOSE = 5.0, 800.0  # for tickers not in REFERENCE_CLOSES

# Where the walk of a well-known ticker starts: its closing price on 31 October 2025, rounded to the cent
# (approximate, from memory of that day's market, not a data feed). Realistic levels make the demo read like
# the market (AAPL near $270, SPY near $682) and the docs' examples fit beside it.
# fmt: off
REFERENCE_CLOSES: Mapping[str, float] = {
    # the largest US companies
    "AAPL": 270.37, "MSFT": 517.81, "NVDA": 202.49, "GOOGL": 281.19, "GOOG": 281.82, "AMZN": 244.22,
    "META": 648.35, "TSLA": 456.56, "AVGO": 369.63, "BRK.B": 481.20, "BRK-B": 481.20, "LLY": 862.86,
    "JPM": 311.12, "V": 340.70, "MA": 552.10, "UNH": 341.50, "XOM": 114.40, "JNJ": 188.90,
    "WMT": 101.20, "PG": 150.30, "HD": 379.60, "COST": 911.90, "NFLX": 1089.00, "ORCL": 257.90,
    "AMD": 256.12, "INTC": 40.00, "CRM": 260.40, "ADBE": 340.30, "CSCO": 73.10, "IBM": 307.40,
    "QCOM": 180.90, "MU": 223.80, "PLTR": 200.47, "KO": 69.00, "PEP": 144.40, "DIS": 112.60,
    "BAC": 53.45,
    # the most traded ETFs
    "SPY": 682.06, "QQQ": 629.07, "DIA": 475.90, "IWM": 246.10, "VOO": 627.10, "VTI": 338.00,
    "GLD": 368.10, "TLT": 90.00,
}
# fmt: on
_MAX_VOLUME_GAP_US = 60_000_000  # a fetch adds the volume of at most a minute since the one before
_HISTORIES = 16  # generated histories kept (each some 7,000 minutes at most)


@dataclass(slots=True)
class _Walk:
    """One ticker's price and the figures of its quote's session (the regular session under way, or the
    last one when none is); ``price`` is unrounded so that tiny steps still accumulate."""

    rng: random.Random
    session: Segment  # the session the figures are of
    previous_close: float  # the close of the session before it
    open: float
    price: float
    high: float
    low: float
    volume: int
    last_regular: float  # the latest price in ``session``: the next session's previous close
    volume_per_minute: float  # the ticker's average in a regular session, as its history's
    at: int  # epoch microseconds of the latest step (or the end of the history the walk started from)


@dataclass(frozen=True, slots=True)
class SessionFigures:
    """A quote's day as a real provider shows it, read off a generated history: during a regular session,
    that session so far; outside one, the last session (its figures stay until the next open)."""

    session: Segment
    previous_close: float
    open: float
    high: float
    low: float
    volume: int
    last_regular: float  # the session's latest price: the history's last price, or the session's close


def session_figures(history: SimulatedHistory, alignment: SessionAlignment, now: datetime) -> SessionFigures:
    """The quote's session figures at ``now`` according to ``history`` (generated at ``now``): those of the
    daily bar the chart shows for that session (the same regular minutes, rolled up)."""
    segment = alignment.segment_at(epoch_us(now))
    if not history.daily:
        raise ValueError(f"no daily bars in the history of {history.until.isoformat()}")
    if segment.regular:  # under way: its whole minutes so far; the day before is the last daily bar
        minutes = [bar for bar in history.minutes if bar.regular and epoch_us(bar.start) >= segment.start]
        close = history.minutes[-1].close if history.minutes else history.daily[-1].close
        if not minutes:  # its first minute is not over yet
            return SessionFigures(segment, history.daily[-1].close, close, close, close, 0, close)
        return SessionFigures(
            segment, history.daily[-1].close, minutes[0].open, max(bar.high for bar in minutes),
            min(bar.low for bar in minutes), sum(bar.volume for bar in minutes), close,
        )  # fmt: skip
    if len(history.daily) < 2:
        raise ValueError(f"no session before the last one in the history of {history.until.isoformat()}")
    last, before = history.daily[-1], history.daily[-2]
    day = alignment.segment_at(epoch_us(last.start))
    return SessionFigures(day, before.close, last.open, last.high, last.low, last.volume, last.close)


class SimulatedQuoteProvider:
    """Seeded geometric random walk per ticker; every ticker is known.

    A walk starts where the ticker's generated history (below) is at that moment, so that its first quote,
    the dashboard row and the chart agree: the price is the history's last, and the session figures (open,
    high, low, volume, previous close) are those of the history's daily bar of the quote's session, as a
    real provider shows them (``session_figures``): the regular session under way, or outside one the last
    session, whose figures stay until the next open while the price goes on moving (like an extended-hours
    last trade). The history is placed so that the session before the quote's closed at the ticker's level:
    for a ticker of ``REFERENCE_CLOSES``, that close (within a cent); for any other, a level drawn from its
    seed (log-uniform between $5 and $800, like a real listing), so an unknown symbol is plausible and always
    the same. From there every fetch is one step of the walk; in a regular session it moves the high, the
    low and the volume (the ticker's average volume per minute, shaped like its history's, for the time
    since the last fetch); the first fetch in a new session opens it. The same seed, the same calendar and
    the same fetch times give the same quotes, on any machine: each ticker's generator is seeded from a CRC
    of ``"{seed}:{ticker}"``, never from Python's salted ``hash()``. The quote poller is told not to slow
    down outside market hours (``follows_market_hours = False``): a demo that moved once a minute at night
    would look frozen.

    History (``BarHistory``, legend/adapters/quotes/simulated_history.py): a year of daily bars and the
    one-minute bars since the latest session's open, ending at the walk's current price, on the
    ``calendar``'s sessions (NYSE when none is given). Generated once per ticker and minute.
    """

    name: str = "simulated"
    follows_market_hours: bool = False
    simulated: bool = True  # connections and subscriptions say so (simulated_prices, note())

    def __init__(
        self,
        seed: int = 42,
        clock: Clock | None = None,
        volatility: float = 0.0008,
        max_tickers: int = 10_000,
        calendar: MarketCalendar | None = None,
    ) -> None:
        if volatility < 0:
            raise ValueError(f"volatility must be >= 0, got {volatility}")
        if max_tickers < 1:
            raise ValueError(f"max_tickers must be >= 1, got {max_tickers}")
        self._seed = seed
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._volatility = volatility
        self._max_tickers = max_tickers
        self._walks: OrderedDict[str, _Walk] = OrderedDict()
        self._alignment = CalendarAlignment(calendar)
        self._histories: OrderedDict[str, SimulatedHistory] = OrderedDict()  # the latest few, per ticker
        self._starting = asyncio.Lock()

    def __len__(self) -> int:
        """Tickers currently remembered (bounded by ``max_tickers``)."""
        return len(self._walks)

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        now = self._clock.now()
        alignment = await self._alignment.get()
        segment = alignment.segment_at(epoch_us(now))
        quotes = []
        for ticker in dict.fromkeys(tickers):  # one step per ticker even if asked twice
            if not ticker.strip():
                continue
            walk = await self._walk(ticker)
            quotes.append(self._step(ticker, walk, now, segment))
        return quotes

    def note(self, ticker: str) -> str:
        """What a subscriber is told about ``ticker``'s prices (the subscription reply's ``note``): that
        they are simulated, and for a symbol without a reference close, that its level is made up."""
        if ticker.upper() in REFERENCE_CLOSES:
            return f"Simulated prices: a demo walk from {ticker}'s close of 31 Oct 2025, moving at all hours"
        return f"Made-up prices: {ticker} is not a ticker the simulation knows, so its level is invented"

    async def aclose(self) -> None:
        """Nothing to release."""

    async def history_until(self, ticker: str) -> datetime | None:
        """Now: the demo's history reaches the present."""
        return self._clock.now() if ticker.strip() else None

    async def bars(self, ticker: str, interval: BarInterval, start: datetime, end: datetime) -> list[Bar]:
        """The generated history of ``ticker`` at ``interval``, starting in ``[start, end)``."""
        if not ticker.strip():
            return []
        history = await self._history(ticker)
        if interval == "1m":
            chosen = history.minutes
        elif interval == "1d":
            chosen = history.daily
        else:
            chosen = roll_up(history.minutes, interval, await self._alignment.get(), history.until)
        return within(chosen, start, end)

    async def _history(self, ticker: str) -> SimulatedHistory:
        """The ticker's history as of this minute, ending at the walk's price (the walk starts if new)."""
        now = self._clock.now()
        walk = await self._walk(ticker)
        price = _cents(walk.price)
        found = self._histories.get(ticker)
        if found is None or not 0 <= (now - found.until).total_seconds() < 60:
            return await self._generate(ticker, now, price)
        if found.minutes and found.minutes[-1].close != price:  # the walk moved on within the minute
            found = replace(found, minutes=[*found.minutes[:-1], ending_at(found.minutes[-1], price)])
            self._histories[ticker] = found
        return found

    async def _generate(self, ticker: str, now: datetime, price: float) -> SimulatedHistory:
        """The ticker's history up to ``now`` ending at ``price``, kept among the latest few."""
        calendar = await self._alignment.calendar()
        # Some 40 ms of arithmetic: in a worker thread, with an alignment of its own, off the event loop.
        own = SessionAlignment(calendar.zone, calendar.session_on)
        history = await asyncio.to_thread(generate, self._seed, ticker, own, now, price)
        self._histories[ticker] = history
        self._histories.move_to_end(ticker)
        if len(self._histories) > _HISTORIES:
            self._histories.popitem(last=False)
        return history

    async def _walk(self, ticker: str) -> _Walk:
        walk = self._walks.get(ticker)
        if walk is not None:
            self._walks.move_to_end(ticker)
            return walk
        async with self._starting:  # a fetch and a backfill asking at once start one walk, not two
            walk = self._walks.get(ticker)
            if walk is None:
                walk = await self._start(ticker)
                self._walks[ticker] = walk
                if len(self._walks) > self._max_tickers:
                    self._walks.popitem(last=False)
            return walk

    async def _start(self, ticker: str) -> _Walk:
        """A new walk, where the ticker's generated history is now: its price is the history's last, its
        session figures the history's (so the quote, the row and the chart's daily bar agree), and the
        session before closed at the ticker's level (its reference close, or one drawn from the seed)."""
        rng = random.Random(zlib.crc32(f"{self._seed}:{ticker}".encode()))
        # Log-uniform: as many tickers around $20 as around $200, like a real listing.
        drawn = math.exp(rng.uniform(math.log(_MIN_PREVIOUS_CLOSE), math.log(_MAX_PREVIOUS_CLOSE)))
        level = REFERENCE_CLOSES.get(ticker.upper(), round(drawn, 2))
        now = self._clock.now()
        alignment = await self._alignment.get()
        # The history's levels are set from its end: a first one finds where the previous close falls, the
        # second ends where that close is the level (within a cent: both are rounded).
        trial = session_figures(await self._generate(ticker, now, level), alignment, now)
        price = _cents(level * level / trial.previous_close)
        history = await self._generate(ticker, now, price)
        figures = session_figures(history, alignment, now)
        return _Walk(
            rng=rng, session=figures.session, previous_close=figures.previous_close, open=figures.open,
            price=price, high=figures.high, low=figures.low, volume=figures.volume,
            last_regular=figures.last_regular, volume_per_minute=profile(self._seed, ticker).volume / REGULAR_MINUTES,
            at=epoch_us(history.until),
        )  # fmt: skip

    def _step(self, ticker: str, walk: _Walk, now: datetime, segment: Segment) -> Quote:
        """One move of the price; the session figures move only in a regular session, and a new session
        starts them again (its open is its first price; the previous close, the last session's last)."""
        t = epoch_us(now)
        elapsed, walk.at = min(max(t - walk.at, 0), _MAX_VOLUME_GAP_US), max(walk.at, t)
        walk.price *= math.exp(walk.rng.gauss(0.0, self._volatility))
        price = _cents(walk.price)
        if segment.regular and segment.start >= walk.session.start:
            shape = u_shape((t - segment.start) / (segment.end - segment.start))
            volume = round(
                walk.volume_per_minute * shape * elapsed / MINUTE_US * walk.rng.lognormvariate(0, 0.4)
            )
            if segment.start > walk.session.start:  # a new session opens at this price
                walk.session, walk.previous_close = segment, walk.last_regular
                walk.open = walk.high = walk.low = price
                walk.volume = 0
            walk.high = max(walk.high, price)
            walk.low = min(walk.low, price)
            walk.volume += volume
            walk.last_regular = price
        change = round(price - walk.previous_close, 2)
        return Quote(
            ticker=ticker,
            price=price,
            change=change,
            change_percent=round(change / walk.previous_close * 100, 2),
            volume=walk.volume,
            high=walk.high,
            low=walk.low,
            open=walk.open,
            previous_close=walk.previous_close,
            timestamp=now.timestamp(),
        )


def _cents(value: float) -> float:
    """Round to the cent, never below one cent (a walk cannot reach zero, but rounding could)."""
    return max(round(value, 2), 0.01)
