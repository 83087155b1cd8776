"""OHLCV bars: the intervals the service builds, and one bar of one ticker.

A bar is keyed by (ticker, interval, start). ``start`` is the bar's first instant in UTC; where it lies is
decided in exchange time (see docs/bars.md): intraday bars are aligned to the session, daily bars are one
regular session of the market calendar.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Literal

import msgspec

from legend.domain.messages import BarMessage
from legend.domain.timefmt import iso

BarInterval = Literal["1m", "5m", "15m", "1h", "1d"]

INTERVALS: Final[tuple[BarInterval, ...]] = ("1m", "5m", "15m", "1h", "1d")

#: The length of an intraday interval; ``1d`` is one session, whatever its length.
INTRADAY: Final[dict[BarInterval, timedelta]] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
}


def parse_interval(text: str) -> BarInterval:
    """``text`` as an interval; ValueError naming the accepted ones otherwise."""
    for interval in INTERVALS:
        if text == interval:
            return interval
    raise ValueError(f"interval: expected one of {', '.join(INTERVALS)}, got {text!r}")


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    """One bar: open, high, low and close prices and the volume traded within it.

    ``regular`` says whether the bar lies in the regular session (extended-hours bars are built too).
    ``closed`` is False for the bar still forming (its figures change until its end has passed).
    ``last_at`` (the instant of the price that set ``close``) and ``session_volume`` (the ticker's
    cumulative session volume as of the bar's last update) let a successor take the bar over exactly
    (``BarBuilder.restore``); without them it goes on from the bar's figures alone.
    """

    ticker: str
    interval: BarInterval
    start: datetime  # timezone-aware, UTC
    open: float
    high: float
    low: float
    close: float
    volume: int
    regular: bool
    closed: bool = False
    last_at: datetime | None = None  # timezone-aware, UTC
    session_volume: int | None = None


def bar_message(bar: Bar, stream: str) -> BarMessage:
    """The ``bar`` message of ``bar`` on its ``stream`` (``bar_stream(bar.ticker, bar.interval)``)."""
    return BarMessage(
        ticker=bar.ticker,
        interval=bar.interval,
        time=iso(bar.start),
        open=bar.open,
        high=bar.high,
        low=bar.low,
        close=bar.close,
        volume=bar.volume,
        closed=bar.closed,
        channel=stream,
    )
