"""The scanner's detectors: pure functions over a series of closed bars of one ticker and interval, oldest
first, whose **last bar is the bar being scanned** (the one that just closed). Each returns a ``Detection``
when that bar completes its pattern, else None. No I/O, no clock: the tests run them over real CSV data.

One alert per pattern instance: every detector fires only on the bar that *completes* the pattern (the
first close above a base or a pivot, the first bar of a session), and the two that could hold on several
bars in a row (a breakout, a new high) do not fire when their own condition already held on one of the bars
just before (``base_bars`` resp. ``cooldown`` bars). The rule is stateless, so a scanner taking over on
another instance announces nothing twice either.

Prices and scores: ``entry`` is the scanned bar's close (the alert comes once it closed); ``stop`` and
``target`` are given per detector; ``risk_reward`` = |target - entry| / |entry - stop|. Scores are 0-10,
rounded to one decimal: 5 for a pattern that just meets its thresholds (6 for a new high and a VCP), more
for a stronger one, as each function says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from statistics import fmean
from zoneinfo import ZoneInfo

from legend.plugins import Bar
from legend.plugins.builtin.scanner.config import BreakoutParams, GapParams, HighParams, VcpParams


@dataclass(frozen=True, slots=True)
class Detection:
    """One pattern completed by ``bar``; prices as described in the module docstring."""

    pattern_type: str
    bar: Bar
    entry: float
    stop: float
    target: float
    score: float
    message: str

    @property
    def risk_reward(self) -> float:
        return round(abs(self.target - self.entry) / abs(self.entry - self.stop), 2)


def _score(value: float) -> float:
    return round(min(10.0, max(0.0, value)), 1)


def _held_before(condition: Callable[[Sequence[Bar]], bool], bars: Sequence[Bar], bars_before: int) -> bool:
    """Whether ``condition`` held with one of the ``bars_before`` bars before the last as the last bar."""
    return any(condition(bars[:-back]) for back in range(1, min(bars_before, len(bars) - 1) + 1))


def _money(price: float) -> str:
    return f"{price:,.2f}"


# ───────────────────────────── breakout from a flat base ─────────────────────────────


def _breaks_out(bars: Sequence[Bar], p: BreakoutParams) -> bool:
    if len(bars) < p.base_bars + 1:
        return False
    base, last = bars[-p.base_bars - 1 : -1], bars[-1]
    high, low = max(b.high for b in base), min(b.low for b in base)
    if low <= 0 or (high - low) / low * 100 > p.max_range_pct or last.close <= high:
        return False
    volume = fmean(b.volume for b in base)
    return volume == 0 or last.volume >= p.volume_factor * volume


def breakout(bars: Sequence[Bar], p: BreakoutParams) -> Detection | None:
    """``BREAKOUT``: the ``base_bars`` bars before the last form a flat base, (high - low) / low <=
    ``max_range_pct`` percent; the last bar closes above the base's high on a volume of at least
    ``volume_factor`` x the base's average volume (not checked when the base has no volume at all: an index);
    and no breakout condition held on any of the ``base_bars`` bars before.
    Stop: the base's low. Target: entry + ``target_multiple`` x the base's height.
    Score: 5, + 2.5 x (1 - range / max_range_pct) for tightness, + 2.5 x min(1, (volume ratio -
    volume_factor) / volume_factor) for volume (0 without volume)."""
    if not _breaks_out(bars, p) or _held_before(lambda b: _breaks_out(b, p), bars, p.base_bars):
        return None
    base, last = bars[-p.base_bars - 1 : -1], bars[-1]
    high, low = max(b.high for b in base), min(b.low for b in base)
    range_pct = (high - low) / low * 100
    average = fmean(b.volume for b in base)
    ratio = last.volume / average if average > 0 else 0.0
    volume_points = min(1.0, (ratio - p.volume_factor) / p.volume_factor) if average > 0 else 0.0
    if p.volume_factor == 0:
        volume_points = min(1.0, max(0.0, ratio - 1))
    score = _score(5 + 2.5 * (1 - range_pct / p.max_range_pct) + 2.5 * max(0.0, volume_points))
    entry = last.close
    volume_text = f" on {ratio:.1f}x the base's volume" if average > 0 else ""
    return Detection(
        "BREAKOUT",
        last,
        entry=entry,
        stop=low,
        target=round(entry + p.target_multiple * (high - low), 4),
        score=score,
        message=(
            f"{last.ticker} broke out of a {p.base_bars}-bar {range_pct:.2f}% base: close {_money(entry)} "
            f"above {_money(high)}{volume_text}"
        ),
    )


# ───────────────────────────── new high ─────────────────────────────


def _new_high(bars: Sequence[Bar], p: HighParams) -> bool:
    if len(bars) < p.lookback + 1:
        return False
    return bars[-1].close > max(b.high for b in bars[-p.lookback - 1 : -1])


def new_high(bars: Sequence[Bar], p: HighParams, interval: str) -> Detection | None:
    """``52_WEEK_HIGH`` on daily bars (``lookback`` 252 sessions), ``NEW_HIGH`` on the other intervals (a
    ``lookback``-bar high: 390 one-minute bars are one regular session): the last bar closes above the
    highest high of the ``lookback`` bars before it, and no bar of the ``cooldown`` bars before did so.
    Stop: the lowest low of the last ``stop_bars`` bars. Target: entry + ``reward`` x risk.
    Score: 6, + 2 x min(1, percent above the old high / 2), + 2 x min(1, volume / average volume of the
    prior 50 bars - 1) (0 without volume)."""
    if not _new_high(bars, p) or _held_before(lambda b: _new_high(b, p), bars, p.cooldown):
        return None
    last = bars[-1]
    old = max(b.high for b in bars[-p.lookback - 1 : -1])
    stop = min(b.low for b in bars[-p.stop_bars :])
    entry = last.close
    if stop >= entry:
        return None
    above = (entry / old - 1) * 100
    average = fmean(b.volume for b in bars[-51:-1])
    volume_points = min(1.0, max(0.0, last.volume / average - 1)) if average > 0 else 0.0
    daily = interval == "1d"
    kind = "52_WEEK_HIGH" if daily else "NEW_HIGH"
    span = "52-week" if daily and p.lookback == 252 else f"{p.lookback}-bar"
    return Detection(
        kind,
        last,
        entry=entry,
        stop=stop,
        target=round(entry + p.reward * (entry - stop), 4),
        score=_score(6 + 2 * min(1.0, above / 2) + 2 * volume_points),
        message=f"{last.ticker} at a new {span} high: close {_money(entry)} above {_money(old)}",
    )


# ───────────────────────────── gap at the open ─────────────────────────────


def session_date(bar: Bar, zone: ZoneInfo) -> date:
    """The date of ``bar`` in the exchange's time zone."""
    return bar.start.astimezone(zone).date()


