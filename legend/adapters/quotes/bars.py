"""OHLCV bars from CSV files, with each bar's session figures computed once at load.

Understood layouts (header names matched case-insensitively, ignoring spaces, ``_``, ``-``, ``.`` and ``<>``):

- the time: ``Datetime``, ``Timestamp``, ``Date`` (with an optional separate ``Time`` column) or ``Time``;
  values ``2019-11-05``, ``2019-11-05 09:30[:00]``, ISO 8601 with ``T``/offset/``Z``, ``11/5/2019 9:30``
  (US month first, optional seconds and AM/PM), ``20191105``, or epoch seconds/milliseconds;
- ``Open``, ``High``, ``Low``, ``Close`` (or ``Last``); ``Volume`` (or ``Vol``) optional, 0 when absent;
  ``Adj Close`` is recognised and ignored, so that the figures stay consistent with open, high and low;
- comma, semicolon, tab or ``|`` separated; a UTF-8 byte order mark is ignored; rows whose prices are empty or
  ``null`` (Yahoo's missing days) are skipped; newest-first files are reversed.

A file where no row carries a time of day (or every row is at midnight, one per date) holds daily bars: each
bar is its own session, stamped at 16:00 in the replay time zone (the close, which is the price shown).
Otherwise the bars are intraday and a session is a calendar date in that time zone.
"""

from __future__ import annotations

import csv
import math
import re
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from legend.adapters.quotes.errors import ReplayDataError
from legend.domain.quotes import Quote

DAILY_STAMP = time(16, 0)  # a daily bar is stamped at the close
PRICE_DECIMALS = 4  # Yahoo exports carry float noise (179.100006); sub-cent history (2.193571) keeps 4 places

_TIME_NAMES = ("datetime", "timestamp", "date", "time")
_ALIASES = {
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close", "last"),
    "volume": ("volume", "vol"),
}
_MISSING = {"", "null", "nan", "n/a", "na", "-"}
_US = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?\s*([AaPp][Mm])?)?"
)
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_COMPACT_CLOCK = re.compile(r"(\d{2})(\d{2})(\d{2})?")


@dataclass(frozen=True, slots=True)
class Columns:
    """Where each figure sits in a row (indices into the CSV row)."""

    delimiter: str
    when: int
    clock: int | None  # a separate time-of-day column next to a date column
    open: int
    high: int
    low: int
    close: int
    volume: int | None


def _normalise(header: str) -> str:
    return re.sub(r"[\s_\-.<>]", "", header).lower()


