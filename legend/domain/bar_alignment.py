"""Where a price's bars lie: the exchange day split into sessions, and bars aligned to them.

An exchange date, in the exchange's own time zone, splits into segments: ``[00:00, open)``, the regular
session ``[open, close)`` and ``[close, 24:00)``; a date without a session is one segment. An intraday bar
of length I starts at ``segment start + k * I`` and is cut at the segment's end, so hourly bars run
09:30-10:30 ... 15:30-16:00, then 16:00-17:00. A daily bar is the regular session. Midnight and the
session come from the zone and the calendar (never a fixed UTC offset), so DST changes and early closes
fall where they belong. Instants are integer microseconds since the epoch (``timefmt.epoch_us``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Final, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from legend.domain.bars import INTRADAY, BarInterval
from legend.domain.market import SessionHours
from legend.domain.timefmt import epoch_us, from_epoch_us

#: The regular session of an exchange date, None when there is none (``MarketCalendar.session_on``).
SessionLookup = Callable[[date], SessionHours | None]

#: Pre-market opens and after-hours trading ends at these exchange times (US equities: 04:00 and 20:00).
EXTENDED_HOURS: Final[tuple[time, time]] = (time(4), time(20))

#: The intraday intervals' lengths in microseconds, in ``INTERVALS`` order.
INTRADAY_US: Final[dict[BarInterval, int]] = {
    interval: length // timedelta(microseconds=1) for interval, length in INTRADAY.items()
}


class Segment(NamedTuple):
    """A stretch of an exchange day that bars never cross: ``[start, end)`` in epoch microseconds."""

    start: int
    end: int
    regular: bool


class ExchangeDay(NamedTuple):
    """One exchange date: ``[start, end)`` from midnight to midnight in the exchange's zone, its segments
    in order, and its regular session (None on a weekend or holiday)."""

    day: date
    start: int
    end: int
    segments: tuple[Segment, ...]
    session: Segment | None


def exchange_day(day: date, zone: ZoneInfo, session: SessionHours | None) -> ExchangeDay:
    """The segments of ``day``; ValueError when the session does not lie within the day."""
    start = epoch_us(datetime.combine(day, time(), zone))
    end = epoch_us(datetime.combine(day + timedelta(days=1), time(), zone))
    if session is None:
        return ExchangeDay(day, start, end, (Segment(start, end, False),), None)
    open_, close = epoch_us(session.open), epoch_us(session.close)
    if not start <= open_ < close <= end:
        raise ValueError(
            f"the session {session.open.isoformat()} to {session.close.isoformat()} does not lie within "
            f"{day.isoformat()} in {zone.key}"
        )
    regular = Segment(open_, close, True)
    pieces = (Segment(start, open_, False), regular, Segment(close, end, False))
    return ExchangeDay(day, start, end, tuple(piece for piece in pieces if piece.start < piece.end), regular)


def parse_zone(zone: str) -> ZoneInfo:
    """The IANA zone ``zone``; ValueError naming it when unknown."""
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {zone!r}") from exc


class SessionAlignment:
    """Bar boundaries of one exchange. Keeps the last ``CACHE_DAYS`` exchange days it was asked about, so
    the hot path is a range check and integer arithmetic; the calendar is asked once per new date."""

    CACHE_DAYS = 8

    def __init__(self, zone: str, session_on: SessionLookup) -> None:
        self.zone = parse_zone(zone)
        self._session_on = session_on
        self._days: dict[int, ExchangeDay] = {}
        self._last: ExchangeDay | None = None
        self._extended: dict[int, tuple[int, int]] = {}

    def day_at(self, t: int) -> ExchangeDay:
        """The exchange day holding instant ``t`` (epoch microseconds)."""
        last = self._last
        if last is not None and last.start <= t < last.end:
            return last
        day = from_epoch_us(t).astimezone(self.zone).date()
        found = self._days.get(day.toordinal())
        if found is None:
            found = exchange_day(day, self.zone, self._session_on(day))
            if len(self._days) >= self.CACHE_DAYS:
                del self._days[next(iter(self._days))]  # the one cached first
            self._days[day.toordinal()] = found
        self._last = found
        return found

    def phase_at(self, t: int) -> Literal["regular", "extended", "closed"]:
        """Where instant ``t`` lies for alert rules: in the regular session, in the extended hours around it
        (``EXTENDED_HOURS`` in exchange time, on a date with a session), or neither."""
        day = self.day_at(t)
        session = day.session
        if session is None:
            return "closed"
        if session.start <= t < session.end:
            return "regular"
        hours = self._extended.get(day.day.toordinal())
        if hours is None:
            first, last = EXTENDED_HOURS
            hours = (epoch_us(datetime.combine(day.day, first, self.zone)),
                     epoch_us(datetime.combine(day.day, last, self.zone)))  # fmt: skip
            if len(self._extended) >= self.CACHE_DAYS:
                del self._extended[next(iter(self._extended))]
            self._extended[day.day.toordinal()] = hours
        return "extended" if hours[0] <= t < hours[1] else "closed"

    def segment_at(self, t: int) -> Segment:
        """The segment holding instant ``t``."""
        for segment in self.day_at(t).segments:
            if t < segment.end:
                return segment
        raise AssertionError("an exchange day's segments cover it")  # pragma: no cover

    def span_us(self, interval: BarInterval, t: int) -> Segment | None:
        """The bar of ``interval`` holding ``t``, as ``(start, end, regular)``; None for a daily bar
        outside the regular session."""
        segment = self.segment_at(t)
        if interval == "1d":
            return segment if segment.regular else None
        step = INTRADAY_US[interval]
        start = segment.start + (t - segment.start) // step * step
        return Segment(start, min(start + step, segment.end), segment.regular)

    def span(self, interval: BarInterval, at: datetime) -> tuple[datetime, datetime, bool] | None:
        """The bar of ``interval`` holding ``at`` (timezone-aware): UTC start, end, and whether it lies in
        the regular session; None for a daily bar outside the regular session."""
        if at.tzinfo is None:
            raise ValueError(f"at must be timezone-aware, got {at.isoformat()}")
        found = self.span_us(interval, epoch_us(at))
        return (
            None if found is None else (from_epoch_us(found.start), from_epoch_us(found.end), found.regular)
        )
