"""Bars from a provider's history: vendor or file bars placed on the session alignment, finer bars rolled up
into coarser ones, and the stretch of history a backfill has covered.

History is closed bars only: a bar whose end has not passed by the provider's ``until`` instant is still
forming, so the live bar builder owns it. Rolling up follows ``legend.domain.bar_alignment`` exactly as the
builder does: an hourly bar is 09:30-10:30 whatever the vendor's own hours are, a daily bar is one regular
session and takes only the bars inside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from typing import NamedTuple

from legend.domain.bar_alignment import Segment, SessionAlignment
from legend.domain.bars import Bar, BarInterval
from legend.domain.timefmt import epoch_us, from_epoch_us


class Coverage(NamedTuple):
    """The stretch ``[start, end)`` of one ticker's bars at one interval that a backfill has fetched."""

    start: datetime
    end: datetime


def session_of(alignment: SessionAlignment, day: date) -> Segment | None:
    """The regular session of exchange date ``day`` (None on a weekend or holiday)."""
    noon = datetime.combine(day, time(12), alignment.zone)
    return alignment.day_at(epoch_us(noon)).session


def place(
    alignment: SessionAlignment,
    ticker: str,
    interval: BarInterval,
    start: datetime,
    figures: tuple[float, float, float, float, int],
) -> Bar | None:
    """A provider's intraday bar starting at ``start`` (open, high, low, close, volume) as a closed Bar on
    our alignment; None when ``start`` is not where a bar of ``interval`` starts (another alignment)."""
    span = alignment.span_us(interval, epoch_us(start))
    if span is None or span.start != epoch_us(start):
        return None
    open_, high, low, close, volume = figures
    return Bar(
        ticker=ticker,
        interval=interval,
        start=from_epoch_us(span.start),
        open=open_,
        high=max(high, open_, close),
        low=min(low, open_, close),
        close=close,
        volume=volume,
        regular=span.regular,
        closed=True,
    )


def daily(
    alignment: SessionAlignment, ticker: str, day: date, figures: tuple[float, float, float, float, int]
) -> Bar | None:
    """A provider's daily bar of exchange date ``day``, started at the session's open; None when the
    calendar has no session that day."""
    session = session_of(alignment, day)
    if session is None:
        return None
    return place(alignment, ticker, "1d", from_epoch_us(session.start), figures)


def roll_up(
    source: Iterable[Bar], interval: BarInterval, alignment: SessionAlignment, until: datetime
) -> list[Bar]:
    """Bars of ``interval`` made of ``source`` (finer bars, oldest first, none crossing a bar of
    ``interval``), those that end by ``until``. A daily bar takes only regular-session bars."""
    cutoff = epoch_us(until)
    result: list[Bar] = []
    current: Segment | None = None
    figures: list[float] = []
    volume = 0
    ticker = ""

    def finish() -> None:
        if current is not None and current.end <= cutoff:
            result.append(
                Bar(
                    ticker=ticker,
                    interval=interval,
                    start=from_epoch_us(current.start),
                    open=figures[0],
                    high=figures[1],
                    low=figures[2],
                    close=figures[3],
                    volume=volume,
                    regular=current.regular,
                    closed=True,
                )
            )

    for bar in source:
        span = alignment.span_us(interval, epoch_us(bar.start))
        if span is None:
            continue  # outside the regular session: not part of a daily bar
        if current is None or span.start != current.start:
            finish()
            current, ticker = span, bar.ticker
            figures = [bar.open, bar.high, bar.low, bar.close]
            volume = bar.volume
            continue
        figures[1] = max(figures[1], bar.high)
        figures[2] = min(figures[2], bar.low)
        figures[3] = bar.close
        volume += bar.volume
    finish()
    return result


def within(bars: Iterable[Bar], start: datetime, end: datetime) -> list[Bar]:
    """The bars that start in ``[start, end)``."""
    return [bar for bar in bars if start <= bar.start < end]
