"""Alert rules: the model (what a rule watches, its state, its triggers) and the validation of a user's
definition. Pure: no I/O, no framework.

A rule watches one metric of one ticker (the price, the day change percent or the session volume) against
a threshold, in one direction. Its *side* is whether the condition held at the last price it saw. A rule
fires when its side turns from "not met" to "met" (edge-triggered), never while the condition merely
keeps holding. Sides are part of the stored rule, so a restart resumes from them and never fires the same
crossing twice. Which rules a price makes change side: ``alert_index``.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime
from typing import NamedTuple

import msgspec

from legend.domain.messages import alert_text
from legend.domain.symbols import InvalidSymbol, normalize_ticker


class AlertKind(enum.StrEnum):
    """What a rule watches; the value is the ``alert_type`` of its ``alert_trigger`` messages."""

    PRICE_ABOVE = "price_above"
    PRICE_BELOW = "price_below"
    BREAKOUT = "breakout"
    BREAKDOWN = "breakdown"
    CHANGE_PERCENT_ABOVE = "change_percent_above"
    CHANGE_PERCENT_BELOW = "change_percent_below"
    VOLUME_ABOVE = "volume_above"


class Rearm(enum.StrEnum):
    """What happens after a rule fires."""

    ONCE = "once"  # disarmed; PATCH {"armed": true} arms it again
    RECROSS = "recross"  # fires again on the next crossing, which needs a crossing back first
    COOLDOWN = "cooldown"  # as recross, but a crossing within cooldown_seconds of the last trigger is skipped


class Metric(enum.StrEnum):
    """The figure of a price update that a rule compares."""

    PRICE = "price"
    CHANGE_PERCENT = "change_percent"
    VOLUME = "volume"


class KindSpec(NamedTuple):
    """How a kind is evaluated: which metric, which direction, and whether only a true crossing counts."""

    metric: Metric
    above: bool  # met when value > threshold (else: value < threshold)
    crossing_only: bool  # the first value seen after (re)arming only establishes the side


KINDS: dict[AlertKind, KindSpec] = {
    AlertKind.PRICE_ABOVE: KindSpec(Metric.PRICE, True, False),
    AlertKind.PRICE_BELOW: KindSpec(Metric.PRICE, False, False),
    AlertKind.BREAKOUT: KindSpec(Metric.PRICE, True, True),
    AlertKind.BREAKDOWN: KindSpec(Metric.PRICE, False, True),
    AlertKind.CHANGE_PERCENT_ABOVE: KindSpec(Metric.CHANGE_PERCENT, True, False),
    AlertKind.CHANGE_PERCENT_BELOW: KindSpec(Metric.CHANGE_PERCENT, False, False),
    AlertKind.VOLUME_ABOVE: KindSpec(Metric.VOLUME, True, False),
}

MAX_PRICE = 1e9
MIN_CHANGE_PERCENT = -100.0
MAX_CHANGE_PERCENT = 10_000.0
MAX_VOLUME = 1e15
MAX_COOLDOWN_SECONDS = 30 * 24 * 3600.0


# ───────────────────────────── the model ─────────────────────────────


class AlertRule(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One user's rule with its evaluation state.

    Not tracked by the garbage collector (``gc=False``): its fields are scalars, which cannot form a
    reference cycle, and the evaluator holds every armed rule (100,000 and more), which a full collection
    would otherwise walk each time, pausing the event loop.

    ``side``: whether the condition held at the last value the rule saw (None: none seen since it was
    created, re-armed or redefined). ``generation``: how many times it fired; the next trigger is
    ``(id, generation + 1)``, the unique key that makes a trigger happen once. ``version`` grows with
    every change and guards concurrent writers.
    """

    id: int
    user_id: str
    ticker: str
    kind: AlertKind
    threshold: float
    rearm: Rearm = Rearm.ONCE
    cooldown_seconds: float | None = None
    armed: bool = True
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
        """Whether ``value`` satisfies the condition (strictly above or below the threshold)."""
        return value > self.threshold if KINDS[self.kind].above else value < self.threshold


class RuleSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A rule's definition as a user gives it; ``check_rule`` validates and normalises it."""

    ticker: str
    kind: AlertKind
    threshold: float
    rearm: Rearm = Rearm.ONCE
    cooldown_seconds: float | None = None


