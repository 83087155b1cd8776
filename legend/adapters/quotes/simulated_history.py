"""The simulated demo's past: a seeded, realistic history that ends exactly at the live walk's price.

A year of daily bars (one per session of the calendar) and one-minute bars from the open of the latest
session that has closed to now (the current session too, when one is under way), nights and weekends included (the demo moves at any hour). Each exchange date draws from its own
generator, seeded from a CRC of ``"{seed}:{ticker}:{date}"``, so the shape of a day does not change as
time goes on; the levels are then set from the end, so that the last minute closes at the live price and
the next live price continues it. Per ticker, a volatility (18 to 50 % a year) and an average daily
volume (1 to 60 million shares) are drawn once. Within a session, volatility and volume follow the
U shape of a stock's day (busiest at the open and the close); outside it both are a small fraction.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from legend.domain.bar_alignment import Segment, SessionAlignment
from legend.domain.bar_history import place, roll_up, session_of
from legend.domain.bars import Bar
from legend.domain.timefmt import epoch_us, from_epoch_us

MINUTE_US = 60_000_000
REGULAR_MINUTES = 390  # a normal session, over which the daily variance spreads
YEAR = timedelta(days=365)
_EXTENDED_SHARE = 0.002  # of the average regular minute's volume, per minute outside the session
_EXTENDED_VOLATILITY = 0.3  # of a regular minute's volatility
_GAP = 0.35  # the overnight gap's deviation, as a fraction of the daily volatility


@dataclass(frozen=True, slots=True)
class Profile:
    """One ticker's character: yearly volatility and average daily volume."""

    volatility: float
    volume: float

    @property
    def daily(self) -> float:
        return self.volatility / math.sqrt(252)


@dataclass(frozen=True, slots=True)
class SimulatedHistory:
    """One ticker's generated past as of ``until``: its daily and one-minute bars, oldest first."""

    until: datetime
    daily: list[Bar]
    minutes: list[Bar]


def _rng(seed: int, ticker: str, what: str) -> random.Random:
    return random.Random(zlib.crc32(f"{seed}:{ticker}:{what}".encode()))


def profile(seed: int, ticker: str) -> Profile:
    rng = _rng(seed, ticker, "profile")
    return Profile(
        volatility=rng.uniform(0.18, 0.5), volume=math.exp(rng.uniform(math.log(1e6), math.log(6e7)))
    )


def u_shape(fraction: float) -> float:
    """Activity at ``fraction`` (0 to 1) of the session relative to its average: about 2.4 at the open,
    1.9 at the close, 0.6 at midday."""
    return (
        0.6
        + 5.4 * (fraction - 0.45) ** 2
        + 1.4 * math.exp(-fraction * 30)
        + 0.9 * math.exp((fraction - 1) * 40)
    )


def _cents(value: float) -> float:
    return max(round(value, 2), 0.01)


def _latest_session(alignment: SessionAlignment, until: int) -> Segment:
    """The last regular session that closed at or before ``until`` (epoch microseconds): the minutes start
    at its open, so a chart has at least one whole session even in the morning."""
    day = from_epoch_us(until).astimezone(alignment.zone).date()
    for back in range(40):
        session = session_of(alignment, day - timedelta(days=back))
        if session is not None and session.end <= until:
            return session
    raise ValueError(f"no session in the 40 days before {from_epoch_us(until).isoformat()}")


def _minute_steps(
    seed: int, ticker: str, alignment: SessionAlignment, character: Profile, start: int, count: int
) -> list[tuple[float, float, float, int]]:
    """Per minute from ``start``: log return, upper and lower wick (log), volume."""
    per_minute = character.daily / math.sqrt(REGULAR_MINUTES)
    average_volume = character.volume / REGULAR_MINUTES
    steps = []
    rng: random.Random | None = None
    day: date | None = None
    for k in range(count):
        t = start + k * MINUTE_US
        segment = alignment.segment_at(t)
        today = alignment.day_at(t).day
        if today != day:
            day, rng = today, _rng(seed, ticker, f"{today.isoformat()}:minutes")
        assert rng is not None
        if segment.regular:
            shape = u_shape((t - segment.start) / (segment.end - segment.start))
            sigma = per_minute * math.sqrt(shape)
            volume = average_volume * shape * rng.lognormvariate(0.0, 0.4)
        else:
            sigma = per_minute * _EXTENDED_VOLATILITY
            volume = average_volume * _EXTENDED_SHARE * rng.lognormvariate(0.0, 0.8)
        steps.append(
            (
                rng.gauss(0.0, sigma),
                abs(rng.gauss(0.0, sigma * 0.6)),
                abs(rng.gauss(0.0, sigma * 0.6)),
                round(volume),
            )
        )
    return steps


