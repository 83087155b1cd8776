"""Filling the windows and bar series of alert rules from the past, so that a takeover (or a rule asking for
a window or series nobody kept) goes on as if nothing had happened.

At a takeover the successor replays the price log back from its position, as far as the longest window or
run of bars its rules need (at most a day, and ``MAX_ENTRIES`` entries), into the bars, windows and market state without
evaluating anything (the predecessor did): the windows hold what they held, the bars it builds close where
they would have closed. Bar series (moving averages, volume spikes) take the stored closed bars from before
the replay; a window the log no longer covers takes the stored 1-minute bars (their low and high: an
extreme may stay in it up to a minute longer). A window or series a new rule needs is filled the same way
when the rule arrives, so that a window always covers the last ``window_seconds`` of prices and a moving
average the last ``period`` closes, whenever the rule was created.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import msgspec

from legend.domain.alert_features import Source
from legend.domain.alert_index import TICK
from legend.domain.alert_runner import RuleRunner
from legend.domain.bars import INTRADAY, BarInterval, parse_interval
from legend.domain.prices import decode_logged_price, price_instant
from legend.ports.bars import MAX_HISTORY, BarStore
from legend.ports.price_log import LogEntry, PriceLog
from legend.services.alerts.preview import minute_bars

log = logging.getLogger("legend.alerts")

MAX_ENTRIES = 100_000  # log entries replayed at a takeover, at most
DAY = 24 * 3600.0


def _span(interval: str) -> float:
    """Seconds back to the start of an open bar of ``interval``, at most."""
    length = INTRADAY.get(parse_interval(interval))
    return DAY if length is None else length.total_seconds()


def _status(data: str) -> str | None:
    """The ``status`` of a logged market status message; None when unreadable (nothing changes then)."""
    try:
        status = msgspec.json.decode(data, type=dict[str, object]).get("status")
    except msgspec.DecodeError:
        return None
    return status if isinstance(status, str) else None


def replay(runner: RuleRunner, entries: list[LogEntry], *, evaluate: bool = False) -> None:
    """Feed log entries to ``runner`` without evaluating: prices into bars and windows, market status."""
    for entry in entries:
        if entry.kind == "status":
            status = _status(entry.data)
            if status is not None:
                runner.status(status)
        elif entry.kind == "price":
            try:
                price = decode_logged_price(entry.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            at = datetime.fromtimestamp(entry.at, UTC)
            runner.price(price.ticker, price.price, price.change_percent, price.volume, at,
                         price_instant(price, entry.at), evaluate=evaluate)  # fmt: skip


class WarmUp:
    """Fills windows and series from the price log and the stored bars (None: none are kept)."""

    def __init__(self, price_log: PriceLog, bars: BarStore | None) -> None:
        self.price_log, self.bars = price_log, bars
        self.replayed = 0  # log entries replayed at the last takeover
        self.incomplete = 0  # takeovers whose replay did not reach as far back as the rules needed

    async def takeover(self, runner: RuleRunner, position: str | None) -> None:
        """Rebuild ``runner``'s bars, windows and market state as they stood at ``position``."""
        windows, series = runner.index.features.take_fresh()
        features = runner.index.features
        lookback = min(DAY, max(
            [seconds for _, _, seconds in windows]
            + [_span(interval) * (features.series[(ticker, interval)].closes.maxlen or 1) for ticker, interval in series],
            default=0.0,
        ))  # fmt: skip
        if position is None or not self.price_log.durable or lookback == 0:
            self.replayed = 0
            return
        last = await self.price_log.read_back(position, 0.0, 1)
        if not last.entries:
            return
        end = last.entries[0].at
        read = await self.price_log.read_back(position, end - lookback, MAX_ENTRIES)
        entries = read.entries
        complete = not read.missed and len(entries) < MAX_ENTRIES
        since = end - lookback if complete or not entries else entries[0].at
        if not complete:
            self.incomplete += 1
            log.warning("alert evaluation: the price log reaches back %.0f s of the %.0f s the rules need; "
                        "the rest comes from stored bars", end - since, lookback)  # fmt: skip
        await self._seed_series(runner, series, datetime.fromtimestamp(since, UTC))
        await self._seed_windows(runner, windows, since, end)
        replay(runner, entries)
        self.replayed = len(entries)

    async def fresh(self, runner: RuleRunner, position: str | None, now: datetime) -> None:
        """Fill the windows and series that rules added since the last call from the past (up to
        ``position``, the last entry evaluated, at ``now``)."""
        windows, series = runner.index.features.take_fresh()
        await self._seed_series(runner, series, now)
        tick_windows = [(ticker, seconds) for ticker, source, seconds in windows if source == TICK]
        if not tick_windows or position is None:
            return
        longest = max(seconds for _, seconds in tick_windows)
        read = await self.price_log.read_back(position, now.timestamp() - longest, MAX_ENTRIES)
        entries = read.entries
        since = (
            entries[0].at
            if entries and (read.missed or len(entries) == MAX_ENTRIES)
            else now.timestamp() - longest
        )
        await self._seed_windows(runner, [(t, TICK, s) for t, s in tick_windows], since, now.timestamp())
        features = runner.index.features
        for entry in entries:
            if entry.kind != "price":
                continue
            try:
                price = decode_logged_price(entry.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            t = price_instant(price, entry.at).timestamp()
            for ticker, seconds in tick_windows:
                window = features.windows.get((ticker, TICK, seconds))
                if ticker == price.ticker and window is not None and t >= window.last:
                    window.add(t, price.price)

    async def _seed_series(self, runner: RuleRunner, series: list[tuple[str, str]], before: datetime) -> None:
        """Each series' closed bars that ended by ``before``, from the stored bars."""
        if self.bars is None:
            return
        for ticker, interval in series:
            kept = runner.index.features.series.get((ticker, interval))
            if kept is None:
                continue
            need = min(MAX_HISTORY, (kept.closes.maxlen or 1) + 1)
            stored = await self.bars.history(ticker, parse_interval(interval), need, before=before)
            runner.seed_series(
                bar for bar in stored if bar.closed and _ended(runner, bar.interval, bar.start, before)
            )

    async def _seed_windows(
        self, runner: RuleRunner, windows: list[tuple[str, Source, int]], since: float, end: float
    ) -> None:
        """Windows reaching back before ``since`` (where the log ends) take the stored 1-minute bars there."""
        if self.bars is None:
            return
        features = runner.index.features
        for ticker, source, seconds in windows:
            start = end - seconds
            window = features.windows.get((ticker, source, seconds))
            if source != TICK or window is None or start >= since:
                continue
            bars = await minute_bars(self.bars, ticker, datetime.fromtimestamp(start, UTC),
                                     datetime.fromtimestamp(since, UTC))  # fmt: skip
            for bar in bars:
                t = (bar.last_at or bar.start).timestamp()
                if t >= window.last:
                    window.seed(t, bar.low, bar.high)


def _ended(runner: RuleRunner, interval: BarInterval, start: datetime, before: datetime) -> bool:
    """Whether the bar of ``interval`` starting at ``start`` ended by ``before``."""
    span = runner.builder.alignment.span(interval, start)
    return span is not None and span[1] <= before
