"""A QuoteProvider that invents plausible, reproducible prices, for demos and tests without a data vendor."""

from __future__ import annotations

import asyncio
import math
import random
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from legend.adapters.clock.system import SystemClock
from legend.adapters.quotes.history import CalendarAlignment
from legend.adapters.quotes.simulated_history import SimulatedHistory, generate
from legend.domain.bar_alignment import SessionAlignment
from legend.domain.bar_history import roll_up, within
from legend.domain.bars import Bar, BarInterval
from legend.domain.quotes import Quote
from legend.ports.clock import Clock
from legend.ports.market import MarketCalendar

_NEW_YORK = ZoneInfo("America/New_York")
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
_OPEN_GAP = 0.005  # standard deviation of the overnight gap, as a fraction of the previous close
_VOLUME_PER_FETCH = (100, 10_000)
_HISTORIES = 16  # generated histories kept (each some 7,000 minutes at most)


@dataclass(slots=True)
class _Walk:
    """One ticker's session so far; ``price`` is unrounded so that tiny steps still accumulate."""

    rng: random.Random
    session: date
    previous_close: float
    open: float
    price: float
    high: float
    low: float
    volume: int


class SimulatedQuoteProvider:
    """Seeded geometric random walk per ticker; every ticker is known.

    A ticker of ``REFERENCE_CLOSES`` starts from that close; any other from a level drawn from its seed
    (log-uniform between $5 and $800, like a real listing), so an unknown symbol is plausible and always
    the same. The same seed and the same sequence of fetches give the same quotes, on any machine: each
    ticker's generator is seeded from a CRC of ``"{seed}:{ticker}"``, never from Python's salted ``hash()``;
    the seed moves the opening gap and every step, not a reference close. The
    session rolls when the New York date of the clock changes. Market hours are not consulted, and the
    quote poller is told not to slow down outside them either (``follows_market_hours = False``): a demo that
    moved once a minute at night would look frozen.

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

    def __len__(self) -> int:
        """Tickers currently remembered (bounded by ``max_tickers``)."""
        return len(self._walks)

    async def fetch(self, tickers: Iterable[str]) -> list[Quote]:
        now = self._clock.now()
        session = now.astimezone(_NEW_YORK).date()
        timestamp = now.timestamp()
        quotes = []
        for ticker in dict.fromkeys(tickers):  # one step per ticker even if asked twice
            if not ticker.strip():
                continue
            walk = self._walk(ticker, session)
            if walk.session != session:
                self._roll(walk, session)
            quotes.append(self._step(ticker, walk, timestamp))
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
        found = self._histories.get(ticker)
        if found is not None and 0 <= (now - found.until).total_seconds() < 60:
            return found
        session = now.astimezone(_NEW_YORK).date()
        walk = self._walk(ticker, session)
        if walk.session != session:
            self._roll(walk, session)
        calendar = await self._alignment.calendar()
        # Some 40 ms of arithmetic: in a worker thread, with an alignment of its own, off the event loop.
        own = SessionAlignment(calendar.zone, calendar.session_on)
        history = await asyncio.to_thread(generate, self._seed, ticker, own, now, _cents(walk.price))
        self._histories[ticker] = history
        self._histories.move_to_end(ticker)
        if len(self._histories) > _HISTORIES:
            self._histories.popitem(last=False)
        return history

    def _walk(self, ticker: str, session: date) -> _Walk:
        walk = self._walks.get(ticker)
        if walk is not None:
            self._walks.move_to_end(ticker)
            return walk
        rng = random.Random(zlib.crc32(f"{self._seed}:{ticker}".encode()))
        # Log-uniform: as many tickers around $20 as around $200, like a real listing.
        drawn = math.exp(rng.uniform(math.log(_MIN_PREVIOUS_CLOSE), math.log(_MAX_PREVIOUS_CLOSE)))
        previous_close = REFERENCE_CLOSES.get(ticker.upper(), round(drawn, 2))
        walk = _Walk(rng, session, previous_close, 0.0, 0.0, 0.0, 0.0, 0)
        self._open_session(walk, session)
        self._walks[ticker] = walk
        if len(self._walks) > self._max_tickers:
            self._walks.popitem(last=False)
        return walk

    def _roll(self, walk: _Walk, session: date) -> None:
        walk.previous_close = _cents(walk.price)
        self._open_session(walk, session)

    def _open_session(self, walk: _Walk, session: date) -> None:
        walk.session = session
        walk.open = _cents(walk.previous_close * math.exp(walk.rng.gauss(0.0, _OPEN_GAP)))
        walk.price = walk.high = walk.low = walk.open
        walk.volume = 0

    def _step(self, ticker: str, walk: _Walk, timestamp: float) -> Quote:
        walk.price *= math.exp(walk.rng.gauss(0.0, self._volatility))
        price = _cents(walk.price)
        walk.high = max(walk.high, price)
        walk.low = min(walk.low, price)
        walk.volume += walk.rng.randint(*_VOLUME_PER_FETCH)
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
            timestamp=timestamp,
        )


def _cents(value: float) -> float:
    """Round to the cent, never below one cent (a walk cannot reach zero, but rounding could)."""
    return max(round(value, 2), 0.01)
