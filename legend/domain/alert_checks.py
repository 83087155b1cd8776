"""Validating a user's alert rule: every invalid field named with what it allows (the REST API's 400s),
and the rule a partial update makes. Pure: no I/O, no framework."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import msgspec

from legend.domain.alert_rules import (
    KINDS,
    AlertRule,
    Disarmed,
    Evaluate,
    Level,
    Rearm,
    RulePatch,
    RuleSpec,
)
from legend.domain.notifications import CHANNELS
from legend.domain.symbols import InvalidSymbol, normalize_ticker

MAX_PRICE = 1e9
MIN_CHANGE_PERCENT = -100.0
MAX_CHANGE_PERCENT = 10_000.0
MAX_VOLUME = 1e15
MAX_COOLDOWN_SECONDS = 30 * 24 * 3600.0
MAX_MULTIPLE = 1000.0
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 10, 24 * 3600
MIN_PERIOD, MAX_PERIOD = 2, 200


class FieldError(msgspec.Struct, frozen=True):
    """One invalid field, named as in the request body."""

    key: str
    message: str


class RuleInvalid(ValueError):
    """A rule definition with field-level errors."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.key}: {e.message}" for e in errors))
        self.errors = errors


def _threshold_error(level: Level, threshold: float) -> str | None:
    if not math.isfinite(threshold):
        return "must be a finite number"
    if level is Level.PRICE and not 0 < threshold < MAX_PRICE:
        return f"a price level must be greater than 0 and less than {MAX_PRICE:,.0f}"
    if level is Level.PERCENT and not MIN_CHANGE_PERCENT < threshold < MAX_CHANGE_PERCENT:
        return f"a day change percent must be greater than {MIN_CHANGE_PERCENT:g} and less than {MAX_CHANGE_PERCENT:g}"
    if level is Level.VOLUME and not (1 <= threshold <= MAX_VOLUME and threshold.is_integer()):
        return f"a volume must be a whole number from 1 to {MAX_VOLUME:,.0f}"
    if level is Level.AMOUNT and not 0 < threshold < MAX_PRICE:
        return f"a move in currency must be greater than 0 and less than {MAX_PRICE:,.0f}"
    if level is Level.MOVE_PERCENT and not 0 < threshold < MAX_CHANGE_PERCENT:
        return f"a move in percent must be greater than 0 and less than {MAX_CHANGE_PERCENT:g}"
    if level is Level.MULTIPLE and not 0 < threshold <= MAX_MULTIPLE:
        return f"a multiple of the average must be greater than 0 and at most {MAX_MULTIPLE:g}"
    return None


