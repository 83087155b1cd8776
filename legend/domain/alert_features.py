"""What alert rules compare besides a price's own figures: the highest and lowest price of a moving window,
and a ticker's recent bar closes and volumes. Pure and deterministic: fed the same observations in the same
order, it holds the same figures, which is what lets a successor rebuild it from the price log and the
stored bars (``AlertEvaluation.take_over``) and lets a preview run the live code on history.

A window keeps only the prices that can still be its lowest or highest (a monotonic queue each): a price
lies in the window of length W at instant t when it came at or after t - W. A series keeps the last
``need`` closes and volumes of one ticker and interval; fewer than a rule's period gives no value yet
(``nan``: the rule waits, its side unchanged).
"""

from __future__ import annotations

import math
from collections import deque

from legend.domain.alert_rules import Metric

NAN = math.nan

#: Where an observation comes from: "tick" (a price) or the interval of the bar that closed.
Source = str


class Window:
    """The lowest and highest value of the last ``seconds``: monotonic queues of (instant, value)."""

    __slots__ = ("highs", "last", "lows", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last = -math.inf  # the latest instant taken
        self.lows: deque[tuple[float, float]] = deque()  # values rising from the front
        self.highs: deque[tuple[float, float]] = deque()  # values falling from the front

    def add(self, t: float, value: float) -> None:
        """Take ``value`` at instant ``t`` (epoch seconds; never before the last one added) and drop what
        left the window."""
        lows, highs = self.lows, self.highs
        self.last = t
        while lows and lows[-1][1] >= value:
            lows.pop()
        lows.append((t, value))
        while highs and highs[-1][1] <= value:
            highs.pop()
        highs.append((t, value))
        start = t - self.seconds
        while lows[0][0] < start:
            lows.popleft()
        while highs[0][0] < start:
            highs.popleft()

    def seed(self, t: float, low: float, high: float) -> None:
        """Take a stretch of the past known only by its extremes (a stored bar), as if both came at ``t``."""
        self.add(t, low)
        self.add(t, high)

    @property
    def low(self) -> float:
        return self.lows[0][1] if self.lows else NAN

    @property
    def high(self) -> float:
        return self.highs[0][1] if self.highs else NAN


class Series:
    """The last ``need`` closes and volumes of one ticker's bars of one interval, oldest first, with their
    starts (epoch seconds), so that a bar given twice counts once and older ones can be put in front."""

    __slots__ = ("closes", "starts", "volumes")

    def __init__(self, need: int) -> None:
        self.closes: deque[float] = deque(maxlen=need)
        self.volumes: deque[float] = deque(maxlen=need)
        self.starts: deque[float] = deque(maxlen=need)

    @property
    def last(self) -> float:
        return self.starts[-1] if self.starts else -math.inf

    def add(self, start: float, close: float, volume: float) -> bool:
        """Append one closed bar; False (and nothing changes) when it is not newer than the last."""
        if start <= self.last:
            return False
        self.starts.append(start)
        self.closes.append(close)
        self.volumes.append(volume)
        return True

    def prepend(self, bars: list[tuple[float, float, float]]) -> int:
        """Put closed bars (start, close, volume; oldest first) from before the first one held in front,
        as far as there is room; the number taken."""
        first = self.starts[0] if self.starts else math.inf
        room = (self.closes.maxlen or 0) - len(self.closes)
        older = [bar for bar in bars if bar[0] < first][-room:] if room > 0 else []
        for start, close, volume in reversed(older):
            self.starts.appendleft(start)
            self.closes.appendleft(close)
            self.volumes.appendleft(volume)
        return len(older)

    def grow(self, need: int) -> None:
        if need > (self.closes.maxlen or 0):
            self.closes = deque(self.closes, maxlen=need)
            self.volumes = deque(self.volumes, maxlen=need)
            self.starts = deque(self.starts, maxlen=need)

    def sma_gap(self, period: int) -> float:
        """The newest close minus the mean of the last ``period`` closes (nan while fewer are known)."""
        closes = self.closes
        if len(closes) < period:
            return NAN
        total = 0.0
        for index in range(len(closes) - period, len(closes)):
            total += closes[index]
        return closes[-1] - total / period

    def volume_ratio(self, period: int) -> float:
        """The newest bar's volume over the mean volume of the ``period`` bars before it (nan while fewer
        are known, or when they traded nothing)."""
        volumes = self.volumes
        if len(volumes) < period + 1:
            return NAN
        total = 0.0
        for index in range(len(volumes) - 1 - period, len(volumes) - 1):
            total += volumes[index]
        return volumes[-1] / (total / period) if total > 0 else NAN


class AlertFeatures:
    """The windows and series the armed rules need, per ticker; the rule index says which
    (``track_window``, ``track_series``) and asks for values (``value``)."""

    def __init__(self) -> None:
        # (ticker, source, seconds) -> window, and the number of rule ladders using it
        self.windows: dict[tuple[str, Source, int], Window] = {}
        self._window_users: dict[tuple[str, Source, int], int] = {}
        self._ticker_windows: dict[tuple[str, Source], list[Window]] = {}
        self.series: dict[tuple[str, str], Series] = {}  # (ticker, interval) -> series
        # what was added since ``take_fresh``: to fill from the past (the log, stored bars)
        self._fresh_windows: set[tuple[str, Source, int]] = set()
        self._fresh_series: set[tuple[str, str]] = set()

    # ───────────── what to keep ─────────────

    def track_window(self, ticker: str, source: Source, seconds: int) -> Window:
        key = (ticker, source, seconds)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = Window(seconds)
            self._ticker_windows.setdefault((ticker, source), []).append(window)
            self._fresh_windows.add(key)
        self._window_users[key] = self._window_users.get(key, 0) + 1
        return window

    def untrack_window(self, ticker: str, source: Source, seconds: int) -> None:
        key = (ticker, source, seconds)
        users = self._window_users.get(key, 0) - 1
        if users > 0:
            self._window_users[key] = users
            return
        self._window_users.pop(key, None)
        window = self.windows.pop(key, None)
        windows = self._ticker_windows.get((ticker, source))
        if window is not None and windows is not None:
            windows.remove(window)
            if not windows:
                del self._ticker_windows[(ticker, source)]

    def track_series(self, ticker: str, interval: str, need: int) -> Series:
        """The series of ``ticker`` and ``interval``, keeping at least ``need`` bars (kept while the
        evaluator lives: a few hundred floats each)."""
        series = self.series.get((ticker, interval))
        if series is None:
            series = self.series[(ticker, interval)] = Series(need)
            self._fresh_series.add((ticker, interval))
        elif need > (series.closes.maxlen or 0):
            series.grow(need)
            self._fresh_series.add((ticker, interval))  # it keeps more now: the older ones are missing
        return series

    def take_fresh(self) -> tuple[list[tuple[str, Source, int]], list[tuple[str, str]]]:
        """The windows and series tracked (or grown) since the last call, to be filled from the past."""
        windows = sorted(key for key in self._fresh_windows if key in self.windows)
        series = sorted(key for key in self._fresh_series if key in self.series)
        self._fresh_windows, self._fresh_series = set(), set()
        return windows, series

    def ticker_windows(self, ticker: str, source: Source) -> list[Window]:
        """The windows of ``ticker`` fed by ``source``."""
        return self._ticker_windows.get((ticker, source), [])

    # ───────────── observations ─────────────

    def observe(self, ticker: str, source: Source, t: float, price: float) -> None:
        """A price (``source`` "tick") or a bar's close (``source``: its interval) at instant ``t``."""
        windows = self._ticker_windows.get((ticker, source))
        if windows is not None:
            for window in windows:
                window.add(t, price)

    def close_bar(self, ticker: str, interval: str, start: float, close: float, volume: float) -> bool:
        """A bar of a tracked series closed; False when it is not tracked or not newer than its last."""
        series = self.series.get((ticker, interval))
        return series is not None and series.add(start, close, volume)

    def value(self, ticker: str, source: Source, metric: Metric, param: int, price: float) -> float:
        """The value of a window or bar metric for ``ticker`` now (nan while unknown)."""
        if metric is Metric.SMA_GAP or metric is Metric.VOLUME_RATIO:
            series = self.series.get((ticker, source))
            if series is None:
                return NAN
            return series.sma_gap(param) if metric is Metric.SMA_GAP else series.volume_ratio(param)
        window = self.windows.get((ticker, source, param))
        if window is None:
            return NAN
        if metric is Metric.RISE:
            return price - window.low
        if metric is Metric.FALL:
            return window.high - price
        if metric is Metric.RISE_PERCENT:
            low = window.low
            return (price - low) / low * 100.0 if low > 0 else NAN
        high = window.high
        return (high - price) / high * 100.0 if high > 0 else NAN
