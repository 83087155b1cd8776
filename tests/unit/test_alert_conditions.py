"""The alert kinds beyond a level (crossing, channels, moves within a window, moving averages, volume
spikes), bar-close evaluation, expiry, sessions and halts, in the pure index; and the index against a
brute-force reference over every kind on random walks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from legend.domain.alert_features import AlertFeatures
from legend.domain.alert_index import TICK, Observation, Phase, RuleIndex, Transition, in_session, transition
from legend.domain.alert_rules import (
    KINDS,
    AlertKind,
    AlertRule,
    Disarmed,
    Evaluate,
    Metric,
    Rearm,
    Session,
)

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def rule(rule_id: int, kind: AlertKind, threshold: float | None = None, **fields: object) -> AlertRule:
    fields.setdefault("rearm", Rearm.RECROSS)
    spec = KINDS[kind]
    if spec.bars:
        fields.setdefault("evaluate", Evaluate.BAR_CLOSE)
    return AlertRule(
        id=rule_id,
        user_id="alice",
        ticker="AAPL",
        kind=kind,
        threshold=threshold,
        created_at=T0,
        updated_at=T0,
        **fields,
    )  # type: ignore[arg-type]


class Feed:
    """Feeds an index as the service does: features first, then evaluate and commit everything."""

    def __init__(self, *rules: AlertRule) -> None:
        self.index = RuleIndex(rules, AlertFeatures())
        self.at = T0

    def tick(
        self,
        price: float,
        seconds: float = 1.0,
        *,
        volume: float = 0.0,
        phase: Phase = "regular",
        halted: bool = False,
        at: datetime | None = None,
    ) -> list[str]:
        self.at = at if at is not None else self.at + timedelta(seconds=seconds)
        self.index.features.observe("AAPL", TICK, self.at.timestamp(), price)
        return self._run(Observation("AAPL", price, 0.0, volume, self.at, TICK, phase, halted))

    def bar(
        self, close: float, volume: float = 1000.0, interval: str = "1m", phase: Phase = "regular"
    ) -> list[str]:
        self.at += timedelta(minutes=1)
        features = self.index.features
        features.close_bar("AAPL", interval, self.at.timestamp(), close, volume)
        features.observe("AAPL", interval, self.at.timestamp(), close)
        return self._run(Observation("AAPL", close, 0.0, 0.0, self.at, interval, phase))

    def _run(self, observation: Observation) -> list[str]:
        self.last = evaluation = self.index.evaluate(observation)
        self.index.commit(evaluation, evaluation.transitions)
        return [t.event.key for t in evaluation.transitions if t.event is not None]


# ───────────────────────────── crossing ─────────────────────────────


def test_crossing_fires_both_ways_and_only_through_the_level() -> None:
    feed = Feed(rule(1, AlertKind.CROSSING, 100.0))
    assert feed.tick(99.0) == []  # the first price only tells the side
    assert feed.tick(100.0) == []  # at the level: not through it
    assert feed.tick(99.5) == []  # back: no crossing happened
    assert feed.tick(100.0) == []
    assert feed.tick(100.5) == ["1:1"]  # through it, up
    [fired] = feed.last.fired()
    assert fired.event is not None and fired.event.message == "AAPL crossing up at $100.50 (target: $100.00)"
    assert feed.tick(99.0) == ["1:2"]  # and down
    assert feed.tick(101.0, seconds=60) == ["1:3"]  # a gap across the level is a crossing


def test_crossing_first_price_at_the_level_learns_nothing() -> None:
    feed = Feed(rule(1, AlertKind.CROSSING, 100.0))
    assert feed.tick(100.0) == []
    assert feed.index.rule(1) is not None and feed.index.rule(1).side is None  # type: ignore[union-attr]
    assert feed.tick(101.0) == []  # learns "above"
    assert feed.tick(99.0) == ["1:1"]


# ───────────────────────────── channels ─────────────────────────────


def test_entering_a_channel_fires_from_either_side_and_names_the_bound_crossed() -> None:
    feed = Feed(rule(1, AlertKind.ENTERING_CHANNEL, lower=95.0, upper=105.0))
    assert feed.tick(100.0) == []  # already inside: the first price only tells the side
    assert feed.tick(106.0) == []
    assert feed.tick(105.0) == ["1:1"]  # the bounds are inside
    assert feed.last.fired()[0].event.threshold == 105.0  # type: ignore[union-attr]
    assert feed.tick(94.0) == []
    assert feed.tick(95.5) == ["1:2"]
    assert feed.last.fired()[0].event.threshold == 95.0  # type: ignore[union-attr]
    assert feed.tick(90.0) == [] and feed.tick(110.0) == []  # a jump over the whole channel never enters it


def test_exiting_a_channel_fires_when_the_price_leaves_it() -> None:
    feed = Feed(rule(1, AlertKind.EXITING_CHANNEL, lower=95.0, upper=105.0))
    assert feed.tick(110.0) == []  # outside at first: only the side
    assert feed.tick(100.0) == []
    assert feed.tick(95.0) == []  # on the bound: still inside
    assert feed.tick(94.99) == ["1:1"]
    event = feed.last.fired()[0].event
    assert event is not None and event.threshold == 95.0
    assert "leaving the channel $95.00-$105.00" in event.message


# ───────────────────────────── moves within a window ─────────────────────────────


def test_moving_up_is_measured_from_the_lowest_price_of_the_window() -> None:
    feed = Feed(rule(1, AlertKind.MOVING_UP, 2.0, window_seconds=30))
    assert feed.tick(101.0) == []
    assert feed.tick(100.0, seconds=5) == []  # the low
    assert feed.tick(101.5, seconds=5) == []
    assert feed.tick(102.0, seconds=5) == ["1:1"]  # 2.00 above the low, 10 s later: "at least"
    event = feed.last.fired()[0].event
    assert event is not None and event.value == pytest.approx(2.0) and "within 30 s" in event.message


def test_a_low_that_left_the_window_no_longer_counts() -> None:
    feed = Feed(rule(1, AlertKind.MOVING_UP, 2.0, window_seconds=10))
    feed.tick(100.0)
    feed.tick(101.0, seconds=5)
    assert feed.tick(102.0, seconds=6) == []  # 11 s after the low: only 101 is in the window
    feed2 = Feed(rule(1, AlertKind.MOVING_UP, 2.0, window_seconds=10))
    feed2.tick(100.0)
    feed2.tick(101.0, seconds=5)
    assert feed2.tick(102.0, seconds=5) == ["1:1"]  # exactly 10 s: the low is still in it


def test_moving_down_percent_is_measured_from_the_highest_price() -> None:
    feed = Feed(rule(1, AlertKind.MOVING_DOWN_PERCENT, 1.0, window_seconds=60))
    feed.tick(200.0)
    feed.tick(201.0, seconds=10)  # the high
    assert feed.tick(199.5, seconds=10) == []  # 0.75 %
    assert feed.tick(198.98, seconds=10) == ["1:1"]  # 1.005 % below 201
    assert feed.tick(198.0, seconds=10) == []  # still met: no new crossing
    assert feed.tick(201.0, seconds=100) == []  # the window moved on: the condition no longer holds
    assert feed.tick(197.0, seconds=1) == ["1:2"]


def test_rules_share_a_window_per_length_and_it_goes_with_the_last_of_them() -> None:
    a, b = (
        rule(1, AlertKind.MOVING_UP, 1.0, window_seconds=60),
        rule(2, AlertKind.MOVING_DOWN, 1.0, window_seconds=60),
    )
    feed = Feed(a, b)
    assert len(feed.index.features.windows) == 1
    feed.index.remove(1)
    assert len(feed.index.features.windows) == 1
    feed.index.remove(2)
    assert feed.index.features.windows == {}


# ───────────────────────────── bar closes ─────────────────────────────


def test_sma_cross_waits_for_period_bars_then_fires_on_a_cross_from_below() -> None:
    feed = Feed(rule(1, AlertKind.SMA_CROSS_UP, interval="1m", period=3))
    assert feed.bar(10.0) == [] and feed.bar(9.0) == []  # warming up: fewer than 3 closes
    assert feed.index.rule(1).side is None  # type: ignore[union-attr]
    assert feed.bar(8.0) == []  # 8 < mean(10, 9, 8) = 9: below (the first value only tells the side)
    assert feed.bar(9.5) == ["1:1"]  # 9.5 > mean(9, 8, 9.5) = 8.83
    event = feed.last.fired()[0].event
    assert event is not None and event.threshold == pytest.approx((9 + 8 + 9.5) / 3)
    assert feed.tick(1.0) == []  # a price is not a bar close


def test_sma_cross_down_and_a_close_equal_to_the_average_is_not_a_cross() -> None:
    feed = Feed(rule(1, AlertKind.SMA_CROSS_DOWN, interval="5m", period=2))
    assert feed.bar(10.0, interval="5m") == [] and feed.bar(12.0, interval="5m") == []  # above: side learnt
    assert feed.bar(12.0, interval="5m") == []  # 12 == mean(12, 12): not below
    assert feed.bar(11.0, interval="5m") == ["1:1"]
    assert feed.bar(11.0, interval="1m") == []  # another interval


def test_volume_spike_compares_with_the_bars_before_it() -> None:
    feed = Feed(rule(1, AlertKind.VOLUME_SPIKE, 3.0, interval="1m", period=2))
    assert feed.bar(10.0, volume=100) == [] and feed.bar(10.0, volume=200) == []  # warming up
    assert feed.bar(10.0, volume=449) == []  # 449 / 150 < 3
    assert feed.bar(10.0, volume=1000) == ["1:1"]  # 1000 / mean(200, 449) >= 3
    assert "bar volume 3.1x its 2-bar average" in feed.last.fired()[0].event.message  # type: ignore[union-attr]


def test_bar_close_evaluation_ignores_what_happens_inside_the_bar() -> None:
    feed = Feed(rule(1, AlertKind.PRICE_ABOVE, 100.0, evaluate=Evaluate.BAR_CLOSE, interval="1m"))
    assert feed.tick(101.0) == [] and feed.tick(99.0) == []  # intrabar: not seen
    assert feed.bar(99.5) == []
    assert feed.bar(100.5) == ["1:1"]


# ───────────────────────────── expiry, sessions, halts ─────────────────────────────


def test_an_expired_rule_never_fires_even_for_a_price_stamped_before_its_expiry() -> None:
    expires = T0 + timedelta(seconds=10)
    feed = Feed(
        rule(1, AlertKind.PRICE_ABOVE, 100.0, expires_at=expires), rule(2, AlertKind.PRICE_ABOVE, 100.0)
    )
    assert feed.tick(99.0) == []
    # the price arrives (is logged, evaluated) at the expiry; its own timestamp is irrelevant here
    assert feed.tick(101.0, at=expires) == ["2:1"]
    [expired] = [t for t in feed.last.transitions if t.before.id == 1]
    assert (expired.after.armed, expired.after.disarmed, expired.event) == (False, Disarmed.EXPIRY, None)
    assert 1 not in feed.index


def test_expiry_without_prices_comes_from_expire() -> None:
    index = RuleIndex([rule(1, AlertKind.PRICE_ABOVE, 100.0, expires_at=T0 + timedelta(hours=1))])
    assert index.expire(T0) == []
    [expired] = index.expire(T0 + timedelta(hours=2))
    assert expired.after.disarmed is Disarmed.EXPIRY


@pytest.mark.parametrize(
    ("session", "phase", "evaluated"),
    [
        (Session.REGULAR, "regular", True),
        (Session.REGULAR, "extended", False),
        (Session.REGULAR, "closed", False),
        (Session.EXTENDED, "extended", True),
        (Session.EXTENDED, "closed", False),
        (Session.ANY, "closed", True),
    ],
)
def test_sessions(session: Session, phase: Phase, evaluated: bool) -> None:
    assert in_session(session, phase) is evaluated


def test_a_crossing_outside_the_session_fires_at_the_first_price_back_in_it() -> None:
    feed = Feed(rule(1, AlertKind.CROSSING, 100.0, session=Session.REGULAR))
    assert feed.tick(99.0) == []
    assert feed.tick(101.0, phase="extended") == []  # after hours: not evaluated, the side stays "below"
    assert feed.tick(102.0, phase="closed") == []
    assert feed.tick(101.5, phase="regular") == ["1:1"]  # the gap at the open is the crossing


def test_a_halt_holds_every_rule_and_the_first_price_after_it_counts() -> None:
    feed = Feed(rule(1, AlertKind.PRICE_ABOVE, 100.0, session=Session.ANY))
    assert feed.tick(99.0) == []
    assert feed.tick(101.0, halted=True) == []
    assert feed.index.rule(1).side is False  # type: ignore[union-attr]
    assert feed.tick(101.0) == ["1:1"]


# ───────────────────────────── the index against a brute-force reference ─────────────────────────────


class Reference:
    """Every armed rule checked on every observation, its values computed from the whole history."""

    def __init__(self, rules: list[AlertRule]) -> None:
        self.rules = {r.id: r for r in rules if r.armed}
        self.ticks: list[tuple[float, float]] = []  # (t, price)
        self.closes: dict[str, list[tuple[float, float, float]]] = {}  # interval -> (t, close, volume)
        self.last: dict[tuple[str, int], float] = {}  # (ladder, rule) -> previous value in session

    def value(self, r: AlertRule, source: str, t: float, price: float) -> float:
        spec, nan = r.spec, float("nan")
        if spec.metric is Metric.PRICE:
            return price
        if spec.window:
            points = self.ticks if source == TICK else [(at, c) for at, c, _ in self.closes[source]]
            seen = [p for at, p in points if at >= t - (r.window_seconds or 0)]
            low, high = min(seen), max(seen)
            return {
                Metric.RISE: price - low,
                Metric.FALL: high - price,
                Metric.RISE_PERCENT: (price - low) / low * 100,
                Metric.FALL_PERCENT: (high - price) / high * 100,
            }[spec.metric]
        bars, period = self.closes[source], r.period or 0
        if spec.metric is Metric.SMA_GAP:
            return price - sum(c for _, c, _ in bars[-period:]) / period if len(bars) >= period else nan
        if len(bars) < period + 1:
            return nan
        mean = sum(v for _, _, v in bars[-period - 1 : -1]) / period
        return bars[-1][2] / mean if mean > 0 else nan

    def step(self, observation: Observation) -> list[Transition]:
        t, source = observation.at.timestamp(), observation.source
        if source == TICK:
            self.ticks.append((t, observation.price))
        changes = []
        for r in sorted(self.rules.values(), key=lambda r: r.id):
            r_source = r.interval if r.evaluate is Evaluate.BAR_CLOSE else TICK
            if r_source != source or not in_session(r.session, observation.phase):
                continue
            value = self.value(r, source, t, observation.price)
            if value != value:  # nan
                continue
            change = transition(r, value, self.last.get((source, r.id)), observation)
            self.last[(source, r.id)] = value
            if change is not None:
                changes.append(change)
        for change in changes:
            if change.after.armed:
                self.rules[change.after.id] = change.after
            else:
                del self.rules[change.after.id]
        return changes


def _random_rule(rng: random.Random, rule_id: int) -> AlertRule:
    kind = rng.choice([k for k, s in KINDS.items() if s.metric not in (Metric.CHANGE_PERCENT, Metric.VOLUME)])
    spec = KINDS[kind]
    fields: dict[str, object] = {"rearm": rng.choice([Rearm.RECROSS, Rearm.ONCE]), "side": None}
    fields["session"] = rng.choice(list(Session))
    threshold: float | None = None
    if spec.channel:
        low = float(rng.randint(94, 104))
        fields["lower"], fields["upper"] = low, low + rng.choice([1.0, 3.0, 6.0])
    elif spec.window:
        threshold = (
            rng.choice([0.5, 1.0, 2.0])
            if spec.metric in (Metric.RISE, Metric.FALL)
            else rng.choice([0.5, 1.5])
        )
        fields["window_seconds"] = rng.choice([10, 30, 120])
    elif spec.metric is Metric.VOLUME_RATIO:
        threshold = rng.choice([1.5, 2.0])
    elif not spec.bars:
        threshold = float(rng.randint(95, 105))
    if spec.bars:
        fields["period"] = rng.choice([2, 3, 5])
    if spec.bars or rng.random() < 0.2:
        fields["evaluate"], fields["interval"] = Evaluate.BAR_CLOSE, rng.choice(["1m", "5m"])
    return rule(rule_id, kind, threshold, **fields)


@pytest.mark.parametrize("seed", range(4))
def test_the_index_finds_exactly_what_a_full_scan_finds_for_every_kind(seed: int) -> None:
    rng = random.Random(seed)
    rules = [_random_rule(rng, i) for i in range(1, 201)]
    feed, reference = Feed(*rules), Reference(rules)
    price, fired, next_id = 100.0, 0, 201
    for step in range(1500):
        action = rng.random()
        if action < 0.03:
            new = _random_rule(rng, next_id)
            next_id += 1
            feed.index.upsert(new)
            reference.rules[new.id] = new
            continue
        if action < 0.05 and reference.rules:
            rule_id = rng.choice(sorted(reference.rules))
            feed.index.remove(rule_id)
            del reference.rules[rule_id]
            continue
        phase: Phase = rng.choice(["regular"] * 8 + ["extended", "closed"])  # type: ignore[assignment]
        if step % 20 == 19:  # a bar close, of 1m or 5m
            interval = "5m" if step % 100 == 99 else "1m"
            feed.at += timedelta(seconds=1)
            close, volume = price, float(rng.choice([100, 200, 400, 1000]))
            features = feed.index.features
            features.close_bar("AAPL", interval, feed.at.timestamp(), close, volume)
            features.observe("AAPL", interval, feed.at.timestamp(), close)
            reference.closes.setdefault(interval, []).append((feed.at.timestamp(), close, volume))
            reference.closes.setdefault("1m" if interval == "5m" else "5m", [])
            observation = Observation("AAPL", close, 0.0, 0.0, feed.at, interval, phase)
        else:
            price = min(max(price + rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0]), 90.0), 110.0)
            feed.at += timedelta(seconds=rng.choice([1, 2, 5]))
            feed.index.features.observe("AAPL", TICK, feed.at.timestamp(), price)
            observation = Observation("AAPL", price, 0.0, 0.0, feed.at, TICK, phase)
        for interval in ("1m", "5m"):
            reference.closes.setdefault(interval, [])
        evaluation = feed.index.evaluate(observation)
        feed.index.commit(evaluation, evaluation.transitions)
        expected = reference.step(observation)
        key = lambda t: t.before.id  # noqa: E731
        assert sorted(evaluation.transitions, key=key) == sorted(expected, key=key), step
        fired += len(evaluation.fired())
    assert {i: feed.index.rule(i) for i in reference.rules} == reference.rules
    assert fired > 30


def test_a_rule_placed_between_observations_is_checked_at_the_next_one() -> None:
    feed = Feed()
    feed.tick(101.0)
    feed.index.upsert(rule(1, AlertKind.PRICE_ABOVE, 100.0))
    assert feed.tick(101.0) == ["1:1"]  # the value did not move, but the new rule is pending
    later = msgspec.structs.replace(feed.index.rule(1), threshold=200.0)  # type: ignore[type-var]
    feed.index.upsert(later)
    assert feed.tick(101.0) == []
