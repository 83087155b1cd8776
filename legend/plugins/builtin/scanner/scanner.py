"""The scanner at work: the closed bars ``on_bars`` hands over, grouped by series (ticker and interval),
each series' recent bars (kept from earlier calls, else read with ``context.bars``), every detector run with
each new bar as the last, and each detection published once on ``patterns``."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from legend.plugins import Bar, PluginContext
from legend.plugins.builtin.scanner.config import ScannerConfig
from legend.plugins.builtin.scanner.detectors import Detection, breakout, gap, new_high, vcp

MAX_BARS = 5000  # the most bars one ``context.bars`` call returns
REMEMBERED = 10_000  # detections remembered, so a bar handed over again (a late price corrected it) is not


def scan(bars: Sequence[Bar], config: ScannerConfig, zone: ZoneInfo) -> list[Detection]:
    """Every enabled detector with the last of ``bars`` (one series, oldest first) as the bar scanned."""
    if not bars:
        return []
    interval = bars[-1].interval
    p = config.profile(interval)
    found = [
        p.breakout.enabled and breakout(bars, p.breakout),
        p.high.enabled and new_high(bars, p.high, interval),
        p.gap.enabled and gap(bars, p.gap, zone),
        p.vcp.enabled and vcp(bars, p.vcp),
    ]
    return [detection for detection in found if isinstance(detection, Detection)]


def depth(config: ScannerConfig, interval: str) -> int:
    """How many bars of a series the detectors look at, the scanned one included."""
    p = config.profile(interval)
    wanted = max(2 * p.breakout.base_bars + 1, p.high.lookback + p.high.cooldown + 1, p.vcp.lookback + 1, 51)
    return min(wanted, MAX_BARS)


class Scanner:
    """One per server (``context.singleton``); its ``on_bars`` is the plugin's ``on_bars`` callback."""

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.config: ScannerConfig = context.config
        self.zone = ZoneInfo(self.config.timezone)
        self.recent: dict[tuple[str, str], deque[Bar]] = {}
        self.announced: set[tuple[str, str, str, datetime]] = set()
        self.order: deque[tuple[str, str, str, datetime]] = deque()
        for name in ("bars_scanned", "patterns_found", "alerts_published"):
            context.metrics.setdefault(name, 0)

    def wanted(self, bar: Bar) -> bool:
        return (
            bar.closed
            and bar.interval in self.config.intervals
            and (bar.regular or not self.config.regular_only)
        )

    async def on_bars(self, bars: list[Bar]) -> None:
        """Scan each closed bar of the configured intervals, in order, and publish what it completes."""
        series: dict[tuple[str, str], list[Bar]] = {}
        for bar in bars:
            if self.wanted(bar):
                series.setdefault((bar.ticker, bar.interval), []).append(bar)
        for key, closed in series.items():
            window = await self._window(key, closed[0].start)
            for bar in closed:
                if window and window[-1].start >= bar.start:  # a correction: scanned with its new figures
                    while window and window[-1].start >= bar.start:
                        window.pop()
                window.append(bar)
                self.context.metrics["bars_scanned"] += 1
                for detection in scan(list(window), self.config, self.zone):
                    await self._announce(detection)

    async def _window(self, key: tuple[str, str], first: datetime) -> deque[Bar]:
        """The series' bars before ``first``, as many as the detectors use: those kept, else the stored."""
        ticker, interval = key
        size = depth(self.config, interval)
        window = self.recent.get(key)
        if window is None or len(window) < size:
            stored = await self.context.bars(ticker, interval, size, before=first)
            kept = {bar.start: bar for bar in stored if self.wanted(bar)}
            kept.update({bar.start: bar for bar in window or () if bar.start < first})
            window = deque((kept[start] for start in sorted(kept)), maxlen=size)
            self.recent[key] = window
        return window

    async def _announce(self, detection: Detection) -> None:
        bar = detection.bar
        key = (bar.ticker, bar.interval, detection.pattern_type, bar.start)
        self.context.metrics["patterns_found"] += 1
        if key in self.announced:
            return
        self.announced.add(key)
        self.order.append(key)
        if len(self.order) > REMEMBERED:
            self.announced.discard(self.order.popleft())
        published = await self.context.publish_pattern(
            {
                "ticker": bar.ticker,
                "pattern_type": detection.pattern_type,
                "score": detection.score,
                "entry_price": detection.entry,
                "stop_price": detection.stop,
                "target_price": detection.target,
                "risk_reward_ratio": detection.risk_reward,
                "message": f"{detection.message} ({bar.interval})",
            }
        )
        if published is not None:
            self.context.metrics["alerts_published"] += 1
