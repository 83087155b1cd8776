"""MarketCalendar on ``exchange_calendars``: holidays, early closes and DST from a maintained source.

The library's schedule is read once into plain sorted lists, so ``state_at`` and ``session_on`` are a
bisect with no pandas on the hot path (it runs every few seconds); it is read again, in a thread, when the server's
clock nears the end of what was read. With a cache directory (``market.calendar_cache``) those lists are kept in a
JSON file per calendar, range and library version: a start that finds one imports neither the library nor pandas
(about 0.6 s of CPU a process, paid by every worker and every restart otherwise).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import warnings
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

from legend.domain.market import MarketState, SessionHours
from legend.domain.timefmt import epoch_us, from_epoch_us
from legend.ports.market import MarketCalendarError

_DEFAULT_START = "2000-01-01"

log = logging.getLogger("legend.market")


class _Schedule(NamedTuple):
    """One build of the calendar: open intervals in UTC microseconds, and which close early; and per
    session its exchange date (``date.toordinal()``), open and close."""

    starts: list[int]
    ends: list[int]
    early: list[bool]
    days: list[int]
    opens: list[int]
    closes: list[int]
    closes_early: list[bool]
    zone: str


class ExchangeCalendarsMarketCalendar:
    """Regular sessions of one exchange (default NYSE, ``XNYS``), open inclusive and close exclusive.

    Covers ``start``..``end``; instants outside raise MarketCalendarError. A lunch break, on exchanges that
    have one, counts as closed. Without ``end`` the coverage follows ``now`` (the server's clock): it
    reaches ``HORIZON`` ahead, and is rebuilt further in a thread when ``now`` comes within ``MARGIN`` of
    its end, so a server that runs for years keeps its market hours; only a clock that jumped past the end
    waits for the rebuild (once, 0.1-1 s). A given ``end`` is a fixed range.
    """

    HORIZON = timedelta(days=366)
    MARGIN = timedelta(days=30)
    RETRY_SECONDS = 60.0  # after a rebuild failed, before the next attempt

    def __init__(
        self,
        code: str = "XNYS",
        start: str | None = None,
        end: str | None = None,
        now: Callable[[], datetime] | None = None,
        cache_dir: str | None = None,
    ) -> None:
        self.name = code
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._start = start or _DEFAULT_START
        self._now = now or (lambda: datetime.now(UTC))
        self._follows_now = end is None
        self._schedule = self._build(end or self._end_for(self._now()))
        self.zone = self._schedule.zone
        self._rebuilding = threading.Lock()  # held while a rebuild runs (one at a time)
        self._failed_at = -self.RETRY_SECONDS

    def _end_for(self, now: datetime) -> str:
        return (now.astimezone(UTC).date() + self.HORIZON).isoformat()

    def _build(self, end: str) -> _Schedule:
        cached = self._cache_file(end)
        if cached is not None:
            schedule = _load(cached)
            if schedule is not None:
                return schedule
        schedule = self._read_library(end)
        if cached is not None:
            _store(cached, schedule)
        return schedule

    def _cache_file(self, end: str) -> Path | None:
        """Where the schedule of this calendar, range and ``exchange_calendars`` release is kept, if anywhere: a
        new release (new holidays) or another day's end is another file."""
        if self._cache_dir is None:
            return None
        code = "".join(c if c.isalnum() else "_" for c in self.name)  # "24/7" names a file too
        return self._cache_dir / f"{code}-{self._start}-{end}-{version('exchange_calendars')}.json"

    def _read_library(self, end: str) -> _Schedule:
        # Imported here: exchange_calendars pulls in pandas (~0.3 s), which only this adapter needs.
        import exchange_calendars as xcals

        code, start = self.name, self._start
        try:
            with warnings.catch_warnings():
                # The library trips pandas deprecation warnings on every build; they are not ours to fix.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                calendar = xcals.get_calendar(code, start=start, end=end)
                schedule = _schedule(calendar)
        except xcals.errors.InvalidCalendarName as exc:
            raise MarketCalendarError(f"unknown exchange calendar {code!r}") from exc
        except ValueError as exc:
            raise MarketCalendarError(f"cannot build the {code} calendar: {exc}") from exc
        if not schedule.starts:
            raise MarketCalendarError(f"the {code} calendar has no session between {start} and {end}")
        return schedule

    @property
    def coverage(self) -> tuple[datetime, datetime]:
        """The half-open UTC range ``[first open, last close)`` in which ``state_at`` answers."""
        schedule = self._schedule
        return from_epoch_us(schedule.starts[0]), from_epoch_us(schedule.ends[-1])

    def _extend(self) -> _Schedule:
        """The schedule, rebuilt to reach ``HORIZON`` past ``now`` when ``now`` is near or past its end:
        in a thread when near (the loop goes on with the current one), here when past."""
        schedule = self._schedule
        if not self._follows_now:
            return schedule
        now = self._now()
        if (
            epoch_us(now + self.MARGIN) < schedule.ends[-1]
            or time.monotonic() - self._failed_at < self.RETRY_SECONDS
        ):
            return schedule
        if epoch_us(now) < schedule.ends[-1]:
            if self._rebuilding.acquire(blocking=False):
                threading.Thread(
                    target=self._rebuild, args=(now, True), name=f"calendar-{self.name}", daemon=True
                ).start()
            return schedule
        with self._rebuilding:  # a rebuild in a thread may be under way: wait for it, then check again
            if epoch_us(now) >= self._schedule.ends[-1]:
                self._rebuild(now, False)
        return self._schedule

    def _rebuild(self, now: datetime, release: bool) -> None:
        end = self._end_for(now)
        try:
            self._schedule = self._build(end)  # one assignment: readers see the old or the new one
            log.info("%s calendar extended to %s", self.name, end)
        except MarketCalendarError as exc:
            self._failed_at = time.monotonic()
            log.error("%s calendar could not be extended to %s: %s", self.name, end, exc)
        finally:
            if release:
                self._rebuilding.release()

    def state_at(self, at: datetime) -> MarketState:
        if at.tzinfo is None or at.utcoffset() is None:
            raise MarketCalendarError(f"state_at needs a timezone-aware datetime, got naive {at.isoformat()}")
        t = epoch_us(at)
        schedule = self._extend()
        starts, ends = schedule.starts, schedule.ends
        if not starts[0] <= t < ends[-1]:
            first, last = from_epoch_us(starts[0]), from_epoch_us(ends[-1])
            raise MarketCalendarError(
                f"{at.isoformat()} is outside the {self.name} calendar, which covers "
                f"{first.isoformat()} to {last.isoformat()}"
            )
        utc_at = at.astimezone(UTC)
        i = bisect_right(starts, t) - 1  # the last interval opened at or before t
        if i >= 0 and t < ends[i]:
            return MarketState(
                at=utc_at,
                is_open=True,
                next_open=None,
                next_close=from_epoch_us(ends[i]),
                early_close=schedule.early[i],
            )
        # Closed, and t < the last close, so a following interval exists.
        return MarketState(at=utc_at, is_open=False, next_open=from_epoch_us(starts[i + 1]), next_close=None)

    def session_on(self, day: date) -> SessionHours | None:
        if type(day) is not date:  # a datetime is a date too, and would be read as its date silently
            raise MarketCalendarError(f"session_on needs a date, got {day!r}")
        schedule = self._extend()
        days, ordinal = schedule.days, day.toordinal()
        if not days[0] <= ordinal <= days[-1]:
            raise MarketCalendarError(
                f"{day.isoformat()} is outside the {self.name} calendar, which covers sessions from "
                f"{date.fromordinal(days[0]).isoformat()} to {date.fromordinal(days[-1]).isoformat()}"
            )
        i = bisect_right(days, ordinal) - 1
        if days[i] != ordinal:
            return None
        return SessionHours(
            day=day,
            open=from_epoch_us(schedule.opens[i]),
            close=from_epoch_us(schedule.closes[i]),
            early_close=schedule.closes_early[i],
        )


def _load(path: Path) -> _Schedule | None:
    """The cached schedule, or None when there is none or it cannot be read (then it is read from the library)."""
    try:
        schedule = _Schedule(*json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("market calendar cache %s not used: %s", path, exc)
        return None
    return schedule if schedule.starts else None


def _store(path: Path, schedule: _Schedule) -> None:
    """Write the schedule whole (a temporary file renamed: a reader sees the old file or the new one), and remove
    this calendar's files of other ranges or releases. A cache that cannot be written only costs the next start
    its time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".calendar-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(list(schedule), out, separators=(",", ":"))
        os.replace(temporary, path)
        code = path.name.split("-", 1)[0]
        for old in path.parent.glob(f"{code}-*.json"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("market calendar cache %s not written: %s", path, exc)


def _schedule(calendar: Any) -> _Schedule:
    """Open intervals in UTC microseconds, split at lunch breaks, each flagged if its session closes early;
    and the sessions themselves, by exchange date."""

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
    days: list[int] = []
    session_opens: list[int] = []
    session_closes: list[int] = []
    closes_early: list[bool] = []
    session_days: list[date] = [stamp.date() for stamp in calendar.sessions]
    for day, open_, close, b_start, b_end, is_early in zip(
        session_days, opens, closes, break_starts, break_ends, early_sessions, strict=True
    ):
        if open_ is None or close is None:
            continue
        days.append(day.toordinal())
        session_opens.append(open_)
        session_closes.append(close)
        closes_early.append(bool(is_early))
        pieces = [(open_, close)] if b_start is None or b_end is None else [(open_, b_start), (b_end, close)]
        for piece_start, piece_end in pieces:
            starts.append(piece_start)
            ends.append(piece_end)
            early.append(bool(is_early))
    return _Schedule(starts, ends, early, days, session_opens, session_closes, closes_early, str(calendar.tz))