def _delimiter(line: str) -> str:
    counts = {sep: line.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _columns(path: Path, header: Sequence[str], delimiter: str) -> Columns:
    names = [_normalise(h) for h in header]
    where = {name: i for i, name in reversed(list(enumerate(names)))}  # first occurrence wins

    def find(*candidates: str) -> int | None:
        return next((where[c] for c in candidates if c in where), None)

    when = find(*_TIME_NAMES)
    clock = where.get("time") if when is not None and names[when] == "date" else None
    found = {figure: find(*aliases) for figure, aliases in _ALIASES.items()}
    missing = [figure.capitalize() for figure in ("open", "high", "low", "close") if found[figure] is None]
    if when is None:
        missing.insert(0, "Date (or Datetime, Timestamp, Time)")
    if missing:
        raise ReplayDataError(
            f"{path} line 1: no {', '.join(missing)} column; the header has {', '.join(header) or 'nothing'}"
        )
    o, h, lo, c = (found[figure] for figure in ("open", "high", "low", "close"))
    assert when is not None and o is not None and h is not None and lo is not None and c is not None
    return Columns(delimiter, when, clock, o, h, lo, c, found["volume"])


def read_columns(path: Path) -> Columns:
    """Check that ``path`` exists and has an OHLC header; cheap (one line), for a clear error at start."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            line = file.readline()
    except FileNotFoundError:
        raise ReplayDataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayDataError(f"{path}: cannot read: {exc}") from None
    delimiter = _delimiter(line)
    header = next(csv.reader([line], delimiter=delimiter), [])
    return _columns(path, header, delimiter)


def _clock_of(text: str) -> time | None:
    if m := _CLOCK.fullmatch(text):
        return time(int(m[1]), int(m[2]), int(m[3] or 0))
    if m := _COMPACT_CLOCK.fullmatch(text):
        return time(int(m[1]), int(m[2]), int(m[3] or 0))
    return None


def parse_when(text: str) -> datetime | date:
    """A row's time: a ``date`` when it has no time of day, else a (naive or aware) ``datetime``."""
    text = text.strip()
    if m := _US.fullmatch(text):
        month, day, year = int(m[1]), int(m[2]), int(m[3])
        if m[4] is None:
            return date(year, month, day)
        hour = int(m[4])
        if m[8]:
            if not 1 <= hour <= 12:
                raise ValueError(f"hour {hour} with {m[8]}")
            hour = hour % 12 + (12 if m[8].lower() == "pm" else 0)
        micro = int((m[7] or "0").ljust(6, "0"))
        return datetime(year, month, day, hour, int(m[5]), int(m[6] or 0), micro)
    if (m := _COMPACT_DATE.fullmatch(text)) and 1800 <= int(m[1]) <= 2200:
        return date(int(m[1]), int(m[2]), int(m[3]))
    if re.fullmatch(r"\d{9,13}(\.\d+)?", text):
        seconds = float(text)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000.0
        return datetime.fromtimestamp(seconds, UTC)
    if len(text) == 10:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text)


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ReplayDataError(f"{path} line {line}: {column} is {text!r}, not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ReplayDataError(f"{path} line {line}: {column} is {text!r}, not a finite non-negative number")
    return value


@dataclass(slots=True)
class _Row:
    line: int
    when: datetime | date
    open: float
    high: float
    low: float
    close: float
    volume: int


def _rows(path: Path, columns: Columns) -> Iterator[_Row]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file, delimiter=columns.delimiter)
        next(reader, None)
        width = 1 + max(
            i for i in (columns.when, columns.clock, columns.open, columns.high, columns.low, columns.close,
                        columns.volume) if i is not None
        )  # fmt: skip
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < width:
                raise ReplayDataError(f"{path} line {line}: {len(row)} fields, expected at least {width}")
            prices = [row[i].strip() for i in (columns.open, columns.high, columns.low, columns.close)]
            if any(p.lower() in _MISSING for p in prices):
                continue  # Yahoo writes "null" for a day without data
            raw_when = row[columns.when].strip()
            try:
                when = parse_when(raw_when)
                if columns.clock is not None and isinstance(when, date) and not isinstance(when, datetime):
                    raw_clock = row[columns.clock].strip()
                    clock = _clock_of(raw_clock)
                    if raw_clock and clock is None:
                        raise ValueError(f"time {raw_clock!r}")
                    if clock is not None:
                        when = datetime.combine(when, clock)
            except ValueError:
                raise ReplayDataError(f"{path} line {line}: cannot read the time {raw_when!r}") from None
            o, h, lo, c = (
                _number(path, line, name, text)
                for name, text in zip(("Open", "High", "Low", "Close"), prices, strict=True)
            )
            volume = 0
            if columns.volume is not None:
                raw = row[columns.volume].strip()
                if raw.lower() not in _MISSING:
                    volume = int(_number(path, line, "Volume", raw))
            yield _Row(line, when, o, h, lo, c, volume)


def _is_daily(rows: Sequence[_Row]) -> bool:
    if all(type(r.when) is date for r in rows):
        return True
    if all(isinstance(r.when, datetime) and r.when.time() == time() for r in rows):  # midnight stamps
        return len({r.when.date() for r in rows if isinstance(r.when, datetime)}) == len(rows)
    return False


def _place(when: datetime | date, daily: bool, zone: ZoneInfo) -> tuple[float, int]:
    """Epoch seconds and the session (a date ordinal) of one bar."""
    if not isinstance(when, datetime):
        return datetime.combine(when, DAILY_STAMP, zone).timestamp(), when.toordinal()
    if daily:
        return datetime.combine(when.date(), DAILY_STAMP, zone).timestamp(), when.date().toordinal()
    if when.tzinfo is None:
        return when.replace(tzinfo=zone).timestamp(), when.date().toordinal()
    return when.timestamp(), when.astimezone(zone).date().toordinal()