def gap(bars: Sequence[Bar], p: GapParams, zone: ZoneInfo) -> Detection | None:
    """``GAP_UP`` / ``GAP_DOWN``: the last bar is the first of its session (its date in ``zone`` differs
    from the bar before; every daily bar is) and opens at least ``min_gap_pct`` percent above (below) the
    prior session's close (the bar before's close). A gap the first bar already filled (its close back at or
    beyond the prior close) is not announced.
    Stop: the prior close (the gap filled). Target: entry +/- ``reward`` x risk.
    Score: 5, + 5 x min(1, (gap - min_gap_pct) / (2 x min_gap_pct)): 10 from three times the minimum."""
    if len(bars) < 2:
        return None
    before, last = bars[-2], bars[-1]
    if session_date(before, zone) == session_date(last, zone) or before.close <= 0:
        return None
    pct = (last.open / before.close - 1) * 100
    if abs(pct) < p.min_gap_pct:
        return None
    entry, stop = last.close, before.close
    up = pct > 0
    if (up and entry <= stop) or (not up and entry >= stop):
        return None
    target = entry + p.reward * (entry - stop)
    if target <= 0:
        return None
    score = _score(5 + 5 * min(1.0, (abs(pct) - p.min_gap_pct) / (2 * p.min_gap_pct)))
    direction = "up" if up else "down"
    return Detection(
        "GAP_UP" if up else "GAP_DOWN",
        last,
        entry=entry,
        stop=stop,
        target=round(target, 4),
        score=score,
        message=(
            f"{last.ticker} gapped {direction} {abs(pct):.2f}% at the open: {_money(last.open)} vs the prior "
            f"close {_money(before.close)}"
        ),
    )


