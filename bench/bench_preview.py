"""How long a rule preview takes over 30 days of stored 1-minute bars of one ticker (the target: within a
second), per kind, on SQLite: the read of the bars and the evaluation, separately.

    python bench/bench_preview.py [--days 30] [--hours 16] [--repeat 3]

Bars come from a random walk over ``--hours`` a weekday (16: pre-market to after-hours, 960 bars a day;
6.5: the regular session), every bar of four different prices (the worst case: four prices evaluated per
bar). Figures are CPU seconds of this process (its threads included), the best of ``--repeat`` runs, so
that other work on the machine counts less; the bar read alone is the baseline of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from legend.adapters.sql import Database, migrate
from legend.adapters.sql.bars import SqlAlchemyBarStore
from legend.domain.alert_rules import AlertKind, Evaluate, Rearm, RuleSpec, Session
from legend.domain.bars import Bar
from legend.services.alerts.preview import minute_bars, preview

NOW = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
SPECS = {
    "crossing": RuleSpec(ticker="AAPL", kind=AlertKind.CROSSING, threshold=150.0),
    "entering_channel": RuleSpec(ticker="AAPL", kind=AlertKind.ENTERING_CHANNEL, lower=148.0, upper=152.0),
    "moving_up (1 h)": RuleSpec(ticker="AAPL", kind=AlertKind.MOVING_UP, threshold=2.0, window_seconds=3600),
    "sma_cross_up (5m, 50)": RuleSpec(ticker="AAPL", kind=AlertKind.SMA_CROSS_UP, interval="5m", period=50),
    "volume_spike (1m, 20)": RuleSpec(
        ticker="AAPL", kind=AlertKind.VOLUME_SPIKE, threshold=3.0, interval="1m", period=20
    ),
    "price_above at 15m closes": RuleSpec(
        ticker="AAPL",
        kind=AlertKind.PRICE_ABOVE,
        threshold=151.0,
        evaluate=Evaluate.BAR_CLOSE,
        interval="15m",
    ),
}


def walk(days: int, hours: float, rng: random.Random) -> list[Bar]:
    bars, price, volume = [], 150.0, 0
    for day in range(days, 0, -1):
        start = (NOW - timedelta(days=day)).replace(hour=8, minute=0)
        if start.weekday() >= 5:
            continue
        volume = 0
        for minute in range(int(hours * 60)):
            at = start + timedelta(minutes=minute)
            moves = [price + rng.uniform(-0.3, 0.3) for _ in range(3)]
            high, low = max(price, *moves) + 0.01, min(price, *moves) - 0.01
            close = moves[-1]
            traded = rng.randint(100, 5000)
            volume += traded
            bars.append(Bar(ticker="AAPL", interval="1m", start=at, open=price, high=high, low=low, close=close,
                            volume=traded, regular=True, closed=True, last_at=at + timedelta(seconds=59),
                            session_volume=volume))  # fmt: skip
            price = min(max(close, 140.0), 160.0)
    return bars


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/bench.sqlite"
        database = Database(url)
        await migrate.upgrade(database)
        store = SqlAlchemyBarStore(database)
        bars = walk(args.days, args.hours, random.Random(1))
        for index in range(0, len(bars), 5000):
            await store.insert_missing(bars[index : index + 5000])
        read = []
        for _ in range(args.repeat):
            started = time.process_time()
            await minute_bars(store, "AAPL", NOW - timedelta(days=args.days), NOW)
            read.append(time.process_time() - started)
        base = min(read)
        print(f"Preview over {args.days} days of 1-minute bars ({len(bars):,} bars, {args.hours} h a day), "
              f"SQLite, best of {args.repeat}; Python {sys.version.split()[0]}\n")  # fmt: skip
        print(f"{'rule':<28} | {'seconds':>7} | {'x bar read':>10} | {'fires':>6}")
        print(f"{'(reading the bars alone)':<28} | {base:>7.3f} | {1.0:>9.2f}x |")
        for name, spec in SPECS.items():
            spec = RuleSpec(**{**{f: getattr(spec, f) for f in spec.__struct_fields__}, "rearm": Rearm.RECROSS,
                               "session": Session.ANY})  # fmt: skip
            times, fires = [], 0
            for _ in range(args.repeat):
                started = time.process_time()
                result = await preview(spec, args.days, store, NOW)
                times.append(time.process_time() - started)
                fires = len(result.fires)
            best = min(times)
            print(f"{name:<28} | {best:>7.3f} | {best / base:>9.2f}x | {fires:>6}")
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--hours", type=float, default=16.0)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
