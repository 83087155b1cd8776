"""Alert rules mixed over every kind, for the alert benchmarks (bench_alert_eval.py, alert_live.py).

Rules are dealt round-robin over ``SLOTS``: 30 slots, every one of the 17 kinds at least once; the first
20 are the 10 kinds that compare a price's own figures at every price (two slots each), the last 10 (a
third) are the kinds with state beside the rule: the four moving windows, the two moving-average crosses,
the volume spike, and three price kinds evaluated only at bar closes (``evaluate: bar_close``). Windows
and periods come from short menus of what traders pick (``WINDOWS``, ``PERIODS``): the number of distinct
windows and series, not of rules, is what each price pays for in keeping them.

What a rule's levels are is the caller's (``Levels``): the micro bench keeps a handful in reach and the rest
out of it; the live bench spreads them around the start. Every spec passes ``alert_checks.check_rule``.
"""

from __future__ import annotations

import random
from typing import NamedTuple, Protocol

from legend.domain.alert_checks import check_rule
from legend.domain.alert_rules import KINDS, AlertKind, Evaluate, Level, Rearm, RuleSpec, Session
from legend.domain.bars import BarInterval

PRICE_KINDS = (AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW, AlertKind.BREAKOUT, AlertKind.BREAKDOWN)
WINDOWS = (10, 30, 60, 300, 900, 3600)  # window_seconds
PERIODS = (5, 9, 20, 50, 200)  # SMA and volume-spike periods


class Slot(NamedTuple):
    kind: AlertKind
    bar_close: BarInterval | None = None  # evaluated at the closes of bars of this interval


_TICK_KINDS = [kind for kind, spec in KINDS.items() if not (spec.window or spec.bars)]
SLOTS: tuple[Slot, ...] = (
    *(Slot(kind) for kind in _TICK_KINDS * 2),
    Slot(AlertKind.MOVING_UP),
    Slot(AlertKind.MOVING_DOWN),
    Slot(AlertKind.MOVING_UP_PERCENT),
    Slot(AlertKind.MOVING_DOWN_PERCENT),
    Slot(AlertKind.SMA_CROSS_UP, "1m"),
    Slot(AlertKind.SMA_CROSS_DOWN, "5m"),
    Slot(AlertKind.VOLUME_SPIKE, "1m"),
    Slot(AlertKind.PRICE_ABOVE, "1m"),
    Slot(AlertKind.PRICE_BELOW, "5m"),
    Slot(AlertKind.CROSSING, "1m"),
)
FEATURED = sum(1 for slot in SLOTS if KINDS[slot.kind].window or slot.bar_close)  # the windowed or bar third


class Levels(Protocol):
    """Where one rule's levels lie; ``hot``: it should be within reach of the run's prices."""

    def draw(self, level: Level, rng: random.Random, hot: bool) -> float: ...

    def channel(self, rng: random.Random, hot: bool) -> tuple[float, float]: ...

    def series(self, slot: Slot, rng: random.Random, hot: bool) -> tuple[BarInterval, int]:
        """The interval and period of a moving-average or volume-spike rule."""
        ...


def mixed_spec(
    n: int, rng: random.Random, levels: Levels, *, ticker: str, hot: bool, rearm: Rearm = Rearm.RECROSS
) -> RuleSpec:
    """The ``n``-th rule of the mix (slot ``n % len(SLOTS)``), validated; session ``any``."""
    slot = SLOTS[n % len(SLOTS)]
    spec = KINDS[slot.kind]
    fields: dict[str, object] = {"ticker": ticker, "kind": slot.kind, "rearm": rearm, "session": Session.ANY}
    if spec.channel:
        fields["lower"], fields["upper"] = levels.channel(rng, hot)
    elif spec.level is not Level.NONE:
        fields["threshold"] = levels.draw(spec.level, rng, hot)
    if spec.window:
        fields["window_seconds"] = rng.choice(WINDOWS)
    if spec.bars:
        fields["interval"], fields["period"] = levels.series(slot, rng, hot)
        fields["evaluate"] = Evaluate.BAR_CLOSE
    elif slot.bar_close is not None:
        fields["interval"], fields["evaluate"] = slot.bar_close, Evaluate.BAR_CLOSE
    return check_rule(RuleSpec(**fields))  # type: ignore[arg-type]
