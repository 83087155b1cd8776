"""What the providers' bar histories share: the exchange calendar's alignment, built once on first use, and
vendors' bars placed on it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.domain.bar_alignment import SessionAlignment
from legend.domain.bar_history import daily, place, roll_up, within
from legend.domain.bars import Bar, BarInterval
from legend.domain.timefmt import epoch_us
from legend.ports.market import MarketCalendar


class CalendarAlignment:
    """The session alignment of ``calendar``; without one, of NYSE (``XNYS``), read in a worker thread the
    first time history is asked for, so that a provider built without a calendar costs nothing at start."""

    def __init__(self, calendar: MarketCalendar | None) -> None:
        self._calendar = calendar
        self._alignment: SessionAlignment | None = None
        self._building = asyncio.Lock()

    async def get(self) -> SessionAlignment:
        """The alignment for the event loop's own use (its day cache is not shared with threads)."""
        if self._alignment is None:
            calendar = await self.calendar()
            self._alignment = SessionAlignment(calendar.zone, calendar.session_on)
        return self._alignment

    async def calendar(self) -> MarketCalendar:
        """The calendar, read first if none was given; a worker thread makes its own SessionAlignment of it."""
        if self._calendar is None:
            async with self._building:
                if self._calendar is None:
                    self._calendar = await asyncio.to_thread(ExchangeCalendarsMarketCalendar)
        return self._calendar


#: The bars a vendor is asked for, per interval: the interval's own, except hours, which are made of
#: quarter hours (a vendor's hourly bars start on the clock hour, ours at the session's open: 09:30-10:30).
SOURCE: Final[dict[BarInterval, BarInterval]] = {
    "1m": "1m",
    "5m": "5m",
    "15m": "15m",
    "1h": "15m",
    "1d": "1d",
}

#: A vendor's bar: its start and (open, high, low, close, volume).
VendorBar = tuple[datetime, tuple[float, float, float, float, int]]


def vendor_range(interval: BarInterval, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The stretch to ask a vendor for: a bar of ``interval`` starting before ``end`` may take source bars
    up to an hour later."""
    return start, end + timedelta(hours=1) if SOURCE[interval] != interval else end


def from_vendor(
    alignment: SessionAlignment,
    ticker: str,
    interval: BarInterval,
    rows: Iterable[VendorBar],
    until: datetime,
    start: datetime,
    end: datetime,
) -> list[Bar]:
    """A vendor's bars (of ``SOURCE[interval]``, oldest first) as our closed bars of ``interval`` in
    ``[start, end)``: daily ones at their session's open, the rest on our alignment (a bar that does not
    start where ours do is dropped), hours rolled up from quarter hours, and none that ends after ``until``."""
    source = SOURCE[interval]
    placed = (
        daily(alignment, ticker, at.astimezone(UTC).date(), figures)
        if source == "1d"
        else place(alignment, ticker, source, at, figures)
        for at, figures in rows
    )
    bars = [bar for bar in placed if bar is not None]
    if source != interval:
        return within(roll_up(bars, interval, alignment, until), start, end)
    cutoff = epoch_us(until)
    closed = []
    for bar in bars:
        span = alignment.span_us(interval, epoch_us(bar.start))
        if span is not None and span.end <= cutoff:
            closed.append(bar)
    return within(closed, start, end)
