"""Alert evaluation cost per price update, against the number of rules on the ticker; and, with ``live``,
triggers end to end through a real server under a burst (bench/alert_live.py).

    python bench/bench_alert_eval.py [--prices 20000] [--repeat 5] [--seed 1] [--sizes 100,10000,100000]
    python bench/bench_alert_eval.py live [--rules 100000] [--rate 1000] [--seconds 10] [--mix both]

One ticker carries 100, 10,000 and 100,000 armed rules; prices walk in a narrow band, one a second.

**Price kinds** (the first table): the four price kinds. A fixed handful (10) sits in the band the price
walks through, so they keep crossing and firing; every other rule sits well away from it. The indexed
evaluator (``RuleIndex``: evaluate + commit) should cost about the same per price whatever the number of
rules; a brute-force scan of every rule is shown beside it for contrast. Ratios: against its 100 rules.

**Every kind** (the second table): the same sizes through the service's own code path, ``AlertEvaluation``
reading an in-memory price log of real ``price_update`` frames in batches (decoding, the bars it builds
and closes by log time, the windows and bar series, evaluate, commit, folding a batch's changes), with a
repository that stores nothing (no database: the evaluation's own cost). Once with the price-kinds rules
above, once with rules mixed over every kind (bench/alert_mix.py: a third windowed, moving-average,
volume-spike or evaluated at bar closes). As above, one rule per slot of the mix (30) is in reach and
fires; the rest are out of reach (levels far from the band; moving averages on hourly bars with periods
longer than the run, so their series never fill). An hour of prices before the measured ones fills every
window and closes every interval once. Ratios: all kinds over price kinds at the same size, and over the
price-kinds 100-rule figure of this table (the baseline).

Figures are the best of ``--repeat`` runs (a run per size and table, interleaved), µs per price update
(the bar closes a price causes are part of its cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import msgspec

from bench.alert_mix import FEATURED, PRICE_KINDS, SLOTS, Levels, Slot, mixed_spec
from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.price_log import MemoryPriceLog
from legend.domain.alert_index import Observation, RuleIndex, transition
from legend.domain.alert_rules import KINDS, AlertEvent, AlertRule, Level, Rearm, new_rule
from legend.domain.bars import BarInterval
from legend.domain.inputs import PriceInput
from legend.domain.prices import price_update
from legend.domain.stream_name import ticker_stream
from legend.ports.repositories import AlertRepository, ChangesRecorded, PositionMove, RuleChange
from legend.services.alerts.evaluation import AlertEvaluation

SIZES = (100, 10_000, 100_000)
HOT = 10  # price-kinds rules inside the price band: the ones that fire
BAND = (149.0, 151.0)
CENTRE = 150.0  # the previous close: change percent is taken from it
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
TICK_SECONDS = 1.0  # log time between two prices
WARM_SECONDS = 3600  # prices before the measured ones (every window full, every interval closed once)
SHARES, SPIKE_EVERY, SPIKE = 500, 240, 60_000  # shares per price; a block trade every 4 minutes


class Tick(msgspec.Struct, frozen=True):
    price: float
    change_percent: float
    volume: float  # the session volume


def session_volume(i: int) -> float:
    """The session volume after the ``i``-th price (from 0): SHARES a price, a block every SPIKE_EVERY."""
    return float(SHARES * (i + 1) + (SPIKE - SHARES) * ((i + 1) // SPIKE_EVERY))


def walk(count: int, rng: random.Random) -> list[Tick]:
    """A random walk in BAND, with the session volume growing (``session_volume``)."""
    price, out = CENTRE, []
    for i in range(count):
        price = round(min(max(price + rng.choice((-0.15, -0.05, 0.05, 0.15)), BAND[0]), BAND[1]), 2)
        out.append(Tick(price, round((price - CENTRE) / CENTRE * 100, 4), session_volume(i)))
    return out


# ───────────────────────────── the rules ─────────────────────────────


def make_rules(count: int, rng: random.Random) -> list[AlertRule]:
    """Price kinds: HOT rules in the band, the rest far from it."""
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


class BandLevels:
    """Levels for the walk in BAND over ``prices`` measured prices: in reach (hot) or never reached."""

    def __init__(self, prices: int) -> None:
        warm = int(WARM_SECONDS / TICK_SECONDS)
        self.volumes = (session_volume(warm), session_volume(warm + prices - 1))  # over the measured run

    def draw(self, level: Level, rng: random.Random, hot: bool) -> float:
        side = rng.choice((-1.0, 1.0))
        if level is Level.PRICE:
            if hot:
                return round(rng.uniform(149.5, 150.5), 2)
            return round(rng.uniform(20.0, 140.0) if side < 0 else rng.uniform(160.0, 400.0), 2)
        if level is Level.PERCENT:
            return round(rng.uniform(-0.3, 0.3) if hot else side * rng.uniform(5.0, 50.0), 2)
        if level is Level.VOLUME:
            return float(round(rng.uniform(*self.volumes))) if hot else float(rng.randrange(10**12, 10**13))
        if level is Level.AMOUNT:
            return round(rng.uniform(0.2, 1.0) if hot else rng.uniform(5.0, 100.0), 2)
        if level is Level.MOVE_PERCENT:
            return round(rng.uniform(0.1, 0.6) if hot else rng.uniform(5.0, 100.0), 2)
        return round(rng.uniform(1.2, 2.0) if hot else rng.uniform(100.0, 1000.0), 2)  # MULTIPLE

    def channel(self, rng: random.Random, hot: bool) -> tuple[float, float]:
        if hot:
            lower = round(rng.uniform(149.3, 149.9), 2)
        else:
            lower = round(rng.uniform(20.0, 130.0) if rng.random() < 0.5 else rng.uniform(160.0, 390.0), 2)
        return lower, round(lower + (rng.uniform(0.3, 1.0) if hot else rng.uniform(1.0, 10.0)), 2)

    def series(self, slot: Slot, rng: random.Random, hot: bool) -> tuple[BarInterval, int]:
        if hot:
            return slot.bar_close or "1m", rng.choice((5, 9, 20))
        return "1h", rng.choice((50, 200))  # 50 hours at least: never ready in the run


def mixed_rules(count: int, rng: random.Random, levels: Levels) -> list[AlertRule]:
    """Every kind: the first rule of each slot of the mix in reach, the rest out of it."""
    return [
        new_rule(mixed_spec(n, rng, levels, ticker="AAPL", hot=n <= len(SLOTS)), f"user{n % 5000}", T0, n)
        for n in range(1, count + 1)
    ]


# ───────────────────────────── price kinds: the index alone ─────────────────────────────


def observations(ticks: Sequence[Tick]) -> list[Observation]:
    at = T0 + timedelta(seconds=WARM_SECONDS)
    step = timedelta(seconds=TICK_SECONDS)
    return [
        Observation("AAPL", t.price, t.change_percent, t.volume, at + i * step) for i, t in enumerate(ticks)
    ]


def run_indexed(rules: list[AlertRule], prices: list[Observation]) -> tuple[float, float, float]:
    """Seconds per price, transitions per price, triggers per price."""
    evaluator = RuleIndex(rules)
    first = evaluator.evaluate(msgspec.structs.replace(prices[0], at=T0))  # after a (re)load the first
    evaluator.commit(first, first.transitions)  # price checks every rule once: not measured
    moves = fires = 0
    started = time.perf_counter()
    for observation in prices:
        evaluation = evaluator.evaluate(observation)
        evaluator.commit(evaluation, evaluation.transitions)
        moves += len(evaluation.transitions)
        fires += sum(1 for t in evaluation.transitions if t.event is not None)
    elapsed = time.perf_counter() - started
    return elapsed / len(prices), moves / len(prices), fires / len(prices)


def run_brute_force(rules: list[AlertRule], prices: list[Observation]) -> float:
    """Seconds per price when every rule is checked on every price."""
    state = {r.id: r for r in rules}
    started = time.perf_counter()
    for observation in prices:
        for rule in list(state.values()):
            change = transition(rule, observation.price, None, observation)
            if change is not None:
                state[rule.id] = change.after
    return (time.perf_counter() - started) / len(prices)


# ───────────────────────────── every kind: the service's path ─────────────────────────────


class _NoDatabase:
    """The part of AlertRepository evaluation uses, storing nothing: the evaluation's own cost."""

    def __init__(self, rules: list[AlertRule]) -> None:
        self._rules = rules
        self.triggers = 0
        self.kinds: set[str] = set()  # the kinds that fired

    async def armed_rules(self) -> list[AlertRule]:
        return list(self._rules)

    async def log_position(self, name: str) -> str | None:
        return None

    async def rules_by_id(self, rule_ids: Sequence[int]) -> list[AlertRule]:
        wanted = set(rule_ids)
        return [rule for rule in self._rules if rule.id in wanted]

    async def record_changes(
        self,
        changes: Sequence[RuleChange],
        owner: str,
        claim_until: datetime,
        position: PositionMove | None = None,
    ) -> ChangesRecorded:
        events: list[AlertEvent] = []
        for change in changes:
            for event in change.events:
                self.triggers += 1
                self.kinds.add(event.alert_type)
                events.append(event.stored(self.triggers))
        return ChangesRecorded(events, [])


