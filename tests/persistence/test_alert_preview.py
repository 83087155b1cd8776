"""The preview (POST /api/alerts/preview's service): a rule run over the stored bars fires where live
evaluation fired on the same prices, with the same code; on real S&P 500 minute data, on SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.sql import Database
from legend.adapters.sql.bars import SqlAlchemyBarStore
from legend.domain.alert_checks import RuleInvalid
from legend.domain.alert_rules import AlertKind, Evaluate, Rearm, RuleSpec, Session
from legend.domain.bar_building import BarBuilder
from legend.domain.prices import LoggedPrice
from legend.services.alerts.preview import bar_prices, preview

from .conftest import alerting_service

DATA = (
    Path(__file__).resolve().parents[2] / "legend" / "adapters" / "quotes" / "data" / "SP500_NOV2019_IDay.csv"
)
NOW = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
START = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)  # the minutes are replayed from here on, one a minute


def closes(count: int = 390) -> list[float]:
    with DATA.open() as handle:
        rows = list(csv.DictReader(handle))
    return [float(row["Close"]) for row in rows[:count]]


SPECS = [
    RuleSpec(
        ticker="SPX", kind=AlertKind.CROSSING, threshold=3078.0, rearm=Rearm.RECROSS, session=Session.ANY
    ),
    RuleSpec(
        ticker="SPX",
        kind=AlertKind.EXITING_CHANNEL,
        lower=3074.0,
        upper=3082.0,
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    ),
    RuleSpec(
        ticker="SPX",
        kind=AlertKind.MOVING_DOWN,
        threshold=3.0,
        window_seconds=600,
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    ),
    RuleSpec(
        ticker="SPX",
        kind=AlertKind.MOVING_UP_PERCENT,
        threshold=0.08,
        window_seconds=900,
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    ),
    RuleSpec(
        ticker="SPX",
        kind=AlertKind.SMA_CROSS_UP,
        interval="5m",
        period=6,
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    ),
    RuleSpec(
        ticker="SPX",
        kind=AlertKind.SMA_CROSS_DOWN,
        interval="1m",
        period=20,
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    ),
    RuleSpec(
        ticker="SPX",
        kind=AlertKind.PRICE_ABOVE,
        threshold=3078.5,
        evaluate=Evaluate.BAR_CLOSE,
        interval="15m",
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    ),
    RuleSpec(
        ticker="SPX",
        kind=AlertKind.VOLUME_SPIKE,
        threshold=2.5,
        interval="5m",
        period=4,
        rearm=Rearm.RECROSS,
        session=Session.ANY,
    ),
]


async def test_the_preview_fires_where_live_evaluation_fired_on_the_same_prices(database: Database) -> None:
    clock = FrozenClock(START)
    service = alerting_service(database, clock)
    await service.start()
    rules = [await service.create_rule("alice", spec) for spec in SPECS]
    builder = BarBuilder("UTC", lambda day: None)  # as the service builds them without a calendar
    live: dict[int, list[tuple[float, str]]] = {rule.id: [] for rule in rules}
    stored = []
    volume = 0
    for minute, close in enumerate(closes()):
        instant = START + timedelta(minutes=minute)
        volume += 1000 + (minute % 7) * 400 + (50_000 if minute % 53 == 0 else 0)  # now and then a spike
        clock.set_now(instant)
        stored += builder.close_due(instant)
        builder.add("SPX", close, volume, instant)
        for event in await service.observe(
            LoggedPrice(ticker="SPX", price=close, volume=volume, timestamp=instant)
        ):
            assert event.rule_id is not None
            live[event.rule_id].append((event.price, event.message))
    store = SqlAlchemyBarStore(database)
    assert await store.insert_missing(stored + builder.open_bars()) > 390
    for rule, spec in zip(rules, SPECS, strict=True):
        result = await preview(spec, 1, store, NOW)
        assert result.bars == 390 and result.start == START
        assert [(f.price, f.message) for f in result.fires] == live[rule.id], spec.kind
    assert all(live.values()), str([(r.kind.value, len(live[r.id])) for r in rules])  # every rule fired
    await service.stop()


async def test_a_bar_stands_for_its_open_extremes_and_close_and_a_one_price_bar_for_that_price() -> None:
    builder = BarBuilder("UTC", lambda day: None)
    t = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    for second, price in ((0, 10.0), (10, 12.0), (20, 9.0), (50, 11.0)):
        builder.add("X", price, 100 + second, t + timedelta(seconds=second))
    [bar] = [b for b in builder.open_bars() if b.interval == "1m"]
    path = list(bar_prices(bar, 150.0))
    assert [p for _, p, _ in path] == [10.0, 9.0, 12.0, 11.0]  # the low is nearer the open: first
    assert path[0][0] == t and path[-1][0] == t + timedelta(seconds=50)
    assert [v for _, _, v in path] == [100.0, 100.0, 100.0, 150.0]
    builder2 = BarBuilder("UTC", lambda day: None)
    builder2.add("X", 10.0, 100, t + timedelta(seconds=7))
    [one] = [b for b in builder2.open_bars() if b.interval == "1m"]
    assert list(bar_prices(one, 100.0)) == [(t + timedelta(seconds=7), 10.0, 100.0)]


async def test_bad_previews_are_refused_before_anything_runs(database: Database) -> None:
    store = SqlAlchemyBarStore(database)
    with pytest.raises(ValueError, match="days: must be from 1 to 30"):
        await preview(SPECS[0], 31, store, NOW)
    with pytest.raises(RuleInvalid, match="upper: must be greater than lower"):
        spec = RuleSpec(ticker="SPX", kind=AlertKind.ENTERING_CHANNEL, lower=10.0, upper=10.0)
        await preview(spec, 1, store, NOW)
    empty = await preview(SPECS[0], 30, store, NOW)  # no bars stored: nothing to say, no error
    assert (empty.fires, empty.bars, empty.start) == ([], 0, None)
