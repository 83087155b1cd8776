"""Alert rules: the model (what a rule watches, its state, its triggers). Pure: no I/O, no framework.
Validating a user's definition is ``alert_checks``; which rules an observation makes change: ``alert_index``.

A rule watches one figure of one ticker (the price, the day change percent, the session volume, the move
within a window, the gap between a bar's close and its moving average, a bar's volume against the average)
with one test (above, below, at least, crossing, inside or outside a channel). Its *side* is whether the
test held at the last value it saw. A rule fires when its side turns to "met" (edge-triggered), never
while the test merely keeps holding; ``crossing`` fires on every change of side. Sides are part of the
stored rule, so a restart resumes from them and never fires the same crossing twice.

A rule sees every price (``evaluate: tick``) or only the close of each bar of its ``interval``
(``bar_close``); the moving-average and volume-spike kinds always see bar closes. It is held while the
market is halted and outside its ``session``, and ends at ``expires_at``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple

import msgspec

from legend.domain.bars import BarInterval
from legend.domain.messages import alert_text
from legend.domain.notifications import AlertPayload, Channel


class AlertKind(enum.StrEnum):
    """What a rule watches; the value is the ``alert_type`` of its ``alert_trigger`` messages."""

    PRICE_ABOVE = "price_above"
    PRICE_BELOW = "price_below"
    BREAKOUT = "breakout"
    BREAKDOWN = "breakdown"
    CHANGE_PERCENT_ABOVE = "change_percent_above"
    CHANGE_PERCENT_BELOW = "change_percent_below"
    VOLUME_ABOVE = "volume_above"
    CROSSING = "crossing"
    ENTERING_CHANNEL = "entering_channel"
    EXITING_CHANNEL = "exiting_channel"
    MOVING_UP = "moving_up"
    MOVING_DOWN = "moving_down"
    MOVING_UP_PERCENT = "moving_up_percent"
    MOVING_DOWN_PERCENT = "moving_down_percent"
    SMA_CROSS_UP = "sma_cross_up"
    SMA_CROSS_DOWN = "sma_cross_down"
    VOLUME_SPIKE = "volume_spike"


class Rearm(enum.StrEnum):
    """What happens after a rule fires."""

    ONCE = "once"  # disarmed; PATCH {"armed": true} arms it again
    RECROSS = "recross"  # fires again on the next crossing, which needs a crossing back first
    COOLDOWN = "cooldown"  # as recross, but a crossing within cooldown_seconds of the last trigger is skipped


class Evaluate(enum.StrEnum):
    """Which observations a rule sees."""

    TICK = "tick"  # every price
    BAR_CLOSE = "bar_close"  # the close of each bar of its interval (no intrabar flicker)


class Session(enum.StrEnum):
    """When a rule is evaluated: prices outside its session are not evaluated (its side stays)."""

    REGULAR = "regular"  # the exchange's regular session
    EXTENDED = "extended"  # pre-market and after-hours too (04:00-20:00 exchange time on trading days)
    ANY = "any"  # around the clock


class Disarmed(enum.StrEnum):
    """Why a rule is not armed."""

    TRIGGER = "trigger"  # it fired with rearm "once"
    USER = "user"  # its owner paused it (PATCH armed: false)
    EXPIRY = "expiry"  # its expires_at passed


class Metric(enum.StrEnum):
    """The figure of an observation that a rule compares."""

    PRICE = "price"
    CHANGE_PERCENT = "change_percent"
    VOLUME = "volume"  # the session volume
    RISE = "rise"  # price minus the lowest price of the window, in currency
    FALL = "fall"  # the highest price of the window minus price
    RISE_PERCENT = "rise_percent"  # RISE in percent of that lowest price
    FALL_PERCENT = "fall_percent"  # FALL in percent of that highest price
    SMA_GAP = "sma_gap"  # a bar's close minus the mean of the last ``period`` closes (itself included)
    VOLUME_RATIO = "volume_ratio"  # a bar's volume over the mean volume of the ``period`` bars before it


class Test(enum.StrEnum):
    """How a value meets a rule: the rule's side at that value."""

    ABOVE = "above"  # value > threshold
    BELOW = "below"  # value < threshold
    AT_LEAST = "at_least"  # value >= threshold
    CROSSING = "crossing"  # above or below threshold; a value exactly at it keeps the side it had
    INSIDE = "inside"  # lower <= value <= upper
    OUTSIDE = "outside"  # value < lower or value > upper