def frames(ticks: Sequence[Tick]) -> list[str]:
    """The ``price_update`` frames the backplane would log for ``ticks``, one TICK_SECONDS apart from T0."""
    stream, out = ticker_stream("AAPL"), []
    for i, tick in enumerate(ticks):
        at = T0 + timedelta(seconds=(i + 1) * TICK_SECONDS)
        body = PriceInput(ticker="AAPL", price=tick.price, volume=int(tick.volume), previous_close=CENTRE)
        out.append(msgspec.json.encode(price_update(body, at, stream)).decode())
    return out


async def _through(evaluation: AlertEvaluation, price_log: MemoryPriceLog) -> None:
    end = await price_log.end()
    while evaluation.position != end:
        await evaluation.step(0.0)


class ServiceRun(msgspec.Struct, frozen=True):
    """One measured run through the service's path."""

    per_price: float  # seconds
    triggers: float  # per price
    bar_closes: int  # bar closes evaluated (every interval)
    windows: int  # moving windows kept (per ticker, source and length)
    series: int  # bar series kept (per ticker and interval)
    kinds: frozenset[str]  # the kinds that fired


async def _run_service(rules: list[AlertRule], warm: list[str], measured: list[str]) -> ServiceRun:
    clock = FrozenClock(T0)
    database = _NoDatabase(rules)
    price_log = MemoryPriceLog(clock, log_size=len(warm) + len(measured) + 1)

    async def hold(name: str, ttl: float) -> bool:
        return True

    async def deliver(events: list[AlertEvent]) -> None:
        return None

    async def recover() -> None:
        return None

    evaluation = AlertEvaluation(
        cast(AlertRepository, database), price_log, hold, clock, deliver, recover, instance_id="bench"
    )
    await evaluation.take_over()
    for frame in warm:
        clock.advance(TICK_SECONDS)
        price_log.append("price", frame)
    await _through(evaluation, price_log)
    for frame in measured:
        clock.advance(TICK_SECONDS)
        price_log.append("price", frame)
    triggers, observed = database.triggers, evaluation.prices_evaluated
    database.kinds.clear()
    started = time.perf_counter()
    await _through(evaluation, price_log)
    elapsed = time.perf_counter() - started
    n = len(measured)
    return ServiceRun(
        elapsed / n,
        (database.triggers - triggers) / n,
        evaluation.prices_evaluated - observed - n,
        int(cast(int, evaluation.status()["windows"])),
        int(cast(int, evaluation.status()["bar_series"])),
        frozenset(database.kinds),
    )


