"""MarketCalendar on ``exchange_calendars``: holidays, early closes and DST from a maintained source.

The library's schedule is read once into plain sorted integer lists, so ``state_at`` is a bisect with no
pandas on the hot path (it runs every few seconds).
"""

from __future__ import annotations

import warnings
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from typing import Any

from legend.domain.market import MarketState
from legend.ports.market import MarketCalendarError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DEFAULT_START = "2000-01-01"


def _to_us(at: datetime) -> int:
    """Exact microseconds since the epoch (floats would lose the boundary instant)."""
    return (at - _EPOCH) // _MICROSECOND


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class ExchangeCalendarsMarketCalendar:
    """Regular sessions of one exchange (default NYSE, ``XNYS``), open inclusive and close exclusive.

    Covers ``start``..``end`` (default 2000-01-01 to a year from today); instants outside raise
    MarketCalendarError. A lunch break, on exchanges that have one, counts as closed.
    """

    def __init__(self, code: str = "XNYS", start: str | None = None, end: str | None = None) -> None:
        # Imported here: exchange_calendars pulls in pandas (~0.3 s), which only this adapter needs.
        import exchange_calendars as xcals

        if end is None:
            end = (datetime.now(UTC).date() + timedelta(days=366)).isoformat()
        try:
            with warnings.catch_warnings():
                # The library trips pandas deprecation warnings on every build; they are not ours to fix.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                calendar = xcals.get_calendar(code, start=start or _DEFAULT_START, end=end)
                starts, ends, early = _intervals(calendar)
        except xcals.errors.InvalidCalendarName as exc:
            raise MarketCalendarError(f"unknown exchange calendar {code!r}") from exc
        except ValueError as exc:
            raise MarketCalendarError(f"cannot build the {code} calendar: {exc}") from exc
        if not starts:
            raise MarketCalendarError(f"the {code} calendar has no session between {start} and {end}")
        self.name = code
        self._starts = starts
        self._ends = ends
        self._early = early

    @property
    def coverage(self) -> tuple[datetime, datetime]:
        """The half-open UTC range ``[first open, last close)`` in which ``state_at`` answers."""
        return _from_us(self._starts[0]), _from_us(self._ends[-1])

    def state_at(self, at: datetime) -> MarketState:
        if at.tzinfo is None or at.utcoffset() is None:
            raise MarketCalendarError(f"state_at needs a timezone-aware datetime, got naive {at.isoformat()}")
        t = _to_us(at)
        if not self._starts[0] <= t < self._ends[-1]:
            first, last = self.coverage
            raise MarketCalendarError(
                f"{at.isoformat()} is outside the {self.name} calendar, which covers "
                f"{first.isoformat()} to {last.isoformat()}"
            )
        utc_at = at.astimezone(UTC)
        i = bisect_right(self._starts, t) - 1  # the last interval opened at or before t
        if i >= 0 and t < self._ends[i]:
            return MarketState(
                at=utc_at,
                is_open=True,
                next_open=None,
                next_close=_from_us(self._ends[i]),
                early_close=self._early[i],
            )
        # Closed, and t < the last close, so a following interval exists.
        return MarketState(at=utc_at, is_open=False, next_open=_from_us(self._starts[i + 1]), next_close=None)


def _intervals(calendar: Any) -> tuple[list[int], list[int], list[bool]]:
    """Open intervals in UTC microseconds, split at lunch breaks, each flagged if its session closes early."""

    def column(series: Any) -> list[int | None]:
        values = series.dt.tz_convert(None).to_numpy().astype("datetime64[us]")
        missing = values != values  # NaT, where a session has no lunch break
        return [
            None if gap else v
            for v, gap in zip(values.astype("int64").tolist(), missing.tolist(), strict=True)
        ]

    opens, closes = column(calendar.opens), column(calendar.closes)
    break_starts, break_ends = column(calendar.break_starts), column(calendar.break_ends)
    early_sessions: list[bool] = calendar.sessions.isin(calendar.early_closes).tolist()
    starts: list[int] = []
    ends: list[int] = []
    early: list[bool] = []
    for open_, close, b_start, b_end, is_early in zip(
        opens, closes, break_starts, break_ends, early_sessions, strict=True
    ):
        if open_ is None or close is None:
            continue
        pieces = [(open_, close)] if b_start is None or b_end is None else [(open_, b_start), (b_end, close)]
        for piece_start, piece_end in pieces:
            starts.append(piece_start)
            ends.append(piece_end)
            early.append(bool(is_early))
    return starts, ends, early