class Level(enum.StrEnum):
    """What a rule's threshold means, for validation and wording."""

    PRICE = "price"  # a price level
    PERCENT = "percent"  # a day change in percent
    VOLUME = "volume"  # a number of shares
    AMOUNT = "amount"  # a move in currency
    MOVE_PERCENT = "move_percent"  # a move in percent
    MULTIPLE = "multiple"  # a multiple of an average
    NONE = "none"  # no threshold (channels: lower and upper; moving averages: the average)


class KindSpec(NamedTuple):
    """How a kind is evaluated: which metric, which test, whether only a true crossing counts (the first
    value seen after (re)arming only establishes the side), and what its threshold means."""

    metric: Metric
    test: Test
    crossing_only: bool
    level: Level

    @property
    def window(self) -> bool:
        """Whether the kind needs ``window_seconds``."""
        return self.metric in _WINDOWED

    @property
    def bars(self) -> bool:
        """Whether the kind needs ``interval`` and ``period`` and sees only bar closes."""
        return self.metric in (Metric.SMA_GAP, Metric.VOLUME_RATIO)

    @property
    def channel(self) -> bool:
        """Whether the kind needs ``lower`` and ``upper``."""
        return self.test in (Test.INSIDE, Test.OUTSIDE)


_WINDOWED = frozenset((Metric.RISE, Metric.FALL, Metric.RISE_PERCENT, Metric.FALL_PERCENT))

KINDS: dict[AlertKind, KindSpec] = {
    AlertKind.PRICE_ABOVE: KindSpec(Metric.PRICE, Test.ABOVE, False, Level.PRICE),
    AlertKind.PRICE_BELOW: KindSpec(Metric.PRICE, Test.BELOW, False, Level.PRICE),
    AlertKind.BREAKOUT: KindSpec(Metric.PRICE, Test.ABOVE, True, Level.PRICE),
    AlertKind.BREAKDOWN: KindSpec(Metric.PRICE, Test.BELOW, True, Level.PRICE),
    AlertKind.CHANGE_PERCENT_ABOVE: KindSpec(Metric.CHANGE_PERCENT, Test.ABOVE, False, Level.PERCENT),
    AlertKind.CHANGE_PERCENT_BELOW: KindSpec(Metric.CHANGE_PERCENT, Test.BELOW, False, Level.PERCENT),
    AlertKind.VOLUME_ABOVE: KindSpec(Metric.VOLUME, Test.ABOVE, False, Level.VOLUME),
    AlertKind.CROSSING: KindSpec(Metric.PRICE, Test.CROSSING, True, Level.PRICE),
    AlertKind.ENTERING_CHANNEL: KindSpec(Metric.PRICE, Test.INSIDE, True, Level.NONE),
    AlertKind.EXITING_CHANNEL: KindSpec(Metric.PRICE, Test.OUTSIDE, True, Level.NONE),
    AlertKind.MOVING_UP: KindSpec(Metric.RISE, Test.AT_LEAST, False, Level.AMOUNT),
    AlertKind.MOVING_DOWN: KindSpec(Metric.FALL, Test.AT_LEAST, False, Level.AMOUNT),
    AlertKind.MOVING_UP_PERCENT: KindSpec(Metric.RISE_PERCENT, Test.AT_LEAST, False, Level.MOVE_PERCENT),
    AlertKind.MOVING_DOWN_PERCENT: KindSpec(Metric.FALL_PERCENT, Test.AT_LEAST, False, Level.MOVE_PERCENT),
    AlertKind.SMA_CROSS_UP: KindSpec(Metric.SMA_GAP, Test.ABOVE, True, Level.NONE),
    AlertKind.SMA_CROSS_DOWN: KindSpec(Metric.SMA_GAP, Test.BELOW, True, Level.NONE),
    AlertKind.VOLUME_SPIKE: KindSpec(Metric.VOLUME_RATIO, Test.AT_LEAST, False, Level.MULTIPLE),
}


# ───────────────────────────── the model ─────────────────────────────