def run_service(rules: list[AlertRule], warm: list[str], measured: list[str]) -> ServiceRun:
    """The measured prices through AlertEvaluation, after ``warm`` (not measured)."""
    return asyncio.run(_run_service(rules, warm, measured))


# ───────────────────────────── the tables ─────────────────────────────


def price_table(args: argparse.Namespace, sizes: Sequence[int]) -> list[dict[str, object]]:
    rows = []
    ticks = walk(args.prices, random.Random(args.seed + 1))  # the same prices at every size
    prices = observations(ticks)
    for size in sizes:
        rules = make_rules(size, random.Random(args.seed))  # the same hot rules at every size
        runs = [run_indexed(rules, prices) for _ in range(args.repeat)]
        per_price, moves, fires = min(runs)
        brute_prices = prices[: max(20, min(len(prices), 2_000_000 // size))]
        brute = min(run_brute_force(rules, brute_prices) for _ in range(max(1, args.repeat // 2)))
        rows.append((size, per_price, moves, fires, brute))

    base, base_brute = rows[0][1], rows[0][4]
    print(
        f"Price kinds: alert evaluation per price update, one ticker ({args.prices} prices, best of {args.repeat})"
    )
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
    return [
        {"rules": size, "indexed_us_per_price": round(per_price * 1e6, 3), "ratio": round(per_price / base, 3),
         "triggers_per_price": fires, "full_scan_us_per_price": round(brute * 1e6, 3)}
        for size, per_price, moves, fires, brute in rows
    ]  # fmt: skip


def mixed_table(args: argparse.Namespace, sizes: Sequence[int]) -> list[dict[str, object]]:
    ticks = walk(int(WARM_SECONDS / TICK_SECONDS) + args.prices, random.Random(args.seed + 1))
    all_frames = frames(ticks)
    warm, measured = all_frames[: -args.prices], all_frames[-args.prices :]
    levels = BandLevels(args.prices)
    rule_sets: dict[tuple[str, int], list[AlertRule]] = {}
    for size in sizes:
        rule_sets[("price", size)] = make_rules(size, random.Random(args.seed))
        rule_sets[("all", size)] = mixed_rules(size, random.Random(args.seed), levels)
    best: dict[tuple[str, int], ServiceRun] = {}
    for _ in range(args.repeat):  # interleaved: a neighbour's burst hits every size and mix alike
        for key, rules in rule_sets.items():
            run = run_service(rules, warm, measured)
            if key not in best or run.per_price < best[key].per_price:
                best[key] = run

    base = best[("price", sizes[0])].per_price
    print(
        f"\nEvery kind: the service's path (AlertEvaluation on an in-memory log, no database), "
        f"{args.prices} prices after {WARM_SECONDS} s of warm-up, best of {args.repeat}"
    )
    print(
        f"all kinds: {len(SLOTS)} slots ({FEATURED} windowed or at bar closes), 1 rule per slot in reach, "
        "the rest out of it; ratios against price kinds, same run\n"
    )
    header = (
        f"{'rules':>8} | {'price kinds µs/price':>20} | {'all kinds µs/price':>18} | {'all / price':>11} | "
        f"{f'all / price@{sizes[0]:,}':>17} | {'triggers (price, all)':>21} | {'bar closes':>10} | {'windows, series':>15} | kinds fired"
    )
    print(header)
    print("-" * len(header))
    rows: list[dict[str, object]] = []
    for size in sizes:
        price, every = best[("price", size)], best[("all", size)]
        print(
            f"{size:>8,} | {price.per_price * 1e6:>20.2f} | {every.per_price * 1e6:>18.2f} | "
            f"{every.per_price / price.per_price:>10.2f}x | {every.per_price / base:>16.2f}x | "
            f"{f'{price.triggers:.3f}, {every.triggers:.3f}':>21} | {every.bar_closes:>10} | "
            f"{f'{every.windows}, {every.series}':>15} | "
            f"{len(every.kinds)}/{len(KINDS)}"
        )
        rows.append(
            {
                "rules": size,
                "price_us_per_price": round(price.per_price * 1e6, 3),
                "all_us_per_price": round(every.per_price * 1e6, 3),
                "all_over_price": round(every.per_price / price.per_price, 3),
                "all_over_base": round(every.per_price / base, 3),
                "price_triggers_per_price": price.triggers,
                "all_triggers_per_price": every.triggers,
                "bar_closes": every.bar_closes,
                "windows": every.windows,
                "bar_series": every.series,
                "kinds_fired": sorted(every.kinds),
            }
        )
    return rows


def main() -> None:
    if sys.argv[1:2] == ["live"]:
        from bench import alert_live

        live = argparse.ArgumentParser(prog="bench_alert_eval.py live", description=alert_live.__doc__)
        alert_live.add_arguments(live)
        alert_live.main(live.parse_args(sys.argv[2:]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=int, default=20_000, help="price updates measured per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per size; the best is reported")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="rule counts, comma-separated")
    parser.add_argument("--table", choices=("price", "all", "both"), default="both")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.prices < 1 or args.repeat < 1 or not sizes or min(sizes) < 1:
        parser.error("--prices, --repeat and every size must be at least 1")
    figures: dict[str, object] = {"prices": args.prices, "repeat": args.repeat}
    if args.table in ("price", "both"):
        figures["price_kinds"] = price_table(args, sizes)
    if args.table in ("all", "both"):
        figures["every_kind"] = mixed_table(args, sizes)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
