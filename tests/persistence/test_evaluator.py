"""The alert evaluator (pure domain): kinds, edge triggering, re-arm policies, restarts, and the sorted
index checked against a brute-force scan on random data."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from legend.domain.alert_checks import RuleInvalid, apply_patch, check_rule
from legend.domain.alert_index import Observation, RuleIndex, Transition, transition
from legend.domain.alert_rules import (
    KINDS,
    AlertKind,
    AlertRule,
    Metric,
    Rearm,
    RulePatch,
    RuleSpec,
    trigger_message,
)

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def make_rule(
    rule_id: int,
    kind: AlertKind,
    threshold: float,
    *,
    rearm: Rearm = Rearm.RECROSS,
    cooldown: float | None = None,
    ticker: str = "AAPL",
    side: bool | None = None,
    armed: bool = True,
    user: str = "alice",
) -> AlertRule:
    return AlertRule(
        id=rule_id,
        user_id=user,
        ticker=ticker,
        kind=kind,
        threshold=threshold,
        rearm=rearm,
        cooldown_seconds=cooldown,
        armed=armed,
        side=side,
        created_at=T0,
        updated_at=T0,
    )


# The kinds this module covers (one figure of the price against a threshold); the others: test_alert_conditions.
LEVEL_KINDS = [kind for kind, spec in KINDS.items() if spec.metric in (Metric.PRICE, Metric.CHANGE_PERCENT, Metric.VOLUME)
               and kind not in (AlertKind.CROSSING, AlertKind.ENTERING_CHANNEL, AlertKind.EXITING_CHANNEL)]  # fmt: skip


def obs(price: float = 100.0, change: float = 0.0, volume: float = 0.0, ticker: str = "AAPL") -> Observation:
    return Observation(ticker, price, change, volume, T0)


def step(evaluator: RuleIndex, observation: Observation, at: datetime = T0) -> list[str]:
    """Evaluate and commit everything; the keys of the triggers."""
    evaluation = evaluator.evaluate(msgspec.structs.replace(observation, at=at))
    evaluator.commit(evaluation, evaluation.transitions)
    return [t.event.key for t in evaluation.transitions if t.event is not None]


# (kind, threshold, an observation where the condition does not hold, one where it does)
CASES = [
    (AlertKind.PRICE_ABOVE, 150.0, obs(149.0), obs(151.0)),
    (AlertKind.PRICE_BELOW, 150.0, obs(151.0), obs(149.0)),
    (AlertKind.BREAKOUT, 150.0, obs(149.0), obs(150.25)),
    (AlertKind.BREAKDOWN, 150.0, obs(150.5), obs(149.5)),
    (AlertKind.CHANGE_PERCENT_ABOVE, 5.0, obs(change=4.9), obs(change=5.2)),
    (AlertKind.CHANGE_PERCENT_BELOW, -5.0, obs(change=-4.0), obs(change=-6.0)),
    (AlertKind.VOLUME_ABOVE, 1_000_000, obs(volume=900_000), obs(volume=1_200_000)),
]


@pytest.mark.parametrize(("kind", "threshold", "off", "on"), CASES, ids=[c[0].value for c in CASES])
def test_each_kind_fires_once_per_crossing_into_its_condition(
    kind: AlertKind, threshold: float, off: Observation, on: Observation
) -> None:
    evaluator = RuleIndex([make_rule(1, kind, threshold)])
    assert step(evaluator, off) == []
    assert step(evaluator, on) == ["1:1"]
    assert step(evaluator, on) == []  # the condition still holds: no new crossing
    assert step(evaluator, off) == []  # crossing back never fires
    assert step(evaluator, on) == ["1:2"]


def test_the_trigger_carries_the_seed_message_and_figures() -> None:
    evaluator = RuleIndex([make_rule(7, AlertKind.BREAKOUT, 150.0)])
    step(evaluator, obs(149.0))
    evaluation = evaluator.evaluate(obs(150.25))
    [fired] = evaluation.fired()
    assert fired.event is not None
    assert fired.event.message == "AAPL breaking out at $150.25 (target: $150.00)"
    assert (fired.event.alert_type, fired.event.threshold, fired.event.value) == ("breakout", 150.0, 150.25)
    assert (fired.event.user_id, fired.event.generation, fired.event.triggered_at) == ("alice", 1, T0)
    assert fired.after.side is True and fired.after.generation == 1 and fired.after.last_triggered_at == T0


def test_other_kinds_have_readable_messages() -> None:
    assert (
        trigger_message(make_rule(1, AlertKind.CHANGE_PERCENT_BELOW, -5.0, ticker="TSLA"), -5.0, -6.25, 180.5)
        == "TSLA day change -6.25% at $180.50 (target: below -5.00%)"
    )
    assert (
        trigger_message(make_rule(1, AlertKind.VOLUME_ABOVE, 50_000_000), 50_000_000, 75_000_000, 150.25)
        == "AAPL volume 75,000,000 at $150.25 (target: above 50,000,000)"
    )


def test_a_value_equal_to_the_threshold_is_not_past_it() -> None:
    above = make_rule(1, AlertKind.PRICE_ABOVE, 150.0)
    below = make_rule(2, AlertKind.PRICE_BELOW, 150.0)
    evaluator = RuleIndex([above, below])
    assert step(evaluator, obs(150.0)) == []
    assert step(evaluator, obs(150.01)) == ["1:1"]
    assert step(evaluator, obs(150.0)) == []
    assert step(evaluator, obs(149.99)) == ["2:1"]


def test_level_kinds_fire_on_the_first_price_when_already_met_crossing_kinds_wait_for_a_cross() -> None:
    evaluator = RuleIndex(
        [make_rule(1, AlertKind.PRICE_ABOVE, 150.0), make_rule(2, AlertKind.BREAKOUT, 150.0)]
    )
    assert step(evaluator, obs(155.0)) == ["1:1"]
    assert step(evaluator, obs(149.0)) == []
    assert step(evaluator, obs(151.0)) == ["1:2", "2:1"]


def test_once_fires_a_single_time_and_disarms() -> None:
    evaluator = RuleIndex([make_rule(1, AlertKind.PRICE_ABOVE, 150.0, rearm=Rearm.ONCE)])
    step(evaluator, obs(149.0))
    evaluation = evaluator.evaluate(obs(151.0))
    assert [t.after.armed for t in evaluation.transitions] == [False]
    evaluator.commit(evaluation, evaluation.transitions)
    assert 1 not in evaluator
    assert step(evaluator, obs(149.0)) == [] and step(evaluator, obs(151.0)) == []


def test_recross_needs_a_crossing_back_before_firing_again() -> None:
    evaluator = RuleIndex([make_rule(1, AlertKind.PRICE_BELOW, 100.0, rearm=Rearm.RECROSS)])
    fired = [step(evaluator, obs(p)) for p in (101, 99, 98, 97, 99.5, 100, 101, 99)]
    assert fired == [[], ["1:1"], [], [], [], [], [], ["1:2"]]


def test_cooldown_skips_a_crossing_within_the_cooldown_and_needs_a_new_crossing_after_it() -> None:
    rule = make_rule(1, AlertKind.PRICE_ABOVE, 150.0, rearm=Rearm.COOLDOWN, cooldown=60.0)
    evaluator = RuleIndex([rule])

    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    assert step(evaluator, obs(149.0), at(0)) == []
    assert step(evaluator, obs(151.0), at(1)) == ["1:1"]
    assert step(evaluator, obs(149.0), at(10)) == []
    assert step(evaluator, obs(151.0), at(20)) == []  # crossed again 19 s after the trigger: skipped
    assert step(evaluator, obs(152.0), at(100)) == []  # the cooldown is over, but there was no new crossing
    assert step(evaluator, obs(149.0), at(110)) == []
    assert step(evaluator, obs(151.0), at(120)) == ["1:2"]
    assert step(evaluator, obs(149.0), at(121)) == []
    assert step(evaluator, obs(151.0), at(150)) == []  # 30 s after the last trigger: skipped
    # exactly cooldown_seconds after the last trigger counts as elapsed
    evaluator2 = RuleIndex([rule])
    step(evaluator2, obs(149.0), at(0))
    assert step(evaluator2, obs(151.0), at(0)) == ["1:1"]
    step(evaluator2, obs(149.0), at(30))
    assert step(evaluator2, obs(151.0), at(60)) == ["1:2"]


@pytest.mark.parametrize(
    ("kind", "stored_side", "fires"),
    [
        (AlertKind.PRICE_ABOVE, True, False),  # fired before the restart: the same crossing never fires again
        (AlertKind.PRICE_ABOVE, False, True),  # was below before the restart: crossed while away
        (AlertKind.PRICE_ABOVE, None, True),  # never saw a price: a level condition that holds fires
        (AlertKind.BREAKOUT, True, False),
        (AlertKind.BREAKOUT, False, True),
        (AlertKind.BREAKOUT, None, False),  # a crossing kind only learns its side
    ],
)
def test_after_a_restart_the_first_price_is_judged_against_the_stored_side(
    kind: AlertKind, stored_side: bool | None, fires: bool
) -> None:
    evaluator = RuleIndex([make_rule(1, kind, 150.0, side=stored_side)])  # loaded from the database
    assert step(evaluator, obs(155.0)) == (["1:1"] if fires else [])
    assert step(evaluator, obs(156.0)) == []


def test_evaluate_changes_nothing_until_commit() -> None:
    evaluator = RuleIndex([make_rule(1, AlertKind.PRICE_ABOVE, 150.0, side=False)])
    first = evaluator.evaluate(obs(151.0))
    second = evaluator.evaluate(obs(151.0))
    assert first == second and len(first.fired()) == 1
    assert evaluator.rule(1) == make_rule(1, AlertKind.PRICE_ABOVE, 150.0, side=False)


def test_a_transition_not_stored_is_settled_from_the_stored_rule() -> None:
    """Another instance stored the crossing first: this one's transition conflicts, it takes the stored
    state, and the rule does not fire again here."""
    rule = make_rule(1, AlertKind.PRICE_ABOVE, 150.0, side=False)
    evaluator = RuleIndex([rule])
    evaluation = evaluator.evaluate(obs(151.0))
    evaluator.commit(evaluation, applied=[])
    assert evaluator.rule(1) == rule
    stored = msgspec.structs.replace(rule, side=True, generation=1, version=2)
    evaluator.upsert(stored)
    assert step(evaluator, obs(152.0)) == []
    assert step(evaluator, obs(149.0)) == [] and step(evaluator, obs(151.0)) == ["1:2"]


def test_rules_of_other_tickers_and_removed_rules_do_not_fire() -> None:
    evaluator = RuleIndex(
        [
            make_rule(1, AlertKind.PRICE_ABOVE, 150.0, ticker="MSFT"),
            make_rule(2, AlertKind.PRICE_ABOVE, 150.0),
        ]
    )
    step(evaluator, obs(149.0))
    evaluator.remove(2)
    assert step(evaluator, obs(151.0)) == []
    assert evaluator.tickers() == {"MSFT"}


def test_upsert_moves_a_rule_to_its_new_threshold() -> None:
    rule = make_rule(1, AlertKind.PRICE_ABOVE, 150.0)
    evaluator = RuleIndex([rule])
    step(evaluator, obs(149.0))
    evaluator.upsert(msgspec.structs.replace(rule, threshold=160.0, side=None, version=2))
    assert step(evaluator, obs(155.0)) == []  # past the old level, not the new one
    assert step(evaluator, obs(161.0)) == ["1:1"]


def test_non_finite_values_are_ignored() -> None:
    evaluator = RuleIndex([make_rule(1, AlertKind.PRICE_ABOVE, 150.0)])
    step(evaluator, obs(149.0))
    assert step(evaluator, obs(float("nan"))) == []
    assert step(evaluator, obs(151.0)) == ["1:1"]


# ───────────────────────────── the index against a brute-force scan ─────────────────────────────


def _random_rule(rng: random.Random, rule_id: int) -> AlertRule:
    kind = rng.choice(LEVEL_KINDS)
    metric = KINDS[kind].metric
    if metric is Metric.PRICE:
        threshold = float(rng.randint(90, 110))  # a coarse grid: many ties and exact hits
    elif metric is Metric.CHANGE_PERCENT:
        threshold = float(rng.randint(-5, 5))
    else:
        threshold = float(rng.randint(1, 20) * 1000)
    rearm = rng.choice(list(Rearm))
    return make_rule(
        rule_id,
        kind,
        threshold,
        rearm=rearm,
        cooldown=rng.choice([5.0, 30.0]) if rearm is Rearm.COOLDOWN else None,
        ticker=rng.choice(["AAPL", "MSFT"]),
        side=rng.choice([None, None, True, False]),
    )


class BruteForce:
    """The reference: every armed rule of the ticker checked on every observation."""

    def __init__(self, rules: list[AlertRule]) -> None:
        self.rules = {r.id: r for r in rules if r.armed}

    def step(self, observation: Observation) -> list[Transition]:
        changes = []
        figures = {
            Metric.PRICE: observation.price,
            Metric.CHANGE_PERCENT: observation.change_percent,
            Metric.VOLUME: observation.volume,
        }
        for rule in sorted(self.rules.values(), key=lambda r: r.id):
            if rule.ticker == observation.ticker:
                change = transition(rule, figures[rule.spec.metric], None, observation)
                if change is not None:
                    changes.append(change)
        for change in changes:
            if change.after.armed:
                self.rules[change.after.id] = change.after
            else:
                del self.rules[change.after.id]
        return changes


@pytest.mark.parametrize("seed", range(8))
def test_the_index_finds_exactly_what_a_full_scan_finds(seed: int) -> None:
    rng = random.Random(seed)
    rules = [_random_rule(rng, i) for i in range(1, 301)]
    index, reference = RuleIndex(rules), BruteForce(rules)
    next_id = 301
    state = {
        "AAPL": [100.0, 0.0, 5000.0],
        "MSFT": [100.0, 0.0, 5000.0],
    }
    at = T0
    fired_total = 0
    for _ in range(600):
        at += timedelta(seconds=rng.choice([1, 2, 10]))
        action = rng.random()
        if action < 0.05:  # a new rule
            rule = _random_rule(rng, next_id)
            next_id += 1
            index.upsert(rule)
            reference.rules[rule.id] = rule
            continue
        if action < 0.08 and reference.rules:  # a user edit: new threshold, side forgotten
            rule = reference.rules[rng.choice(sorted(reference.rules))]
            edited = msgspec.structs.replace(
                rule,
                threshold=rule.threshold + rng.choice([-2.0, 1.0, 3.0]),
                side=None,
                version=rule.version + 1,
            )
            index.upsert(edited)
            reference.rules[edited.id] = edited
            continue
        if action < 0.10 and reference.rules:
            rule_id = rng.choice(sorted(reference.rules))
            index.remove(rule_id)
            del reference.rules[rule_id]
            continue
        ticker = rng.choice(["AAPL", "MSFT"])
        price, change, volume = state[ticker]
        price = min(max(price + rng.choice([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]), 80.0), 120.0)
        change = min(max(change + rng.choice([-1.0, 0.0, 1.0]), -8.0), 8.0)
        volume = 1000.0 if rng.random() < 0.02 else volume + rng.choice([0.0, 500.0, 1000.0])  # a new session
        state[ticker] = [price, change, volume]
        observation = Observation(ticker, price, change, volume, at)
        evaluation = index.evaluate(observation)
        index.commit(evaluation, evaluation.transitions)
        expected = reference.step(observation)
        key = lambda t: t.before.id  # noqa: E731
        assert sorted(evaluation.transitions, key=key) == sorted(expected, key=key)
        fired_total += len(evaluation.fired())
    assert {i: index.rule(i) for i in reference.rules} == reference.rules
    assert len(index) == len(reference.rules)
    assert fired_total > 20  # the walk really crossed thresholds


# ───────────────────────────── validation ─────────────────────────────


@pytest.mark.parametrize(
    ("spec", "keys"),
    [
        (RuleSpec(ticker="", kind=AlertKind.PRICE_ABOVE, threshold=1), ["ticker"]),
        (RuleSpec(ticker="A$PL", kind=AlertKind.PRICE_ABOVE, threshold=1), ["ticker"]),
        (RuleSpec(ticker="AAPL", kind=AlertKind.PRICE_ABOVE, threshold=0), ["threshold"]),
        (RuleSpec(ticker="AAPL", kind=AlertKind.BREAKDOWN, threshold=-3), ["threshold"]),
        (RuleSpec(ticker="AAPL", kind=AlertKind.BREAKOUT, threshold=float("inf")), ["threshold"]),
        (RuleSpec(ticker="AAPL", kind=AlertKind.CHANGE_PERCENT_BELOW, threshold=-100), ["threshold"]),
        (RuleSpec(ticker="AAPL", kind=AlertKind.VOLUME_ABOVE, threshold=10.5), ["threshold"]),
        (RuleSpec(ticker="AAPL", kind=AlertKind.VOLUME_ABOVE, threshold=0), ["threshold"]),
        (
            RuleSpec(ticker="AAPL", kind=AlertKind.PRICE_ABOVE, threshold=1, rearm=Rearm.COOLDOWN),
            ["cooldown_seconds"],
        ),
        (
            RuleSpec(
                ticker="AAPL",
                kind=AlertKind.PRICE_ABOVE,
                threshold=1,
                rearm=Rearm.COOLDOWN,
                cooldown_seconds=0,
            ),
            ["cooldown_seconds"],
        ),
        (
            RuleSpec(ticker="AAPL", kind=AlertKind.PRICE_ABOVE, threshold=1, cooldown_seconds=60),
            ["cooldown_seconds"],
        ),
        (RuleSpec(ticker="??", kind=AlertKind.PRICE_BELOW, threshold=-1), ["ticker", "threshold"]),
    ],
)
def test_invalid_rules_name_every_bad_field(spec: RuleSpec, keys: list[str]) -> None:
    with pytest.raises(RuleInvalid) as caught:
        check_rule(spec)
    assert [e.key for e in caught.value.errors] == keys


def test_valid_rules_are_normalised() -> None:
    spec = check_rule(RuleSpec(ticker=" brk.b ", kind=AlertKind.CHANGE_PERCENT_BELOW, threshold=-5))
    assert (spec.ticker, spec.threshold) == ("BRK.B", -5.0)
    assert isinstance(spec.threshold, float)


def test_patches() -> None:
    rule = make_rule(1, AlertKind.PRICE_ABOVE, 150.0, rearm=Rearm.ONCE, side=True, armed=False)
    later = T0 + timedelta(hours=1)
    assert apply_patch(rule, RulePatch(), later) is rule
    moved = apply_patch(rule, RulePatch(threshold=160.0), later)
    assert (moved.threshold, moved.armed, moved.side, moved.version, moved.updated_at) == (
        160.0,
        True,
        None,
        2,
        later,
    )
    kept_off = apply_patch(rule, RulePatch(threshold=160.0, armed=False), later)
    assert (kept_off.armed, kept_off.side) == (False, None)
    rearmed = apply_patch(rule, RulePatch(armed=True), later)
    assert (rearmed.armed, rearmed.side) == (True, None)
    cooling = apply_patch(rule, RulePatch(rearm=Rearm.COOLDOWN, cooldown_seconds=30.0), later)
    assert (cooling.rearm, cooling.cooldown_seconds, cooling.side) == (Rearm.COOLDOWN, 30.0, True)
    back = apply_patch(cooling, RulePatch(rearm=Rearm.RECROSS), later)
    assert (back.rearm, back.cooldown_seconds) == (Rearm.RECROSS, None)
    with pytest.raises(RuleInvalid) as caught:
        apply_patch(rule, RulePatch(rearm=Rearm.COOLDOWN, threshold=-1.0), later)
    assert [e.key for e in caught.value.errors] == ["threshold", "cooldown_seconds"]
    with pytest.raises(RuleInvalid):
        apply_patch(rule, RulePatch(cooldown_seconds=10.0), later)