class AlertRule(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One user's rule with its evaluation state.

    Not tracked by the garbage collector (``gc=False``): its fields are scalars, which cannot form a
    reference cycle, and the evaluator holds every armed rule (100,000 and more), which a full collection
    would otherwise walk each time, pausing the event loop.

    ``side``: whether the test held at the last value the rule saw (None: none seen since it was created,
    re-armed or redefined; for ``crossing``: whether the value was above the level). ``generation``: how
    many times it fired; the next trigger is ``(id, generation + 1)``, the unique key that makes a trigger
    happen once. ``version`` grows with every change and guards concurrent writers. ``disarmed``: why it is
    not armed (None while armed). ``session`` defaults to ``any`` here (the rules stored before sessions
    existed); a new rule's definition (``RuleSpec``) defaults to ``regular``.
    """

    id: int
    user_id: str
    ticker: str
    kind: AlertKind
    threshold: float | None
    rearm: Rearm = Rearm.ONCE
    cooldown_seconds: float | None = None
    lower: float | None = None
    upper: float | None = None
    window_seconds: int | None = None
    period: int | None = None
    interval: BarInterval | None = None
    evaluate: Evaluate = Evaluate.TICK
    session: Session = Session.ANY
    expires_at: datetime | None = None
    notify: tuple[Channel, ...] | None = (
        None  # where its triggers go besides the WebSocket (None: everywhere)
    )
    armed: bool = True
    disarmed: Disarmed | None = None
    side: bool | None = None
    generation: int = 0
    last_triggered_at: datetime | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    def met(self, value: float) -> bool:
        """Whether ``value`` meets the rule's test (for ``crossing``: whether it is above the level)."""
        test = KINDS[self.kind].test
        if test is Test.ABOVE or test is Test.CROSSING:
            return value > self._level
        if test is Test.BELOW:
            return value < self._level
        if test is Test.AT_LEAST:
            return value >= self._level
        inside = (self.lower or 0.0) <= value <= (self.upper or 0.0)
        return inside if test is Test.INSIDE else not inside

    @property
    def _level(self) -> float:
        return 0.0 if self.threshold is None else self.threshold  # the moving averages compare with 0

    def levels(self) -> tuple[float, ...]:
        """Where the rule's side can change: the values its index keeps it under."""
        if self.lower is not None and self.upper is not None:
            return (self.lower, self.upper)
        return (self._level,)

    def definition(self) -> tuple[object, ...]:
        """What defines the condition: a change to any of it forgets the side."""
        return (self.ticker, self.kind, self.threshold, self.lower, self.upper, self.window_seconds,
                self.period, self.interval, self.evaluate)  # fmt: skip


class RuleSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A rule's definition as a user gives it; ``alert_checks.check_rule`` validates and normalises it
    (``evaluate`` None: ``bar_close`` for the kinds that see bars, else ``tick``)."""

    ticker: str
    kind: AlertKind
    threshold: float | None = None
    rearm: Rearm = Rearm.ONCE
    cooldown_seconds: float | None = None
    lower: float | None = None
    upper: float | None = None
    window_seconds: int | None = None
    period: int | None = None
    interval: BarInterval | None = None
    evaluate: Evaluate | None = None
    session: Session = Session.REGULAR
    expires_at: datetime | None = None
    notify: tuple[Channel, ...] | None = None


def new_rule(spec: RuleSpec, user_id: str, now: datetime, rule_id: int = 0) -> AlertRule:
    """The armed rule ``spec`` defines (validated by ``alert_checks.check_rule``), not yet stored."""
    fields = msgspec.structs.asdict(spec)
    if spec.evaluate is None:
        fields["evaluate"] = Evaluate.BAR_CLOSE if KINDS[spec.kind].bars else Evaluate.TICK
    return AlertRule(id=rule_id, user_id=user_id, created_at=now, updated_at=now, **fields)


class RulePatch(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update: fields left UNSET keep their value."""

    ticker: str | msgspec.UnsetType = msgspec.UNSET
    kind: AlertKind | msgspec.UnsetType = msgspec.UNSET
    threshold: float | msgspec.UnsetType | None = msgspec.UNSET
    rearm: Rearm | msgspec.UnsetType = msgspec.UNSET
    cooldown_seconds: float | msgspec.UnsetType | None = msgspec.UNSET
    lower: float | msgspec.UnsetType | None = msgspec.UNSET
    upper: float | msgspec.UnsetType | None = msgspec.UNSET
    window_seconds: int | msgspec.UnsetType | None = msgspec.UNSET
    period: int | msgspec.UnsetType | None = msgspec.UNSET
    interval: BarInterval | msgspec.UnsetType | None = msgspec.UNSET
    evaluate: Evaluate | msgspec.UnsetType | None = msgspec.UNSET
    session: Session | msgspec.UnsetType = msgspec.UNSET
    expires_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    notify: tuple[Channel, ...] | msgspec.UnsetType | None = msgspec.UNSET
    armed: bool | msgspec.UnsetType = msgspec.UNSET


class NewAlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A trigger about to be stored: rule ``rule_id`` fired for the ``generation``-th time. ``threshold``
    is the level crossed (a channel's bound; the threshold otherwise; 0 for a moving-average cross)."""

    rule_id: int
    generation: int
    user_id: str
    ticker: str
    alert_type: str
    threshold: float
    value: float  # the metric's value that crossed the threshold
    price: float  # the ticker's price at that moment
    message: str
    triggered_at: datetime

    @property
    def key(self) -> str:
        return event_key(self.rule_id, self.generation)

    def stored(self, event_id: int) -> AlertEvent:
        """This trigger as stored under ``event_id``."""
        return AlertEvent(
            id=event_id,
            key=self.key,
            rule_id=self.rule_id,
            generation=self.generation,
            user_id=self.user_id,
            ticker=self.ticker,
            alert_type=self.alert_type,
            threshold=self.threshold,
            value=self.value,
            price=self.price,
            message=self.message,
            triggered_at=self.triggered_at,
        )


class AlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A stored trigger. ``key`` (``"{rule_id}:{generation}"``) is unique and is the message's ``alert_id``."""

    id: int
    key: str
    rule_id: int | None  # None once the rule is deleted
    generation: int
    user_id: str
    ticker: str
    alert_type: str
    threshold: float
    value: float
    price: float
    message: str
    triggered_at: datetime
    published_at: datetime | None = None

    @property
    def trigger_price(self) -> float:
        """The specification's ``trigger_price`` (docs/protocol.md): the level for the kinds that watch a
        price level (a channel's bound that was crossed), else the price at the trigger."""
        return self.threshold if KINDS[AlertKind(self.alert_type)].metric is Metric.PRICE else self.price

    def payload(self) -> AlertPayload:
        """What the notification channels carry of this trigger."""
        return AlertPayload(
            alert_id=self.key,
            rule_id=self.rule_id,
            ticker=self.ticker,
            alert_type=self.alert_type,
            threshold=self.threshold,
            value=self.value,
            trigger_price=self.trigger_price,
            current_price=self.price,
            message=self.message,
            triggered_at=self.triggered_at,
        )


def event_key(rule_id: int, generation: int) -> str:
    """The unique key of one crossing of one rule."""
    return f"{rule_id}:{generation}"


def trigger_message(rule: AlertRule, level: float, value: float, price: float) -> str:
    """What the user reads: the specification's wording (docs/protocol.md) for the price-level kinds
    (``AAPL breaking out at $150.25 (target: $150.00)``), the same shape for the others. ``level``: the
    level crossed (``NewAlertEvent.threshold``)."""
    kind, ticker = rule.kind, rule.ticker
    spec = KINDS[kind]
    metric = spec.metric
    if metric is Metric.PRICE:
        if spec.channel:
            word = "entering" if spec.test is Test.INSIDE else "leaving"
            return (
                f"{ticker} {word} the channel ${rule.lower or 0:,.2f}-${rule.upper or 0:,.2f} at ${price:,.2f} "
                f"(crossed ${level:,.2f})"
            )
        if spec.test is Test.CROSSING:
            return f"{ticker} crossing {'up' if value > level else 'down'} at ${value:,.2f} (target: ${level:,.2f})"
        return alert_text(ticker, kind.value, level, value)
    if metric is Metric.CHANGE_PERCENT:
        word = "above" if spec.test is Test.ABOVE else "below"
        return f"{ticker} day change {value:+.2f}% at ${price:,.2f} (target: {word} {level:+.2f}%)"
    if metric is Metric.VOLUME:
        return f"{ticker} volume {value:,.0f} at ${price:,.2f} (target: above {level:,.0f})"
    window = _duration(rule.window_seconds or 0)
    if metric is Metric.RISE:
        return f"{ticker} up ${value:,.2f} within {window} at ${price:,.2f} (target: ${level:,.2f})"
    if metric is Metric.FALL:
        return f"{ticker} down ${value:,.2f} within {window} at ${price:,.2f} (target: ${level:,.2f})"
    if metric is Metric.RISE_PERCENT:
        return f"{ticker} up {value:.2f}% within {window} at ${price:,.2f} (target: {level:.2f}%)"
    if metric is Metric.FALL_PERCENT:
        return f"{ticker} down {value:.2f}% within {window} at ${price:,.2f} (target: {level:.2f}%)"
    if metric is Metric.SMA_GAP:
        word = "above" if spec.test is Test.ABOVE else "below"
        return (
            f"{ticker} {rule.interval} close ${price:,.2f} crossed {word} its {rule.period}-bar average "
            f"${price - value:,.2f}"
        )
    return (
        f"{ticker} {rule.interval} bar volume {value:.1f}x its {rule.period}-bar average at ${price:,.2f} "
        f"(target: {level:g}x)"
    )


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
