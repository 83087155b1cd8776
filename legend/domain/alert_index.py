"""The index of armed alert rules: which rules one observation makes change side, and what they do then.

An observation is a price (source ``tick``) or the close of a bar (source: its interval). Per ticker, the
index keeps one *ladder* per source, metric, parameter (window seconds or period) and session: the rules
sorted by level (a channel sits on its ladder twice, at both bounds). On a new value it bisects for the
levels that lie between the ladder's previous value and the new one: only those rules can have changed
side, so the cost of one observation is ``O(log n + k)`` for ``n`` rules and ``k`` crossings per ladder.

A ladder whose session does not hold (or any ladder while the market is halted) is skipped whole, its
previous value kept: the first observation back in session compares with the last one in session, so a
crossing made meanwhile (a gap) is seen then. Rules past their ``expires_at`` never fire: the next
observation disarms them (``expired``), and one at or after the expiry never triggers them, whatever
instant its price carries.

``evaluate`` is pure: it returns the transitions (new rule states, and the trigger events of the rules that
fire) without changing anything. The caller persists them, then calls ``commit`` with what was stored.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from legend.domain.alert_features import AlertFeatures, Source
from legend.domain.alert_rules import (
    AlertRule,
    Disarmed,
    Evaluate,
    Metric,
    NewAlertEvent,
    Rearm,
    Session,
    Test,
    trigger_message,
)

#: Where an observation lies: in the regular session, in pre-market or after-hours, or neither.
Phase = Literal["regular", "extended", "closed"]

#: A ladder: (source, metric, window seconds or period or 0, session).
LadderKey = tuple[Source, Metric, int, Session]

TICK: Source = "tick"
_NONE: frozenset[int] = frozenset()


class Observation(msgspec.Struct, frozen=True, gc=False):
    """One price or bar close as rules see it. ``at``: the instant of evaluation (when it entered the price
    log; a bar's close: the entry that closed it), which expiry and cool-down compare with."""

    ticker: str
    price: float
    change_percent: float
    volume: float  # the session volume
    at: datetime
    source: Source = TICK
    phase: Phase = "regular"
    halted: bool = False


def ladder_key(rule: AlertRule) -> LadderKey:
    source: Source = rule.interval if rule.evaluate is Evaluate.BAR_CLOSE and rule.interval else TICK
    return (source, rule.spec.metric, rule.window_seconds or rule.period or 0, rule.session)


def in_session(session: Session, phase: Phase) -> bool:
    if session is Session.ANY:
        return True
    return phase == "regular" or (session is Session.EXTENDED and phase == "extended")


RuleState = Literal["armed", "paused", "fired", "expired"]
PausedBy = Literal["user", "halted", "outside_session"]


def rule_state(
    rule: AlertRule, now: datetime, phase: Phase, halted: bool
) -> tuple[RuleState, PausedBy | None]:
    """What a rule is doing at ``now`` (for its owner): armed and evaluated; paused (by its owner, by a
    halt, or outside its session); fired (``rearm: once``); expired."""
    if not rule.armed:
        if rule.disarmed is Disarmed.EXPIRY:
            return "expired", None
        if rule.disarmed is Disarmed.USER or (rule.disarmed is None and rule.generation == 0):
            return "paused", "user"
        return "fired", None
    if rule.expires_at is not None and rule.expires_at <= now:
        return "expired", None
    if halted:
        return "paused", "halted"
    if not in_session(rule.session, phase):
        return "paused", "outside_session"
    return "armed", None


class Transition(msgspec.Struct, frozen=True):
    """A rule changing state on an observation; ``event`` is set when it fires."""

    before: AlertRule
    after: AlertRule
    event: NewAlertEvent | None = None


class Evaluation(msgspec.Struct, frozen=True):
    """What one observation does: every rule that changes state, ladder by ladder in level order, then
    the rules that expired."""

    observation: Observation
    values: dict[LadderKey, float]  # the value of each ladder evaluated
    transitions: list[Transition]

    def fired(self) -> list[Transition]:
        return [t for t in self.transitions if t.event is not None]


def _crossed_level(rule: AlertRule, value: float, previous: float | None, price: float) -> float:
    """The level a firing rule crossed: a channel's bound, the average for a moving-average cross, else
    the threshold."""
    spec = rule.spec
    if spec.channel:
        lower, upper = rule.lower or 0.0, rule.upper or 0.0
        if spec.test is Test.OUTSIDE:
            return upper if value > upper else lower
        if previous is not None and previous > upper:
            return upper
        if previous is not None and previous < lower:
            return lower
        return upper if abs(value - upper) < abs(value - lower) else lower
    if spec.metric is Metric.SMA_GAP:
        return price - value
    return rule.threshold or 0.0


def transition(
    rule: AlertRule, value: float, previous: float | None, observation: Observation
) -> Transition | None:
    """The state change of ``rule`` when its metric is at ``value`` (None when its side stays).

    Fires when the side turns to "met" while armed (``crossing``: on any change of side), except: a
    crossing-only kind seeing its first value (it only learns its side), and a cooldown rule whose last
    trigger is less than ``cooldown_seconds`` ago (the crossing is skipped; it must cross back and again).
    A ``crossing`` value exactly at the level keeps the side: only going through the level counts.
    """
    spec = rule.spec
    crossing = spec.test is Test.CROSSING
    if crossing and value == rule.threshold:
        return None
    side = rule.met(value)
    if rule.side is side:
        return None
    fires = rule.armed and (side or crossing)
    if fires and rule.side is None and spec.crossing_only:
        fires = False
    at = observation.at
    if fires and rule.rearm is Rearm.COOLDOWN and rule.last_triggered_at is not None:
        fires = at >= rule.last_triggered_at + timedelta(seconds=rule.cooldown_seconds or 0.0)
    if not fires:
        return Transition(rule, msgspec.structs.replace(rule, side=side, version=rule.version + 1))
    generation = rule.generation + 1
    once = rule.rearm is Rearm.ONCE
    after = msgspec.structs.replace(
        rule,
        side=side,
        generation=generation,
        last_triggered_at=at,
        armed=not once,
        disarmed=Disarmed.TRIGGER if once else None,
        version=rule.version + 1,
    )
    level = _crossed_level(rule, value, previous, observation.price)
    event = NewAlertEvent(
        rule_id=rule.id,
        generation=generation,
        user_id=rule.user_id,
        ticker=rule.ticker,
        alert_type=rule.kind.value,
        threshold=level,
        value=value,
        price=observation.price,
        message=trigger_message(rule, level, value, observation.price),
        triggered_at=at,
    )
    return Transition(rule, after, event)


def expiry(rule: AlertRule) -> Transition:
    """``rule`` disarmed because its ``expires_at`` passed."""
    after = msgspec.structs.replace(rule, armed=False, disarmed=Disarmed.EXPIRY, version=rule.version + 1)
    return Transition(rule, after)


class _Ladder:
    """The armed rules of one ladder key, sorted by (level, id)."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[tuple[float, int]] = []

    def add(self, level: float, rule_id: int) -> None:
        insort(self.keys, (level, rule_id))

    def remove(self, level: float, rule_id: int) -> None:
        index = bisect_left(self.keys, (level, rule_id))
        if index < len(self.keys) and self.keys[index] == (level, rule_id):
            del self.keys[index]

    def ids(self) -> Iterator[int]:
        for _, rule_id in self.keys:
            yield rule_id


class _Book:
    """One ticker: its ladders, the last committed value of each, and rules not yet placed."""

    __slots__ = ("ladders", "last", "pending")

    def __init__(self) -> None:
        self.ladders: dict[LadderKey, _Ladder] = {}
        self.last: dict[LadderKey, float] = {}
        self.pending: set[int] = set()


class RuleIndex:
    """Index of armed rules; finds the rules an observation makes change state.

    Invariant: every indexed rule that is not pending has the side its condition takes at its ladder's
    last committed value. Rules added or replaced are pending until the next observation of their
    ladder checks them; after a (re)load no value is known, so the first observation of each ladder
    checks all its rules once against their stored sides. ``features`` holds the windows and bar series
    the rules need: the index tells it which, the caller feeds it every observation before ``evaluate``.
    """

    def __init__(self, rules: Iterable[AlertRule] = (), features: AlertFeatures | None = None) -> None:
        self.features = features if features is not None else AlertFeatures()
        self._rules: dict[int, AlertRule] = {}
        self._books: dict[str, _Book] = {}
        self._expiries: list[tuple[float, int]] = []  # (expires_at, rule id), sorted
        placed = [self._track(rule) for rule in {r.id: r for r in rules}.values() if rule.armed]
        for book, key, rule in placed:  # in bulk: append all, then sort each ladder once
            ladder = book.ladders.get(key)
            if ladder is None:
                ladder = book.ladders[key] = _Ladder()
            ladder.keys.extend((level, rule.id) for level in rule.levels())
        for book in self._books.values():
            for ladder in book.ladders.values():
                ladder.keys.sort()
        self._expiries.sort()

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def rule(self, rule_id: int) -> AlertRule | None:
        return self._rules.get(rule_id)

    def tickers(self) -> set[str]:
        """Tickers with at least one armed rule (the quote poller should poll them)."""
        return {
            ticker
            for ticker, book in self._books.items()
            if any(ladder.keys for ladder in book.ladders.values())
        }

    def _track(self, rule: AlertRule) -> tuple[_Book, LadderKey, AlertRule]:
        """Hold ``rule`` (armed), its expiry and the features it needs; the caller puts it on its ladder."""
        self._rules[rule.id] = rule
        book = self._books.get(rule.ticker)
        if book is None:
            book = self._books[rule.ticker] = _Book()
        key = ladder_key(rule)
        source, _, param, _ = key
        if rule.spec.window:
            self.features.track_window(rule.ticker, source, param)
        elif rule.spec.bars:
            self.features.track_series(rule.ticker, source, param + 1)
        elif source != TICK:
            self.features.track_series(rule.ticker, source, 1)
        if rule.expires_at is not None:
            self._expiries.append((rule.expires_at.timestamp(), rule.id))
        return book, key, rule

    def remove(self, rule_id: int) -> None:
        """Forget a rule (deleted or disarmed)."""
        rule = self._rules.pop(rule_id, None)
        if rule is None:
            return
        book = self._books[rule.ticker]
        key = ladder_key(rule)
        ladder = book.ladders[key]
        for level in rule.levels():
            ladder.remove(level, rule.id)
        if not ladder.keys:
            del book.ladders[key]
            book.last.pop(key, None)
        book.pending.discard(rule_id)
        if rule.spec.window:
            self.features.untrack_window(rule.ticker, key[0], key[2])
        if rule.expires_at is not None:
            entry = (rule.expires_at.timestamp(), rule.id)
            index = bisect_left(self._expiries, entry)
            if index < len(self._expiries) and self._expiries[index] == entry:
                del self._expiries[index]

    def upsert(self, rule: AlertRule) -> None:
        """Add or replace a rule as stored; it is checked against the next value of its ladder."""
        self.remove(rule.id)
        if not rule.armed:
            return
        book, key, rule = self._track(rule)
        if rule.expires_at is not None:
            entry = (rule.expires_at.timestamp(), rule.id)
            self._expiries.remove(entry)  # appended by _track: put it in order
            insort(self._expiries, entry)
        ladder = book.ladders.get(key)
        if ladder is None:
            ladder = book.ladders[key] = _Ladder()
        for level in rule.levels():
            ladder.add(level, rule.id)
        book.pending.add(rule.id)

    def _due(self, at: datetime) -> list[int]:
        """Ids of the rules whose expiry is at or before ``at``."""
        stop = bisect_right(self._expiries, (at.timestamp(), math.inf))
        return [rule_id for _, rule_id in self._expiries[:stop]]

    def expire(self, at: datetime) -> list[Transition]:
        """The rules that expired by ``at`` (with no observation: the market is closed), disarmed."""
        return [expiry(self._rules[rule_id]) for rule_id in self._due(at)]

    def evaluate(self, observation: Observation) -> Evaluation:
        """The transitions ``observation`` causes; changes nothing (see ``commit``). The hot path: run for
        every price and bar close, with the checks inlined."""
        due = self._due(observation.at) if self._expiries else None
        transitions = [expiry(self._rules[rule_id]) for rule_id in due] if due else []
        book = self._books.get(observation.ticker)
        values: dict[LadderKey, float] = {}
        if book is None or observation.halted:
            return Evaluation(observation, values, transitions)
        expired = set(due) if due else _NONE
        seen: set[int] = set()
        source, phase, rules, last = observation.source, observation.phase, self._rules, book.last
        for key, ladder in book.ladders.items():
            ladder_source, metric, param, session = key
            if ladder_source != source:
                continue
            if (
                session is not Session.ANY
                and phase != "regular"
                and (session is Session.REGULAR or phase != "extended")
            ):
                continue
            if metric is Metric.PRICE:
                value = observation.price
            elif metric is Metric.CHANGE_PERCENT:
                value = observation.change_percent
            elif metric is Metric.VOLUME:
                value = observation.volume
            else:
                value = self.features.value(observation.ticker, source, metric, param, observation.price)
            if not math.isfinite(value):
                continue
            values[key] = value
            previous = last.get(key)
            keys = ladder.keys
            if previous is None:
                start, stop = 0, len(keys)
            elif previous == value:
                continue
            elif previous < value:
                start, stop = bisect_left(keys, (previous, -1)), bisect_right(keys, (value, math.inf))
            else:
                start, stop = bisect_left(keys, (value, -1)), bisect_right(keys, (previous, math.inf))
            for index in range(start, stop):
                rule_id = keys[index][1]
                if rule_id in seen or rule_id in expired:
                    continue
                seen.add(rule_id)
                change = transition(rules[rule_id], value, previous, observation)
                if change is not None:
                    transitions.append(change)
        if book.pending:
            for rule_id in sorted(book.pending - seen - expired):
                rule = rules[rule_id]
                key = ladder_key(rule)
                value = values.get(key, math.nan)
                if math.isfinite(value):
                    change = transition(rule, value, last.get(key), observation)
                    if change is not None:
                        transitions.append(change)
        return Evaluation(observation, values, transitions)

    def commit(self, evaluation: Evaluation, applied: Iterable[Transition] = ()) -> None:
        """Take in ``evaluation`` once its ``applied`` transitions are stored.

        Transitions left out (a concurrent change won) must be settled by the caller with ``upsert`` or
        ``remove`` from the stored state.
        """
        book = self._books.get(evaluation.observation.ticker)
        if book is not None and evaluation.values:
            book.last.update(evaluation.values)
            if book.pending:
                book.pending = {
                    i for i in book.pending if ladder_key(self._rules[i]) not in evaluation.values
                }
        for change in applied:
            after = change.after
            current = self._rules.get(after.id)
            if current is None or current.version != change.before.version:
                continue
            if after.armed:  # a transition never moves a rule on its ladder
                self._rules[after.id] = after
            else:
                self.remove(after.id)