def _whole(value: float, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_rule(spec: RuleSpec, now: datetime | None = None) -> RuleSpec:
    """The spec with its ticker normalised, its ``evaluate`` settled and its expiry in UTC; raises
    RuleInvalid listing every invalid field. ``now``: an expiry must lie after it."""
    errors: list[FieldError] = []

    def bad(key: str, message: str) -> None:
        errors.append(FieldError(key, message))

    kind = spec.kind
    shape = KINDS[kind]
    ticker = spec.ticker
    try:
        ticker = normalize_ticker(spec.ticker)
    except InvalidSymbol as exc:
        bad("ticker", str(exc))
    if shape.level is Level.NONE:
        if spec.threshold is not None:
            bad("threshold", f"not used by kind '{kind.value}'")
    elif spec.threshold is None:
        bad("threshold", f"required for kind '{kind.value}'")
    else:
        problem = _threshold_error(shape.level, spec.threshold)
        if problem:
            bad("threshold", f"{problem} for kind '{kind.value}'")
    if shape.channel:
        for key, bound in (("lower", spec.lower), ("upper", spec.upper)):
            if bound is None:
                bad(key, f"required for kind '{kind.value}'")
            elif not (math.isfinite(bound) and 0 < bound < MAX_PRICE):
                bad(key, f"a price level must be greater than 0 and less than {MAX_PRICE:,.0f}")
        if spec.lower is not None and spec.upper is not None and not spec.lower < spec.upper:
            bad("upper", "must be greater than lower")
    else:
        for key, bound in (("lower", spec.lower), ("upper", spec.upper)):
            if bound is not None:
                bad(key, "only for the kinds 'entering_channel' and 'exiting_channel'")
    if shape.window:
        if spec.window_seconds is None:
            bad("window_seconds", f"required for kind '{kind.value}'")
        elif not _whole(spec.window_seconds, MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS):
            bad(
                "window_seconds",
                f"must be a whole number from {MIN_WINDOW_SECONDS} to {MAX_WINDOW_SECONDS} (1 day)",
            )
    elif spec.window_seconds is not None:
        bad("window_seconds", "only for the moving_up/moving_down kinds")
    if shape.bars:
        if spec.period is None:
            bad("period", f"required for kind '{kind.value}'")
        elif not _whole(spec.period, MIN_PERIOD, MAX_PERIOD):
            bad("period", f"must be a whole number from {MIN_PERIOD} to {MAX_PERIOD}")
    elif spec.period is not None:
        bad("period", "only for the kinds 'sma_cross_up', 'sma_cross_down' and 'volume_spike'")
    evaluate = spec.evaluate
    if evaluate is None:
        evaluate = Evaluate.BAR_CLOSE if shape.bars else Evaluate.TICK
    elif shape.bars and evaluate is not Evaluate.BAR_CLOSE:
        bad("evaluate", f"kind '{kind.value}' is evaluated at bar closes: 'bar_close' (or leave it out)")
    if evaluate is Evaluate.BAR_CLOSE or shape.bars:
        if spec.interval is None:
            bad("interval", "required when evaluating at bar closes (1m, 5m, 15m, 1h or 1d)")
    elif spec.interval is not None:
        bad("interval", "only when evaluate is 'bar_close'")
    expires_at = spec.expires_at
    if expires_at is not None:
        expires_at = (
            expires_at.replace(tzinfo=UTC) if expires_at.tzinfo is None else expires_at.astimezone(UTC)
        )
        if now is not None and expires_at <= now:
            bad("expires_at", "must lie in the future")
    notify = spec.notify
    if notify is not None:
        unknown = [channel for channel in notify if channel not in CHANNELS]
        if unknown:
            bad("notify", f"unknown channel {unknown[0]!r}: push, webhook or email")
        elif len(set(notify)) != len(notify):
            bad("notify", "a channel is given twice")
        notify = tuple(notify)
    cooldown = spec.cooldown_seconds
    if spec.rearm is Rearm.COOLDOWN:
        if cooldown is None:
            bad("cooldown_seconds", "required when rearm is 'cooldown'")
        elif not (math.isfinite(cooldown) and 0 < cooldown <= MAX_COOLDOWN_SECONDS):
            bad("cooldown_seconds", f"must be greater than 0 and at most {MAX_COOLDOWN_SECONDS:g}")
    elif cooldown is not None:
        bad("cooldown_seconds", "only allowed when rearm is 'cooldown'")
    if errors:
        raise RuleInvalid(errors)
    return msgspec.structs.replace(
        spec,
        ticker=ticker,
        threshold=None if spec.threshold is None else float(spec.threshold),
        lower=None if spec.lower is None else float(spec.lower),
        upper=None if spec.upper is None else float(spec.upper),
        cooldown_seconds=None if cooldown is None else float(cooldown),
        evaluate=evaluate,
        expires_at=expires_at,
        notify=notify,
    )


def _merged(rule: AlertRule, patch: RulePatch) -> RuleSpec:
    """The definition ``patch`` makes of ``rule``'s: a field it leaves UNSET keeps its value, except that a
    change of kind drops the fields the new kind has no use for, and leaving the cooldown policy drops
    ``cooldown_seconds``."""
    values = {field: getattr(rule, field) for field in RuleSpec.__struct_fields__}
    if patch.kind is not msgspec.UNSET and patch.kind is not rule.kind:
        shape = KINDS[patch.kind]
        old = rule.spec
        if shape.level is not old.level:
            values["threshold"] = None
        if not shape.channel:
            values["lower"] = values["upper"] = None
        if not shape.window:
            values["window_seconds"] = None
        if not shape.bars:
            values["period"] = None
            if old.bars:
                values["evaluate"], values["interval"] = None, None
        elif not old.bars:
            values["evaluate"] = None
    for field in RuleSpec.__struct_fields__:
        given = getattr(patch, field)
        if given is not msgspec.UNSET:
            values[field] = given
    if values["rearm"] is not Rearm.COOLDOWN and patch.cooldown_seconds is msgspec.UNSET:
        values["cooldown_seconds"] = None
    if values["evaluate"] is Evaluate.TICK and patch.interval is msgspec.UNSET:
        values["interval"] = None
    return RuleSpec(**values)


def apply_patch(rule: AlertRule, patch: RulePatch, now: datetime) -> AlertRule:
    """The rule after ``patch``; raises RuleInvalid.

    Changing what defines the condition (ticker, kind, levels, window, period, interval, evaluate) forgets
    the side and arms the rule, unless the patch says ``armed: false``. Arming a disarmed rule forgets the
    side too; an expired rule is armed again only with an expiry in the future (or none).
    """
    spec = check_rule(_merged(rule, patch))
    definition = (spec.ticker, spec.kind, spec.threshold, spec.lower, spec.upper, spec.window_seconds,
                  spec.period, spec.interval, spec.evaluate)  # fmt: skip
    redefined = definition != rule.definition()
    armed = rule.armed if patch.armed is msgspec.UNSET else patch.armed
    if redefined and patch.armed is msgspec.UNSET:
        armed = True
    if (
        rule.disarmed is Disarmed.EXPIRY
        and patch.expires_at is not msgspec.UNSET
        and patch.armed is msgspec.UNSET
    ):
        armed = True  # a new expiry (or none) for an expired rule arms it again
    if armed and spec.expires_at is not None and spec.expires_at <= now:
        key = (
            "expires_at"
            if patch.expires_at is not msgspec.UNSET or rule.disarmed is not Disarmed.EXPIRY
            else "armed"
        )
        message = (
            "must lie in the future"
            if key == "expires_at"
            else "the rule expired: give it a later expires_at"
        )
        raise RuleInvalid([FieldError(key, message)])
    side = None if redefined or (armed and not rule.armed) else rule.side
    if armed:
        disarmed = None
    elif not rule.armed:
        disarmed = rule.disarmed
    else:
        disarmed = Disarmed.USER
    updated = msgspec.structs.replace(
        rule,
        **msgspec.structs.asdict(spec),  # the spec's fields are the rule's definition
        armed=armed,
        disarmed=disarmed,
        side=side,
    )
    if updated == rule:
        return rule
    return msgspec.structs.replace(updated, version=rule.version + 1, updated_at=now)
