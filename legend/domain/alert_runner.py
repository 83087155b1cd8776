"""Prices in, rule transitions out: the one way prices become what rules see, live and in a preview.

For each price it closes the bars whose end has passed (the same ``BarBuilder`` as bar building, so a rule
evaluated at bar closes sees the bars the chart shows), evaluates each close, puts the price into its bars
and windows, and evaluates the price. Where a price lies in time (its own instant) places it in bars,
windows and sessions; when it was evaluated (``at``: when it entered the price log) is what expiry and
cool-downs compare with, so a late price never fires an expired rule. Pure: no clock, no I/O.

``feed`` is what a successor uses to rebuild the bars and windows from the log before it evaluates
(nothing is evaluated then); ``seed_series`` and ``seed_window`` take stored bars for what the log no
longer holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime

from legend.domain.alert_index import TICK, Evaluation, Observation, Phase, RuleIndex
from legend.domain.bar_alignment import SessionLookup
from legend.domain.bar_building import BarBuilder
from legend.domain.bars import Bar
from legend.domain.timefmt import epoch_us


def _no_session(day: object) -> None:
    """No calendar: no regular session (bars cut at midnight UTC; no daily bars)."""
    return None


class RuleRunner:
    """A rule index with the bars, windows and market state its rules need (see the module docstring).
    Without a calendar (``session_on`` None: tests, embedding) every instant counts as regular session."""

    def __init__(
        self,
        index: RuleIndex,
        zone: str = "UTC",
        session_on: SessionLookup | None = None,
        *,
        bars: bool = True,
    ) -> None:
        self.index = index
        self.bars = bars  # build bars (False: no rule will ever see a bar close, as in a tick rule's preview)
        self.calendar = session_on is not None
        self.builder = BarBuilder(zone, session_on or _no_session)
        self.halted = False  # the last market status said "halted": every rule is held
        self._change_percent: dict[str, float] = {}  # per ticker, for the observations of its bar closes
        self._window_time: dict[str, float] = {}  # per ticker, the latest instant its windows took

    def phase(self, instant: datetime) -> Phase:
        """Where ``instant`` lies: regular session, extended hours, or neither."""
        if not self.calendar:
            return "regular"
        try:
            return self.builder.alignment.phase_at(epoch_us(instant))
        except ValueError:  # outside what the calendar knows
            return "closed"

    def price(
        self, ticker: str, price: float, change_percent: float, volume: float, at: datetime, instant: datetime,
        *, evaluate: bool = True,
    ) -> list[Evaluation]:  # fmt: skip
        """One price: the evaluations of the bar closes it makes due, then its own (none when not
        ``evaluate``: rebuilding). The caller commits each (``RuleIndex.commit``) once stored."""
        evaluations: list[Evaluation | None] = []
        if self.bars:
            evaluations = [self._bar_closed(bar, at, evaluate) for bar in self.builder.close_due(at)]
            with contextlib.suppress(ValueError):  # a price no bar takes (not positive, outside the calendar)
                self.builder.add(ticker, price, max(0, int(volume)), instant)
        self._change_percent[ticker] = change_percent
        t = max(
            instant.timestamp(), self._window_time.get(ticker, 0.0)
        )  # a late price: at the latest instant
        self._window_time[ticker] = t
        self.index.features.observe(ticker, TICK, t, price)
        if evaluate:
            observation = Observation(
                ticker, price, change_percent, volume, at, TICK, self.phase(instant), self.halted
            )
            evaluations.append(self.index.evaluate(observation))
        return [e for e in evaluations if e is not None]

    def _bar_closed(self, bar: Bar, at: datetime, evaluate: bool) -> Evaluation | None:
        features, ticker, interval = self.index.features, bar.ticker, bar.interval
        end = max(at, bar.last_at or bar.start)  # the close's instant, for bar-close windows
        features.close_bar(ticker, interval, bar.start.timestamp(), bar.close, float(bar.volume))
        features.observe(ticker, interval, end.timestamp(), bar.close)
        if not evaluate:
            return None
        phase: Phase = "regular" if bar.regular else self.phase(bar.start)
        volume = float(bar.session_volume) if bar.session_volume is not None else 0.0
        change = self._change_percent.get(ticker, 0.0)
        return self.index.evaluate(
            Observation(ticker, bar.close, change, volume, at, interval, phase, self.halted)
        )

    def status(self, status: str) -> None:
        """A market status entered the log: "halted" holds every rule until another status comes."""
        self.halted = status == "halted"

    def seed_series(self, bars: Iterable[Bar]) -> int:
        """Closed bars from before what the series hold (stored bars, oldest first) put in front of the
        series that track them; the number taken."""
        grouped: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for bar in bars:
            if bar.closed:
                grouped.setdefault((bar.ticker, bar.interval), []).append(
                    (bar.start.timestamp(), bar.close, float(bar.volume))
                )
        taken = 0
        for key, rows in grouped.items():
            series = self.index.features.series.get(key)
            if series is not None:
                taken += series.prepend(rows)
        return taken

    def seed_window(self, bars: Iterable[Bar]) -> None:
        """Stored 1-minute bars from before what is fed, into the ticker windows: each as its low and high
        at its last instant (an extreme may stay in a window up to a minute longer than it would have)."""
        for bar in bars:
            t = (bar.last_at or bar.start).timestamp()
            for window in self.index.features.ticker_windows(bar.ticker, TICK):
                window.seed(t, bar.low, bar.high)
