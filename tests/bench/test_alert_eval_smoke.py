"""The alert evaluation benchmarks cannot rot: a seconds-long run of bench/bench_alert_eval.py (both tables),
and the live bench's rules over every kind as the server reads them back.

The figures of so short a run mean nothing; what is checked is that the run completes, that the mixed table
goes through the service's path for real (bars closed, windows and series kept, every kind fired, the same
triggers at every size: the rules out of reach never fire), and that the live bench's rows are valid rules.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

from bench.alert_live import START, SpreadLevels, insert_rules
from bench.alert_mix import FEATURED, SLOTS, mixed_spec
from legend.adapters.sql import Database, SqlAlchemyAlertRepository, migrate
from legend.domain.alert_checks import check_rule
from legend.domain.alert_rules import KINDS, AlertKind, Evaluate, Metric, RuleSpec, Session

ROOT = Path(__file__).resolve().parents[2]


def test_both_tables_run_and_the_mixed_one_exercises_every_kind(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    run = subprocess.run(
        [sys.executable, "bench/bench_alert_eval.py", "--prices", "1200", "--repeat", "1", "--sizes", "40,300",
         "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Price kinds:" in run.stdout and "Every kind:" in run.stdout
    figures = json.loads(out.read_text())

    small, large = figures["price_kinds"]
    assert small["indexed_us_per_price"] > 0 and large["full_scan_us_per_price"] > 0
    assert small["triggers_per_price"] == large["triggers_per_price"] > 0  # only the 10 in the band fire

    rows = figures["every_kind"]
    assert [row["rules"] for row in rows] == [40, 300]
    for row in rows:
        assert row["price_us_per_price"] > 0 and row["all_us_per_price"] > 0, row
        assert row["kinds_fired"] == sorted(kind.value for kind in AlertKind), row
        assert row["bar_closes"] >= 20, row  # 20 minutes of 1m bars, and the 5m, 15m ones
    # One rule per slot in reach: at 300 rules every window length and series of the mix is kept
    assert (rows[1]["windows"], rows[1]["bar_series"]) == (6, 3)
    # The same hot rules at both sizes and nothing else fires: the same triggers
    assert rows[0]["all_triggers_per_price"] == rows[1]["all_triggers_per_price"] > 0
    assert rows[0]["price_triggers_per_price"] == rows[1]["price_triggers_per_price"] > 0


def test_the_mix_covers_every_kind_with_a_third_windowed_or_at_bar_closes() -> None:
    assert {slot.kind for slot in SLOTS} == set(AlertKind)
    assert len(SLOTS) == FEATURED * 3
    levels = SpreadLevels(50.0, 10_000)
    rng = random.Random(3)
    specs = [mixed_spec(n, rng, levels, ticker="BENCH", hot=False) for n in range(len(SLOTS) * 20)]
    for spec in specs:  # valid as a user would send it
        assert check_rule(RuleSpec(**{f: getattr(spec, f) for f in RuleSpec.__struct_fields__})) == spec
        assert spec.session is Session.ANY
    featured = [s for s in specs if KINDS[s.kind].window or s.evaluate is Evaluate.BAR_CLOSE]
    assert len(featured) * 3 == len(specs)


async def test_the_live_rules_over_every_kind_load_as_the_server_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "legend.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(database)
        args = argparse.Namespace(rules=600, users=7, spread=50.0, rate=100.0, seconds=2.0, seed=5,
                                  legend_root=str(ROOT))  # fmt: skip
        insert_rules(path, args, "all")
        rules = await SqlAlchemyAlertRepository(database).armed_rules()
    finally:
        await database.close()
    assert len(rules) == 600
    assert {rule.kind for rule in rules} == set(AlertKind)
    assert {rule.user_id for rule in rules} == {f"user{u}" for u in range(7)}
    for rule in rules:
        at_bar_close = rule.evaluate is Evaluate.BAR_CLOSE
        assert (rule.interval is not None) == at_bar_close, rule
        if at_bar_close and KINDS[rule.kind].metric is Metric.PRICE:
            assert rule.side is rule.met(START), rule  # stored as armed a while before, at the start
        else:
            assert rule.side is None, rule