class RulePatch(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update: fields left UNSET keep their value."""

    ticker: str | msgspec.UnsetType = msgspec.UNSET
    kind: AlertKind | msgspec.UnsetType = msgspec.UNSET
    threshold: float | msgspec.UnsetType = msgspec.UNSET
    rearm: Rearm | msgspec.UnsetType = msgspec.UNSET
    cooldown_seconds: float | msgspec.UnsetType | None = msgspec.UNSET
    armed: bool | msgspec.UnsetType = msgspec.UNSET


class NewAlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A trigger about to be stored: rule ``rule_id`` fired for the ``generation``-th time."""

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
        """The specification's ``trigger_price`` (docs/protocol.md): the level for price kinds, else the price at the trigger."""
        return self.threshold if KINDS[AlertKind(self.alert_type)].metric is Metric.PRICE else self.price


def event_key(rule_id: int, generation: int) -> str:
    """The unique key of one crossing of one rule."""
    return f"{rule_id}:{generation}"


def trigger_message(kind: AlertKind, ticker: str, threshold: float, value: float, price: float) -> str:
    """What the user reads: the specification's wording (docs/protocol.md) for price kinds (``AAPL breaking out at $150.25 (target:
    $150.00)``), the same shape for the others."""
    metric = KINDS[kind].metric
    if metric is Metric.PRICE:
        return alert_text(ticker, kind.value, threshold, value)
    if metric is Metric.CHANGE_PERCENT:
        word = "above" if KINDS[kind].above else "below"
        return f"{ticker} day change {value:+.2f}% at ${price:,.2f} (target: {word} {threshold:+.2f}%)"
    return f"{ticker} volume {value:,.0f} at ${price:,.2f} (target: above {threshold:,.0f})"


# ───────────────────────────── validation ─────────────────────────────


class FieldError(msgspec.Struct, frozen=True):
    """One invalid field, named as in the request body."""

    key: str
    message: str


class RuleInvalid(ValueError):
    """A rule definition with field-level errors."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.key}: {e.message}" for e in errors))
        self.errors = errors


def _threshold_error(kind: AlertKind, threshold: float) -> str | None:
    if not math.isfinite(threshold):
        return "must be a finite number"
    metric = KINDS[kind].metric
    if metric is Metric.PRICE and not 0 < threshold < MAX_PRICE:
        return f"a price level must be greater than 0 and less than {MAX_PRICE:,.0f}"
    if metric is Metric.CHANGE_PERCENT and not MIN_CHANGE_PERCENT < threshold < MAX_CHANGE_PERCENT:
        return f"a day change percent must be greater than {MIN_CHANGE_PERCENT:g} and less than {MAX_CHANGE_PERCENT:g}"
    if metric is Metric.VOLUME and not (1 <= threshold <= MAX_VOLUME and threshold.is_integer()):
        return f"a volume must be a whole number from 1 to {MAX_VOLUME:,.0f}"
    return None


def check_rule(spec: RuleSpec) -> RuleSpec:
    """The spec with its ticker normalised; raises RuleInvalid listing every invalid field."""
    errors: list[FieldError] = []
    ticker = spec.ticker
    try:
        ticker = normalize_ticker(spec.ticker)
    except InvalidSymbol as exc:
        errors.append(FieldError("ticker", str(exc)))
    problem = _threshold_error(spec.kind, spec.threshold)
    if problem:
        errors.append(FieldError("threshold", f"{problem} for kind '{spec.kind.value}'"))
    cooldown = spec.cooldown_seconds
    if spec.rearm is Rearm.COOLDOWN:
        if cooldown is None:
            errors.append(FieldError("cooldown_seconds", "required when rearm is 'cooldown'"))
        elif not (math.isfinite(cooldown) and 0 < cooldown <= MAX_COOLDOWN_SECONDS):
            errors.append(
                FieldError("cooldown_seconds", f"must be greater than 0 and at most {MAX_COOLDOWN_SECONDS:g}")
            )
    elif cooldown is not None:
        errors.append(FieldError("cooldown_seconds", "only allowed when rearm is 'cooldown'"))
    if errors:
        raise RuleInvalid(errors)
    return msgspec.structs.replace(
        spec,
        ticker=ticker,
        threshold=float(spec.threshold),
        cooldown_seconds=None if cooldown is None else float(cooldown),
    )


def apply_patch(rule: AlertRule, patch: RulePatch, now: datetime) -> AlertRule:
    """The rule after ``patch``; raises RuleInvalid.

    Changing the ticker, kind or threshold forgets the side (the next price is the first one seen) and
    arms the rule, unless the patch says ``armed: false``. Arming a disarmed rule forgets the side too.
    Leaving the cooldown policy drops ``cooldown_seconds``.
    """
    rearm = rule.rearm if patch.rearm is msgspec.UNSET else patch.rearm
    if patch.cooldown_seconds is not msgspec.UNSET:
        cooldown = patch.cooldown_seconds
    else:
        cooldown = rule.cooldown_seconds if rearm is Rearm.COOLDOWN else None
    spec = check_rule(
        RuleSpec(
            ticker=rule.ticker if patch.ticker is msgspec.UNSET else patch.ticker,
            kind=rule.kind if patch.kind is msgspec.UNSET else patch.kind,
            threshold=rule.threshold if patch.threshold is msgspec.UNSET else patch.threshold,
            rearm=rearm,
            cooldown_seconds=cooldown,
        )
    )
    redefined = (spec.ticker, spec.kind, spec.threshold) != (rule.ticker, rule.kind, rule.threshold)
    armed = rule.armed if patch.armed is msgspec.UNSET else patch.armed
    if redefined and patch.armed is msgspec.UNSET:
        armed = True
    side = None if redefined or (armed and not rule.armed) else rule.side
    changed = redefined or (spec.rearm, spec.cooldown_seconds, armed, side) != (
        rule.rearm,
        rule.cooldown_seconds,
        rule.armed,
        rule.side,
    )
    if not changed:
        return rule
    return msgspec.structs.replace(
        rule,
        **msgspec.structs.asdict(spec),  # the spec's fields are the rule's definition
        armed=armed,
        side=side,
        version=rule.version + 1,
        updated_at=now,
    )