class BarSeries:
    """One file's bars: for bar ``i`` the quote figures of its session so far, in compact arrays.

    ``open`` is the session's first open, ``high``/``low`` the running extremes, ``volume`` the running sum,
    ``previous_close`` the last close of the session before (the file's first open for the first session).
    ``own`` keeps each bar's own open, high, low and volume, for history (``figures``); ``step`` is the
    shortest time between two bars of one session in seconds, the file's resolution (None for daily bars or
    one bar per session).
    """

    __slots__ = ("close", "daily", "high", "low", "open", "own", "own_volume", "path", "previous_close",
                 "session", "step", "timestamp", "volume")  # fmt: skip

    def __init__(self, path: Path, daily: bool) -> None:
        self.path = path
        self.daily = daily
        self.timestamp = array("d")
        self.session = array("l")
        self.close = array("d")
        self.open = array("d")
        self.high = array("d")
        self.low = array("d")
        self.volume = array("q")
        self.previous_close = array("d")
        self.own = array("d")  # open, high, low of bar i at 3i, 3i+1, 3i+2
        self.own_volume = array("q")
        self.step: float | None = None

    def __len__(self) -> int:
        return len(self.close)

    def first_index_on_or_after(self, day: date) -> int:
        """The first bar of the first session on or after ``day``; a ReplayDataError when there is none."""
        ordinal = day.toordinal()
        for i, session in enumerate(self.session):
            if session >= ordinal:
                return i
        last = date.fromordinal(self.session[-1])
        raise ReplayDataError(
            f"{self.path}: start {day.isoformat()} is after the last bar ({last.isoformat()})"
        )

    def figures(self, i: int) -> tuple[float, float, float, float, int]:
        """Bar ``i`` itself: open, high, low, close and volume, as in the file."""
        o, h, lo = self.own[3 * i : 3 * i + 3]
        return _price(o), _price(h), _price(lo), _price(self.close[i]), self.own_volume[i]

    def session_date(self, i: int) -> date:
        return date.fromordinal(self.session[i])

    def quote(self, ticker: str, i: int) -> Quote:
        price = _price(self.close[i])
        previous_close = _price(self.previous_close[i])
        difference = price - previous_close
        return Quote(
            ticker=ticker,
            price=price,
            change=round(difference, 2),
            change_percent=round(difference / previous_close * 100, 2) if previous_close else 0.0,
            volume=self.volume[i],
            high=_price(self.high[i]),
            low=_price(self.low[i]),
            open=_price(self.open[i]),
            previous_close=previous_close,
            timestamp=self.timestamp[i],
        )


def _price(value: float) -> float:
    return round(value, PRICE_DECIMALS)


def load_bars(path: Path, zone: ZoneInfo) -> BarSeries:
    """Read and check a whole file; errors name the file and the line."""
    columns = read_columns(path)
    try:
        rows = list(_rows(path, columns))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayDataError(f"{path}: cannot read: {exc}") from None
    except csv.Error as exc:
        raise ReplayDataError(f"{path}: not valid CSV: {exc}") from None
    if not rows:
        raise ReplayDataError(f"{path}: no bars after the header")
    daily = _is_daily(rows)
    placed = [_place(r.when, daily, zone) for r in rows]
    if len(rows) > 1 and placed[0][0] > placed[-1][0]:  # newest first
        rows.reverse()
        placed.reverse()
    for (before, _), (at, _), row in zip(placed[:-1], placed[1:], rows[1:], strict=True):
        if at < before:
            raise ReplayDataError(f"{path} line {row.line}: the bars are not in time order")
    series = BarSeries(path, daily)
    session = None
    previous_close = rows[0].open  # the first session has no previous close in the file: its first open
    last_close = rows[0].open
    o = h = lo = 0.0
    volume = 0
    for row, (stamp, day) in zip(rows, placed, strict=True):
        if day != session:
            if session is not None:
                previous_close = last_close
            session = day
            o, h, lo, volume = row.open, row.high, row.low, 0
        h = max(h, row.high, row.open, row.close)  # open/close only matter in a malformed bar
        lo = min(lo, row.low, row.open, row.close)
        volume += row.volume
        last_close = row.close
        series.timestamp.append(stamp)
        series.session.append(day)
        series.close.append(row.close)
        series.open.append(o)
        series.high.append(h)
        series.low.append(lo)
        series.volume.append(volume)
        series.previous_close.append(previous_close)
        series.own.extend((row.open, max(row.high, row.open, row.close), min(row.low, row.open, row.close)))
        series.own_volume.append(row.volume)
    steps = [
        after - before
        for before, after, first, second in zip(
            series.timestamp, series.timestamp[1:], series.session, series.session[1:], strict=False
        )
        if first == second and after > before
    ]
    series.step = None if daily or not steps else min(steps)
    return series


__all__ = ["DAILY_STAMP", "BarSeries", "Columns", "load_bars", "parse_when", "read_columns"]