def generate(
    seed: int, ticker: str, alignment: SessionAlignment, until: datetime, price: float
) -> SimulatedHistory:
    """The history of ``ticker`` up to ``until``, whose last one-minute bar closes at ``price``."""
    end = epoch_us(until) // MINUTE_US * MINUTE_US  # the last whole minute
    character = profile(seed, ticker)
    latest = _latest_session(alignment, end)
    count = (end - latest.start) // MINUTE_US
    steps = _minute_steps(seed, ticker, alignment, character, latest.start, count)
    # Levels from the end back: the close of minute k is the close of minute k+1 less its return.
    level = math.log(price)
    closes = [0.0] * count
    for k in range(count - 1, -1, -1):
        closes[k] = level
        level -= steps[k][0]
    session_open = math.exp(level)
    minutes = []
    previous = session_open
    for k, (_, up, down, volume) in enumerate(steps):
        close = math.exp(closes[k])
        bar = place(
            alignment,
            ticker,
            "1m",
            from_epoch_us(latest.start + k * MINUTE_US),
            (
                _cents(previous),
                _cents(max(previous, close) * math.exp(up)),
                _cents(min(previous, close) * math.exp(-down)),
                _cents(close),
                volume,
            ),
        )
        assert bar is not None  # minutes from a session's open lie on the 1m alignment
        minutes.append(bar)
        previous = close
    if minutes:
        minutes[-1] = ending_at(minutes[-1], price)
    daily = _daily(seed, ticker, alignment, character, latest, session_open)
    daily.extend(roll_up(minutes, "1d", alignment, from_epoch_us(end)))
    return SimulatedHistory(from_epoch_us(end), daily, minutes)


def ending_at(bar: Bar, price: float) -> Bar:
    """``bar`` closing at ``price`` exactly (the live walk's price, already in cents)."""
    return Bar(
        ticker=bar.ticker, interval=bar.interval, start=bar.start, open=bar.open, high=max(bar.high, price),
        low=min(bar.low, price), close=price, volume=bar.volume, regular=bar.regular, closed=True,
    )  # fmt: skip


def _daily(
    seed: int, ticker: str, alignment: SessionAlignment, character: Profile, latest: Segment, next_open: float
) -> list[Bar]:
    """A year of daily bars before the ``latest`` session, walked back from its open ``next_open``."""
    latest_day = from_epoch_us(latest.start).astimezone(alignment.zone).date()
    days = []
    day = latest_day - timedelta(days=1)
    while day > latest_day - YEAR:
        session = session_of(alignment, day)
        if session is not None:
            days.append((day, session))
        day -= timedelta(days=1)
    bars = []
    sigma = character.daily
    for day, session in days:  # newest first
        rng = _rng(seed, ticker, f"{day.isoformat()}:daily")
        gap = rng.gauss(0.0, sigma * _GAP)
        close = next_open / math.exp(gap)
        open_ = close / math.exp(rng.gauss(0.0, sigma))
        high = max(open_, close) * math.exp(abs(rng.gauss(0.0, sigma * 0.5)))
        low = min(open_, close) * math.exp(-abs(rng.gauss(0.0, sigma * 0.5)))
        short = (session.end - session.start) / (REGULAR_MINUTES * MINUTE_US)  # an early close trades less
        volume = round(character.volume * short * rng.lognormvariate(0.0, 0.35))
        bar = place(
            alignment, ticker, "1d", from_epoch_us(session.start),
            (_cents(open_), _cents(high), _cents(low), _cents(close), volume),
        )  # fmt: skip
        if bar is not None:
            bars.append(bar)
        next_open = open_
    bars.reverse()
    return bars
