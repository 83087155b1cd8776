"""The index of armed alert rules: which rules one price update makes change side, and what they do then.

The evaluator indexes armed rules per ticker, per metric and per direction in a list sorted by threshold.
On a new value it bisects for the thresholds that lie between the previous value and the new one: only
those rules changed side, so the cost of one price is ``O(log n + k)`` for ``n`` rules and ``k`` crossings.

``evaluate`` is pure: it returns the transitions (new rule states, and the trigger events of the rules that
fire) without changing anything. The caller persists them, then calls ``commit`` with what was stored.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import msgspec

from legend.domain.alert_rules import AlertRule, Metric, NewAlertEvent, Rearm, trigger_message
from legend.domain.prices import LoggedPrice


def metric_value(price: LoggedPrice, metric: Metric) -> float:
    """The figure of ``price`` that rules on ``metric`` watch."""
    if metric is Metric.PRICE:
        return price.price
    if metric is Metric.CHANGE_PERCENT:
        return price.change_percent
    return price.volume


class Transition(msgspec.Struct, frozen=True):
    """A rule changing state on an observation; ``event`` is set when it fires."""

    before: AlertRule
    after: AlertRule
    event: NewAlertEvent | None = None


class Evaluation(msgspec.Struct, frozen=True):
    """What one observation does: every rule that changes side, in threshold order per ladder."""

    observation: LoggedPrice
    at: datetime
    transitions: list[Transition]

    def fired(self) -> list[Transition]:
        return [t for t in self.transitions if t.event is not None]


def transition(rule: AlertRule, value: float, observation: LoggedPrice, at: datetime) -> Transition | None:
    """The state change of ``rule`` when its metric is at ``value`` (None when its side stays).

    Fires when the side turns to "met" while armed, except: a crossing-only kind seeing its first value
    (it only learns its side), and a cooldown rule whose last trigger is less than ``cooldown_seconds``
    ago (the crossing is skipped; it must cross back and again).
    """
    side = rule.met(value)
    if rule.side is side:
        return None
    fires = side and rule.armed
    if fires and rule.side is None and rule.spec.crossing_only:
        fires = False
    if fires and rule.rearm is Rearm.COOLDOWN and rule.last_triggered_at is not None:
        fires = at >= rule.last_triggered_at + timedelta(seconds=rule.cooldown_seconds or 0.0)
    if not fires:
        return Transition(rule, msgspec.structs.replace(rule, side=side, version=rule.version + 1))
    generation = rule.generation + 1
    after = msgspec.structs.replace(
        rule,
        side=True,
        generation=generation,
        last_triggered_at=at,
        armed=rule.rearm is not Rearm.ONCE,
        version=rule.version + 1,
    )
    event = NewAlertEvent(
        rule_id=rule.id,
        generation=generation,
        user_id=rule.user_id,
        ticker=rule.ticker,
        alert_type=rule.kind.value,
        threshold=rule.threshold,
        value=value,
        price=observation.price,
        message=trigger_message(rule.kind, rule.ticker, rule.threshold, value, observation.price),
        triggered_at=at,
    )
    return Transition(rule, after, event)


_HIGH = math.inf  # sorts after every rule id at an equal threshold


class _Ladder:
    """The armed rules of one ticker, metric and direction, sorted by (threshold, id)."""

    __slots__ = ("above", "keys")

    def __init__(self, above: bool) -> None:
        self.above = above
        self.keys: list[tuple[float, float]] = []

    def add(self, threshold: float, rule_id: int) -> None:
        insort(self.keys, (threshold, rule_id))

    def remove(self, threshold: float, rule_id: int) -> None:
        index = bisect_left(self.keys, (threshold, rule_id))
        if index < len(self.keys) and self.keys[index] == (threshold, rule_id):
            del self.keys[index]

    def between(self, previous: float, value: float) -> Iterator[int]:
        """Ids of the rules whose side differs between ``previous`` and ``value``."""
        low, high = (previous, value) if previous < value else (value, previous)
        keys = self.keys
        if self.above:  # met iff value > t: the side changes for low <= t < high
            start, stop = bisect_left(keys, (low, -_HIGH)), bisect_left(keys, (high, -_HIGH))
        else:  # met iff value < t: the side changes for low < t <= high
            start, stop = bisect_left(keys, (low, _HIGH)), bisect_left(keys, (high, _HIGH))
        for index in range(start, stop):
            yield int(keys[index][1])

    def ids(self) -> Iterator[int]:
        for _, rule_id in self.keys:
            yield int(rule_id)


class _Book:
    """One ticker: its ladders, the last committed value of each metric, and rules not yet placed."""

    __slots__ = ("ladders", "last", "pending")

    def __init__(self) -> None:
        self.ladders: dict[tuple[Metric, bool], _Ladder] = {}
        self.last: dict[Metric, float] = {}
        self.pending: set[int] = set()

    def ladder(self, metric: Metric, above: bool) -> _Ladder:
        ladder = self.ladders.get((metric, above))
        if ladder is None:
            ladder = self.ladders[(metric, above)] = _Ladder(above)
        return ladder


class RuleIndex:
    """Index of armed rules; finds the rules a price update makes change side.

    Invariant: every indexed rule that is not pending has the side its condition takes at its ticker's
    last committed value. Rules added or replaced are pending until the next observation of their
    ticker checks them; after a (re)load no value is known, so the first observation of each ticker
    checks all its rules once against their stored sides.
    """

    def __init__(self, rules: Iterable[AlertRule] = ()) -> None:
        self._rules: dict[int, AlertRule] = {}
        self._books: dict[str, _Book] = {}
        for rule in {r.id: r for r in rules}.values():  # in bulk: append all, then sort each ladder once
            if rule.armed:
                self._rules[rule.id] = rule
                book = self._books.get(rule.ticker)
                if book is None:
                    book = self._books[rule.ticker] = _Book()
                book.ladder(rule.spec.metric, rule.spec.above).keys.append((rule.threshold, rule.id))
        for book in self._books.values():
            for ladder in book.ladders.values():
                ladder.keys.sort()

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

    def _place(self, rule: AlertRule) -> _Book | None:
        if not rule.armed:
            return None
        self._rules[rule.id] = rule
        book = self._books.get(rule.ticker)
        if book is None:
            book = self._books[rule.ticker] = _Book()
        spec = rule.spec
        book.ladder(spec.metric, spec.above).add(rule.threshold, rule.id)
        return book

    def remove(self, rule_id: int) -> None:
        """Forget a rule (deleted or disarmed)."""
        rule = self._rules.pop(rule_id, None)
        if rule is None:
            return
        book = self._books[rule.ticker]
        spec = rule.spec
        book.ladder(spec.metric, spec.above).remove(rule.threshold, rule.id)
        book.pending.discard(rule_id)

    def upsert(self, rule: AlertRule) -> None:
        """Add or replace a rule as stored; it is checked against the next value of its ticker."""
        self.remove(rule.id)
        book = self._place(rule)
        if book is not None:
            book.pending.add(rule.id)

    def evaluate(self, observation: LoggedPrice, at: datetime) -> Evaluation:
        """The transitions ``observation`` causes; changes nothing (see ``commit``)."""
        book = self._books.get(observation.ticker)
        if book is None:
            return Evaluation(observation, at, [])
        transitions: list[Transition] = []
        seen: set[int] = set()
        for (metric, _), ladder in book.ladders.items():
            value = metric_value(observation, metric)
            if not math.isfinite(value):
                continue
            previous = book.last.get(metric)
            if previous is None:
                candidates: Iterable[int] = ladder.ids()
            elif previous == value:
                continue
            else:
                candidates = ladder.between(previous, value)
            for rule_id in candidates:
                seen.add(rule_id)
                change = transition(self._rules[rule_id], value, observation, at)
                if change is not None:
                    transitions.append(change)
        for rule_id in sorted(book.pending - seen):
            rule = self._rules[rule_id]
            value = metric_value(observation, rule.spec.metric)
            if math.isfinite(value):
                change = transition(rule, value, observation, at)
                if change is not None:
                    transitions.append(change)
        return Evaluation(observation, at, transitions)

    def commit(self, evaluation: Evaluation, applied: Iterable[Transition] = ()) -> None:
        """Take in ``evaluation`` once its ``applied`` transitions are stored.

        Transitions left out (a concurrent change won) must be settled by the caller with ``upsert`` or
        ``remove`` from the stored state.
        """
        observation = evaluation.observation
        book = self._books.get(observation.ticker)
        if book is None:
            return
        for metric in Metric:
            value = metric_value(observation, metric)
            if math.isfinite(value):
                book.last[metric] = value
        book.pending = {
            i
            for i in book.pending
            if not math.isfinite(metric_value(observation, self._rules[i].spec.metric))
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
