"""Building OHLCV bars from prices in log order: pure, with no clock and no I/O of its own.

``add`` puts a price into its bar of every interval and returns the bars it changed; ``close_due(now)``
closes the bars whose end has passed, each exactly once. A late price still updates its bar while the
bar is open or among the few closed bars kept per series (a correction: the bar comes back closed again);
older than that it is dropped and counted. State is per ticker and interval and bounded (docs/bars.md).
"""

from __future__ import annotations

import heapq
import itertools
from datetime import UTC, datetime

from legend.domain.bar_alignment import INTRADAY_US, SessionAlignment, SessionLookup
from legend.domain.bars import INTERVALS, Bar, BarInterval
from legend.domain.timefmt import epoch_us, from_epoch_us

_INF = float("inf")
_NEVER = -(1 << 62)  # an instant before any price


class _Draft:
    """One bar being built (mutable; turned into a frozen ``Bar`` for each report)."""

    __slots__ = ("close", "end", "first", "high", "last", "last_at", "low", "open", "regular", "session_volume",
                 "start", "start_at", "volume")  # fmt: skip

    def __init__(self, start: int, end: int, regular: bool, price: float, volume: int, at: int) -> None:
        self.start, self.end, self.regular = start, end, regular
        self.start_at = from_epoch_us(start)
        self.open = self.high = self.low = self.close = price
        self.volume = volume
        self.first = self.last = at  # instants of the prices that set open and close
        self.last_at: datetime | None = None
        self.session_volume: int | None = None

    def update(self, price: float, volume: int, at: int, at_utc: datetime, session_volume: int) -> None:
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        if at >= self.last:  # equal instants: the later in the log wins
            self.close, self.last, self.last_at = price, at, at_utc
        elif at < self.first:
            self.open, self.first = price, at
        self.volume += volume
        self.session_volume = session_volume

    def bar(self, series: _Series, closed: bool) -> Bar:
        return Bar(ticker=series.ticker, interval=series.interval, start=self.start_at, open=self.open,
                   high=self.high, low=self.low, close=self.close, volume=self.volume, regular=self.regular,
                   closed=closed, last_at=self.last_at, session_volume=self.session_volume)  # fmt: skip


class _Series:
    """The bars of one ticker and interval: open ones by start, the last few closed ones in start order,
    and ``forgotten``, before which nothing is held any more (a price there is dropped)."""

    __slots__ = ("forgotten", "interval", "open", "recent", "ticker")

    def __init__(self, ticker: str, interval: BarInterval) -> None:
        self.ticker, self.interval = ticker, interval
        self.open: dict[int, _Draft] = {}
        self.recent: list[_Draft] = []
        self.forgotten = _NEVER

    def held(self, start: int) -> _Draft | None:
        for draft in self.recent:
            if draft.start == start:
                return draft
        return None

    def keep(self, draft: _Draft, limit: int) -> None:
        """Keep a bar just closed among the recent ones, forgetting the oldest beyond ``limit``."""
        recent = self.recent
        recent.append(draft)
        if len(recent) > 1 and recent[-2].start > draft.start:
            recent.sort(key=lambda kept: kept.start)
        if len(recent) > limit:
            self.forgotten = max(self.forgotten, recent.pop(0).end)


class _Ticker:
    """A ticker's series (in ``INTERVALS`` order) and its last session volume, to take increments from."""

    __slots__ = ("count_from", "series", "volume", "volume_at")

    def __init__(self, ticker: str) -> None:
        self.series = tuple(_Series(ticker, interval) for interval in INTERVALS)
        self.volume: int | None = None  # None until a first price gives the base
        self.volume_at = _NEVER  # the instant of the latest price
        self.count_from = _NEVER  # the instant of the price that started the current count

    def volume_increment(self, session_volume: int, at: int) -> int:
        """The volume a price adds: the rise of the session volume since the latest price; a drop from a
        price that is not late starts a new count (the base is then 0); never negative. A late price adds
        only a rise beyond the latest figure, and nothing from before the current count started."""
        last = self.volume
        if last is None:
            self.volume, self.volume_at = session_volume, at
            return 0
        if at >= self.volume_at:
            self.volume, self.volume_at = session_volume, at
            if session_volume >= last:
                return session_volume - last
            self.count_from = at
            return session_volume
        if session_volume > last and at >= self.count_from:
            self.volume = session_volume
            return session_volume - last
        return 0