# ───────────────────────────── volatility contraction pattern ─────────────────────────────


@dataclass(frozen=True, slots=True)
class Contraction:
    """One pullback: from the swing high at ``top`` down to the swing low at ``bottom`` (indexes)."""

    top: int
    bottom: int
    high: float
    low: float
    volume: float  # average volume of its bars

    @property
    def depth(self) -> float:
        return (self.high - self.low) / self.high * 100


def contractions(bars: Sequence[Bar], swing: int) -> list[Contraction]:
    """The pullbacks of ``bars``: each swing high (the highest high of ``swing`` bars on each side) to the
    next swing low (the lowest low likewise); consecutive swing highs (lows) keep the most extreme."""
    points: list[tuple[str, int]] = []
    for i in range(swing, len(bars) - swing):
        window = bars[i - swing : i + swing + 1]
        for kind, value, extreme in (
            ("H", bars[i].high, max(b.high for b in window)),
            ("L", bars[i].low, min(b.low for b in window)),
        ):
            if value != extreme:
                continue
            if points and points[-1][0] == kind:
                previous = bars[points[-1][1]]
                better = value > previous.high if kind == "H" else value < previous.low
                if better:
                    points[-1] = (kind, i)
            else:
                points.append((kind, i))
    found: list[Contraction] = []
    for (kind, top), (_, bottom) in pairwise(points):
        if kind == "H":
            span = bars[top : bottom + 1]
            found.append(
                Contraction(top, bottom, bars[top].high, bars[bottom].low, fmean(b.volume for b in span))
            )
    return found


def vcp(bars: Sequence[Bar], p: VcpParams) -> Detection | None:
    """``VCP``: within the last ``lookback`` bars (the last one excluded), the latest ``min_contractions``
    or more pullbacks (swing high to the next swing low, ``swing`` bars each side) are each shallower than
    the one before, the first at most ``max_first_depth_pct`` percent deep; the volume dries up (each
    pullback's average volume below the one before; not checked without volume); and the last bar is the
    first to close above the pivot, the last pullback's high.
    Stop: the last pullback's low. Target: entry + ``reward`` x risk.
    Score: 6, + 1 per pullback beyond two (at most 2), + 2 x (1 - last depth / first depth)."""
    window = list(bars[-p.lookback - 1 :])
    if len(window) < 2 * p.swing + 3:
        return None
    last, history = window[-1], window[:-1]
    found = contractions(history, p.swing)
    run: list[Contraction] = []
    for contraction in reversed(found):  # the trailing run of ever shallower (and quieter) pullbacks
        if run and not (contraction.depth > run[0].depth):
            break
        if run and run[0].volume > 0 and not (contraction.volume > run[0].volume):
            break
        run.insert(0, contraction)
    while run and run[0].depth > p.max_first_depth_pct:
        run.pop(0)
    if len(run) < p.min_contractions:
        return None
    final = run[-1]
    pivot = final.high
    if last.close <= pivot or any(b.close > pivot for b in history[final.top :]):
        return None
    if any(b.low < final.low for b in history[final.bottom :]):  # undercut since: no longer a contraction
        return None
    entry, stop = last.close, final.low
    depths = " > ".join(f"{c.depth:.1f}%" for c in run)
    extra = min(2, len(run) - 2)
    return Detection(
        "VCP",
        last,
        entry=entry,
        stop=stop,
        target=round(entry + p.reward * (entry - stop), 4),
        score=_score(6 + extra + 2 * (1 - final.depth / run[0].depth)),
        message=(
            f"{last.ticker} VCP: {len(run)} contractions ({depths}), close {_money(entry)} above the pivot "
            f"{_money(pivot)}"
        ),
    )
