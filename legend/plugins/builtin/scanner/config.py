"""The ``scanner`` plugin's settings: ``[plugins.scanner]``, with one table of detector parameters for daily
bars (``daily``) and one for the intraday intervals (``intraday``): a tight base or a gap means other
percentages on one-minute bars than on daily ones."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from legend.plugins import PluginConfig

Interval = Literal["1m", "5m", "15m", "1h", "1d"]
Percent = Annotated[float, msgspec.Meta(gt=0, le=100)]
Multiple = Annotated[float, msgspec.Meta(gt=0, le=100)]


class BreakoutParams(PluginConfig):
    """Breakout from a flat base (``BREAKOUT``)."""

    enabled: bool = True
    base_bars: Annotated[int, msgspec.Meta(ge=3, le=1000)] = 15  # bars in the base, before the breakout bar
    max_range_pct: Percent = 0.15  # (base high - base low) / base low, in percent, at most
    volume_factor: Annotated[float, msgspec.Meta(ge=0, le=100)] = (
        1.5  # breakout volume / base average, at least
    )
    target_multiple: Multiple = 3.0  # target = entry + this x the base's height


class HighParams(PluginConfig):
    """New high (``52_WEEK_HIGH`` on daily bars, ``NEW_HIGH`` on the others)."""

    enabled: bool = True
    lookback: Annotated[int, msgspec.Meta(ge=2, le=4000)] = 390  # prior bars whose highs the close must top
    cooldown: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 30  # no new high in this many bars before
    stop_bars: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10  # stop = the lowest low of the last N bars
    reward: Multiple = 2.0  # target = entry + reward x risk


class GapParams(PluginConfig):
    """Gap at the open (``GAP_UP``, ``GAP_DOWN``)."""

    enabled: bool = True
    min_gap_pct: Percent = 0.3  # first bar's open vs the prior session's close, in percent, at least
    reward: Multiple = 2.0  # target = entry +/- reward x risk


class VcpParams(PluginConfig):
    """Volatility contraction pattern (``VCP``)."""

    enabled: bool = True
    lookback: Annotated[int, msgspec.Meta(ge=10, le=4000)] = 120  # bars searched for the contractions
    swing: Annotated[int, msgspec.Meta(ge=1, le=50)] = 3  # a swing high/low tops/bottoms N bars each side
    min_contractions: Annotated[int, msgspec.Meta(ge=2, le=10)] = 2
    max_first_depth_pct: Percent = 1.0  # the first pullback's depth, in percent, at most
    reward: Multiple = 3.0  # target = entry + reward x risk


class Profile(PluginConfig):
    """The detectors' parameters for one kind of bars (intraday defaults)."""

    breakout: BreakoutParams = msgspec.field(default_factory=BreakoutParams)
    high: HighParams = msgspec.field(default_factory=HighParams)
    gap: GapParams = msgspec.field(default_factory=GapParams)
    vcp: VcpParams = msgspec.field(default_factory=VcpParams)


class DailyBreakout(BreakoutParams):
    base_bars: Annotated[int, msgspec.Meta(ge=3, le=1000)] = 15
    max_range_pct: Percent = 6.0


class DailyHigh(HighParams):
    lookback: Annotated[int, msgspec.Meta(ge=2, le=4000)] = 252  # sessions: 52 weeks
    cooldown: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 20


class DailyGap(GapParams):
    min_gap_pct: Percent = 3.0


class DailyVcp(VcpParams):
    lookback: Annotated[int, msgspec.Meta(ge=10, le=4000)] = 80
    max_first_depth_pct: Percent = 25.0


class DailyProfile(Profile):
    """The detectors' parameters for daily bars."""

    breakout: DailyBreakout = msgspec.field(default_factory=DailyBreakout)
    high: DailyHigh = msgspec.field(default_factory=DailyHigh)
    gap: DailyGap = msgspec.field(default_factory=DailyGap)
    vcp: DailyVcp = msgspec.field(default_factory=DailyVcp)


class ScannerConfig(PluginConfig):
    """``[plugins.scanner]``."""

    intervals: list[Interval] = msgspec.field(default_factory=lambda: ["1m", "1d"])  # scanned as they close
    timezone: str = "America/New_York"  # where a session's date is taken (gaps)
    regular_only: bool = True  # scan regular-session bars only (extended-hours bars are skipped)
    daily: DailyProfile = msgspec.field(default_factory=DailyProfile)  # for 1d bars
    intraday: Profile = msgspec.field(default_factory=Profile)  # for 1m, 5m, 15m, 1h bars

    def __post_init__(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None

    def profile(self, interval: str) -> Profile:
        """The parameters for bars of ``interval``."""
        return self.daily if interval == "1d" else self.intraday
