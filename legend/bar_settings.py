"""The ``[bars]`` section of the settings: how long the database keeps the bars of each interval.

Its own module beside ``legend.settings`` (which holds it as ``Settings.bars``), that module being long
enough already.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Annotated

import msgspec

from legend.domain.bars import INTERVALS, BarInterval

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
KeepDays = Annotated[int, msgspec.Meta(ge=1, le=36_500)]


class BarSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """OHLCV bars in the database: whether the cluster builds them, and how many days of each interval are
    kept (docs/operations.md, "Bars")."""

    # Build bars from the price log (one instance for the cluster, docs/bars.md); false: none are built
    # (what is stored stays readable), e.g. to measure the fan-out with bars on against bars off.
    enabled: bool = True
    keep_1m_days: KeepDays = 30
    keep_5m_days: KeepDays = 90
    keep_15m_days: KeepDays = 180
    keep_1h_days: KeepDays = 730  # 2 years
    keep_1d_days: KeepDays = 3650  # 10 years
    # Seconds between deletions of the bars past their retention (on every instance; batched, idempotent).
    prune_interval: PositiveFloat = 3600.0

    def __post_init__(self) -> None:
        kept = self.keep()
        for shorter, longer in itertools.pairwise(INTERVALS):
            if kept[longer] < kept[shorter]:
                raise ValueError(
                    f"keep_{longer}_days ({kept[longer].days}) is shorter than keep_{shorter}_days "
                    f"({kept[shorter].days}): a chart zoomed out would end before the one zoomed in"
                )

    def keep(self) -> dict[BarInterval, timedelta]:
        """How long each interval is kept."""
        days = {
            "1m": self.keep_1m_days,
            "5m": self.keep_5m_days,
            "15m": self.keep_15m_days,
            "1h": self.keep_1h_days,
            "1d": self.keep_1d_days,
        }
        return {interval: timedelta(days=days[interval]) for interval in INTERVALS}
