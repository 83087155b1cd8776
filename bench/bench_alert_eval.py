"""Alert evaluation cost per price update, against the number of rules on the ticker; and, with ``live``,
triggers end to end through a real server under a burst (bench/alert_live.py).

    python bench/bench_alert_eval.py [--prices 20000] [--repeat 5] [--seed 1]
    python bench/bench_alert_eval.py live [--rules 100000] [--rate 1000] [--seconds 10] [--backend redis]

One ticker carries 100, 10,000 and 100,000 armed rules. A fixed handful (10) sits in the band the price
walks through, so they keep crossing and firing; every other rule sits well away from it. The indexed
evaluator (``RuleIndex``: evaluate + commit, as the service runs it) should cost about the same per
price whatever the number of rules; a brute-force scan of every rule is shown beside it for contrast.
Figures are the best of ``--repeat`` runs, as ratios against the 100-rule baseline of the same run.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from legend.domain.alert_index import RuleIndex, transition
from legend.domain.alert_rules import AlertKind, AlertRule, Rearm
from legend.domain.prices import LoggedPrice

SIZES = (100, 10_000, 100_000)
HOT = 10  # rules inside the price band: the ones that fire
BAND = (149.0, 151.0)
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
PRICE_KINDS = (AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW, AlertKind.BREAKOUT, AlertKind.BREAKDOWN)


def make_rules(count: int, rng: random.Random) -> list[AlertRule]:
    rules: list[AlertRule] = []
    for rule_id in range(1, count + 1):
        kind = PRICE_KINDS[rule_id % len(PRICE_KINDS)]
        if rule_id <= HOT:
            threshold = round(rng.uniform(149.5, 150.5), 2)
        elif rule_id % 2:
            threshold = round(rng.uniform(20.0, 140.0), 2)
        else:
            threshold = round(rng.uniform(160.0, 400.0), 2)
        rules.append(
            AlertRule(
                id=rule_id,
                user_id=f"user{rule_id % 5000}",
                ticker="AAPL",
                kind=kind,
                threshold=threshold,
                rearm=Rearm.RECROSS,
                created_at=T0,
                updated_at=T0,
            )
        )
    return rules


def walk(count: int, rng: random.Random) -> list[LoggedPrice]:
    price, out = 150.0, []
    for _ in range(count):
        price = min(max(price + rng.choice((-0.15, -0.05, 0.05, 0.15)), BAND[0]), BAND[1])
        out.append(LoggedPrice(ticker="AAPL", price=round(price, 2), change_percent=0.5, volume=1e6))
    return out


def run_indexed(rules: list[AlertRule], prices: list[LoggedPrice]) -> tuple[float, float, float]:
    """Seconds per price, transitions per price, triggers per price."""
    evaluator = RuleIndex(rules)
    first = evaluator.evaluate(prices[0], T0)  # after a (re)load the first price checks every rule once
    evaluator.commit(first, first.transitions)
    moves = fires = 0
    at = T0
    started = time.perf_counter()
    for observation in prices:
        at += timedelta(seconds=1)
        evaluation = evaluator.evaluate(observation, at)
        evaluator.commit(evaluation, evaluation.transitions)
        moves += len(evaluation.transitions)
        fires += sum(1 for t in evaluation.transitions if t.event is not None)
    elapsed = time.perf_counter() - started
    return elapsed / len(prices), moves / len(prices), fires / len(prices)


def run_brute_force(rules: list[AlertRule], prices: list[LoggedPrice]) -> float:
    """Seconds per price when every rule is checked on every price."""
    state = {r.id: r for r in rules}
    at = T0
    started = time.perf_counter()
    for observation in prices:
        at += timedelta(seconds=1)
        for rule in list(state.values()):
            change = transition(rule, observation.price, observation, at)
            if change is not None:
                state[rule.id] = change.after
    return (time.perf_counter() - started) / len(prices)


def main() -> None:
    if sys.argv[1:2] == ["live"]:
        from bench import alert_live

        live = argparse.ArgumentParser(prog="bench_alert_eval.py live", description=alert_live.__doc__)
        alert_live.add_arguments(live)
        alert_live.main(live.parse_args(sys.argv[2:]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=int, default=20_000, help="price updates per indexed run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per size; the best is reported")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rows = []
    for size in SIZES:
        rules = make_rules(size, random.Random(args.seed))  # the same hot rules at every size
        prices = walk(args.prices, random.Random(args.seed + 1))  # and the same prices
        runs = [run_indexed(rules, prices) for _ in range(args.repeat)]
        per_price, moves, fires = min(runs)
        brute_prices = prices[: max(20, min(len(prices), 2_000_000 // size))]
        brute = min(run_brute_force(rules, brute_prices) for _ in range(max(1, args.repeat // 2)))
        rows.append((size, per_price, moves, fires, brute))

    base, base_brute = rows[0][1], rows[0][4]
    print(f"Alert evaluation per price update, one ticker ({args.prices} prices, best of {args.repeat})")
    print(f"Python {sys.version.split()[0]}, {HOT} rules in the price band, the rest outside it\n")
    header = (
        f"{'rules':>8} | {'indexed µs/price':>16} | {'ratio':>6} | {'side changes':>12} | {'triggers':>8} | "
        f"{'full scan µs/price':>18} | {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for size, per_price, moves, fires, brute in rows:
        print(
            f"{size:>8,} | {per_price * 1e6:>16.2f} | {per_price / base:>5.2f}x | {moves:>12.3f} | {fires:>8.3f} | "
            f"{brute * 1e6:>18.1f} | {brute / base_brute:>6.0f}x"
        )


if __name__ == "__main__":
    main()