_INTRADAY_STEPS = tuple(INTRADAY_US[interval] for interval in INTERVALS[:-1])


class BarBuilder:
    """OHLCV bars at every interval of ``INTERVALS``, aligned to the sessions of one exchange.

    ``zone`` and ``session_on`` come from the market calendar (``MarketCalendar.zone``, ``.session_on``).
    Per series (ticker and interval) it holds at most ``max_open`` open bars (normally one, two across a
    boundary before ``close_due`` runs; beyond that the oldest is closed early) and ``keep_closed`` closed
    ones for corrections. ``late_dropped`` counts bar updates dropped because the bar was no longer held;
    ``corrections`` counts closed bars changed by a late price.
    """

    def __init__(
        self, zone: str, session_on: SessionLookup, *, keep_closed: int = 3, max_open: int = 4
    ) -> None:
        if keep_closed < 0 or max_open < 1:
            raise ValueError(f"keep_closed must be >= 0 and max_open >= 1, got {keep_closed} and {max_open}")
        self.alignment = SessionAlignment(zone, session_on)
        self.keep_closed, self.max_open = keep_closed, max_open
        self._tickers: dict[str, _Ticker] = {}
        self._due: list[tuple[int, int, _Series, int]] = []  # (end, tie-break, series, start) of open bars
        self._order = itertools.count()
        self._closed_through = _NEVER  # the latest ``now`` given to close_due
        self.late_dropped = 0
        self.corrections = 0

    def add(self, ticker: str, price: float, session_volume: int, at: datetime) -> list[Bar]:
        """Put one price (``session_volume``: the ticker's cumulative volume this session) into its bars;
        returns the bars it changed: open ones with ``closed=False``, corrected or closed-early ones with
        ``closed=True``. ValueError on a non-positive price, a negative volume or a naive ``at``."""
        if not 0.0 < price < _INF:
            raise ValueError(f"price must be a positive finite number, got {price!r}")
        price = float(price)  # an int from JSON stays a float in the bar
        if session_volume < 0:
            raise ValueError(f"session_volume must be >= 0, got {session_volume!r}")
        if at.tzinfo is None:
            raise ValueError(f"at must be timezone-aware, got {at.isoformat()}")
        t = epoch_us(at)
        at_utc = at if at.tzinfo is UTC else at.astimezone(UTC)
        segment = self.alignment.segment_at(t)  # first: it may raise (outside the calendar)
        state = self._tickers.get(ticker)
        if state is None:
            state = self._tickers[ticker] = _Ticker(ticker)
        volume = state.volume_increment(session_volume, t)
        session_volume = state.volume if state.volume is not None else session_volume
        seg_start, seg_end = segment.start, segment.end
        changed: list[Bar] = []
        series = state.series
        for i, step in enumerate(_INTRADAY_STEPS):
            start = seg_start + (t - seg_start) // step * step
            draft = series[i].open.get(start)
            if draft is not None:  # the usual case, inline: its bar is open
                draft.update(price, volume, t, at_utc, session_volume)
                changed.append(draft.bar(series[i], False))
            else:
                end = start + step
                self._put(series[i], start, end if end < seg_end else seg_end, segment.regular,
                          price, volume, t, at_utc, session_volume, changed)  # fmt: skip
        if segment.regular:
            self._put(series[-1], seg_start, seg_end, True, price, volume, t, at_utc, session_volume, changed)
        return changed

    def _put(self, series: _Series, start: int, end: int, regular: bool, price: float, volume: int, t: int,
             at_utc: datetime, session_volume: int, changed: list[Bar]) -> None:  # fmt: skip
        draft = series.open.get(start)
        if draft is not None:
            draft.update(price, volume, t, at_utc, session_volume)
            changed.append(draft.bar(series, False))
            return
        draft = series.held(start)
        if draft is not None:
            draft.update(price, volume, t, at_utc, session_volume)
            self.corrections += 1
            changed.append(draft.bar(series, True))
            return
        if end <= self._closed_through or start < series.forgotten:
            self.late_dropped += 1
            return
        draft = _Draft(start, end, regular, price, volume, t)
        draft.last_at, draft.session_volume = at_utc, session_volume
        self._open(series, draft)
        changed.append(draft.bar(series, False))
        if len(series.open) > self.max_open:
            oldest = series.open.pop(min(series.open))
            series.keep(oldest, self.keep_closed)
            changed.append(oldest.bar(series, True))

    def _open(self, series: _Series, draft: _Draft) -> None:
        series.open[draft.start] = draft
        heapq.heappush(self._due, (draft.end, next(self._order), series, draft.start))

    def close_due(self, now: datetime) -> list[Bar]:
        """Close every open bar whose end is at or before ``now``; each is returned once, ``closed=True``,
        in the order of their ends. Later prices for an instant before ``now`` count as late."""
        t = epoch_us(now)
        if t > self._closed_through:
            self._closed_through = t
        due, closed = self._due, []
        while due and due[0][0] <= t:
            end, _, series, start = heapq.heappop(due)
            draft = series.open.get(start)
            if draft is None or draft.end != end:
                continue  # closed early already
            del series.open[start]
            series.keep(draft, self.keep_closed)
            closed.append(draft.bar(series, True))
        return closed

    def open_bars(self) -> list[Bar]:
        """Every open bar, by ticker and interval: what a successor restores from."""
        return [
            draft.bar(series, False)
            for state in self._tickers.values()
            for series in state.series
            for draft in sorted(series.open.values(), key=lambda draft: draft.start)
        ]

    def restore(self, bars: list[Bar]) -> None:
        """Take over from stored bars, into an empty builder: open ones go on forming, closed ones can be
        corrected. Per series, pass every stored bar from the oldest one given onwards (a late price for a
        bar before them is dropped). Call ``close_due(now)`` next: bars whose end passed meanwhile close.
        ValueError when the builder is not empty or a bar does not lie where this exchange puts it."""
        if self._tickers:
            raise ValueError("restore needs an empty builder")
        try:
            self._restore(bars)
        except ValueError:
            self._tickers.clear()  # all or nothing: the builder stays empty
            self._due.clear()
            raise

    def _restore(self, bars: list[Bar]) -> None:
        latest: dict[str, tuple[int, int]] = {}  # ticker -> (last instant, session volume) of its latest bar
        for bar in sorted(bars, key=lambda bar: (bar.closed is False, bar.start)):
            series, draft = self._restored(bar)
            if series.held(draft.start) is not None or draft.start in series.open:
                raise ValueError(f"restore: {bar.ticker} {bar.interval} {bar.start.isoformat()} given twice")
            if series.forgotten == _NEVER or draft.start < series.forgotten:
                series.forgotten = draft.start
            if bar.closed:
                series.keep(draft, self.keep_closed)
            else:
                self._open(series, draft)
            if bar.session_volume is not None and bar.last_at is not None:
                mark = (draft.last, bar.session_volume)
                if mark > latest.get(bar.ticker, (_NEVER, 0)):
                    latest[bar.ticker] = mark
        for ticker, (at, session_volume) in latest.items():
            state = self._tickers[ticker]
            state.volume, state.volume_at = session_volume, at

    def _restored(self, bar: Bar) -> tuple[_Series, _Draft]:
        if bar.start.tzinfo is None or (bar.last_at is not None and bar.last_at.tzinfo is None):
            raise ValueError(f"restore: {bar.ticker} {bar.interval} bar with a naive datetime")
        start = epoch_us(bar.start)
        span = self.alignment.span_us(bar.interval, start)
        if span is None or span.start != start or span.regular != bar.regular:
            raise ValueError(
                f"restore: {bar.ticker} {bar.interval} bar at {bar.start.isoformat()} is not a "
                f"{'regular' if bar.regular else 'extended-hours'} {bar.interval} bar of this exchange"
            )
        draft = _Draft(start, span.end, bar.regular, bar.close, bar.volume, start)
        draft.open, draft.high, draft.low = bar.open, bar.high, bar.low
        draft.last_at, draft.session_volume = bar.last_at, bar.session_volume
        if bar.last_at is not None:
            draft.last = epoch_us(bar.last_at)
        state = self._tickers.get(bar.ticker)
        if state is None:
            state = self._tickers[bar.ticker] = _Ticker(bar.ticker)
        return state.series[INTERVALS.index(bar.interval)], draft
