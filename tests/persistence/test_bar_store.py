"""The bar store (legend.ports.bars) on SQLite and on the real PostgreSQL: upserts, the position stored with
the bars, history pages, retention, and the query plans that keep "the last 500 bars" one range read."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import msgspec
import pytest
from sqlalchemy import text

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.adapters.sql import Database, SqlAlchemyAlertRepository
from legend.adapters.sql.bars import PRUNE_BATCH, SqlAlchemyBarStore, history_query, open_query, stale_query
from legend.bar_settings import BarSettings
from legend.bootstrap import bootstrap
from legend.domain.bar_building import BarBuilder
from legend.domain.bars import Bar, BarInterval
from legend.ports.bars import MAX_HISTORY, BarStore
from legend.ports.repositories import PositionConflict, PositionMove
from legend.settings import Settings
from tests.support.bars import STEP, T0, bar

LOG = "legend:price-log"


@pytest.fixture
def store(database: Database) -> BarStore:
    return SqlAlchemyBarStore(database)


def series(ticker: str, interval: BarInterval, count: int, *, open_last: bool = True) -> list[Bar]:
    """``count`` consecutive bars, the last one still open."""
    return [bar(ticker, interval, n, closed=not (open_last and n == count - 1)) for n in range(count)]


async def test_a_write_upserts_by_ticker_interval_and_start(store: BarStore) -> None:
    forming = bar(n=0, closed=False, close=100.0)
    await store.write([forming, bar(interval="5m")], PositionMove(LOG, None, "1"))
    await store.write([forming], PositionMove(LOG, "1", "2"))  # the same bar again: still one row
    assert await store.history("AAPL", "1m", 10) == [forming]
    finished = msgspec.structs.replace(forming, close=101.5, high=102.0, volume=5000, closed=True)
    await store.write([finished], PositionMove(LOG, "2", "3"))
    assert await store.history("AAPL", "1m", 10) == [finished]  # every figure replaced, closed now
    assert await store.history("AAPL", "5m", 10) == [bar(interval="5m")]  # another interval, its own row
    assert await store.position(LOG) == "3"


async def test_the_position_moves_with_the_bars_or_nothing_is_stored(
    store: BarStore, database: Database
) -> None:
    assert await store.position(LOG) is None
    await store.write([bar(n=0)], PositionMove(LOG, None, "10"))
    # a builder that lost its lease still believes the position is unset, or where it last wrote
    for stale in (PositionMove(LOG, None, "11"), PositionMove(LOG, "9", "11")):
        with pytest.raises(PositionConflict):
            await store.write([bar(n=0, close=1.0), bar(n=1)], stale)
    assert await store.history("AAPL", "1m", 10) == [bar(n=0)]  # neither its update nor its new bar
    assert await store.position(LOG) == "10"
    await store.write([], PositionMove(LOG, "10", "12"))  # entries that touched no bar still move it
    assert await store.position(LOG) == "12"
    # the same log's position of alert evaluation is another row: neither moves the other
    alerts = SqlAlchemyAlertRepository(database)
    assert await alerts.log_position(LOG) is None
    await alerts.record_changes([], "a", T0, PositionMove(LOG, None, "5"))
    assert await alerts.log_position(LOG) == "5" and await store.position(LOG) == "12"


async def test_of_two_builders_writing_from_the_same_position_exactly_one_stores(store: BarStore) -> None:
    await store.write([bar(n=0)], PositionMove(LOG, None, "1"))
    mine = [bar(n=1, close=1.0)]
    theirs = [bar(n=1, close=2.0), bar(n=2, close=2.0)]
    outcomes = await asyncio.gather(
        store.write(mine, PositionMove(LOG, "1", "2")),
        store.write(theirs, PositionMove(LOG, "1", "3")),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["NoneType", "PositionConflict"]
    winner = mine if outcomes[0] is None else theirs
    assert await store.history("AAPL", "1m", 10) == [bar(n=0), *winner]  # one version of each bar
    assert await store.position(LOG) == ("2" if winner is mine else "3")


async def test_the_takeover_figures_round_trip_so_a_successor_goes_on_exactly(store: BarStore) -> None:
    nyse = ExchangeCalendarsMarketCalendar("XNYS", start="2026-01-01", end="2026-12-31")
    first = BarBuilder(nyse.zone, nyse.session_on)
    first.add("AAPL", 100.0, 1_000, T0 + timedelta(seconds=5))
    first.add("AAPL", 101.0, 1_500, T0 + timedelta(seconds=30))
    opened = first.open_bars()
    assert {(b.last_at, b.session_volume) for b in opened} == {(T0 + timedelta(seconds=30), 1_500)}
    await store.write(opened, PositionMove(LOG, None, "2"))
    stored = await store.open_bars()
    assert sorted(stored, key=lambda b: b.interval) == sorted(opened, key=lambda b: b.interval)
    assert (await store.history("AAPL", "1m", 1))[0].last_at == T0 + timedelta(seconds=30)
    successor = BarBuilder(nyse.zone, nyse.session_on)
    successor.restore(stored)
    # a price stamped before the stored close does not become the close; the volume rises from 1,500
    later = T0 + timedelta(seconds=20)
    assert successor.add("AAPL", 99.0, 1_700, later) == first.add("AAPL", 99.0, 1_700, later)
    unknown = bar(n=5, closed=False)  # written by a store without them: null, read back as None
    await store.write([unknown], PositionMove(LOG, "2", "3"))
    assert (await store.history("AAPL", "1m", 1)) == [unknown]


async def test_history_pages_backwards_oldest_first_with_the_open_bar_last(store: BarStore) -> None:
    aapl = series("AAPL", "1m", 10)
    await store.write(
        [*aapl, *series("AAPL", "5m", 3), *series("MSFT", "1m", 4)], PositionMove(LOG, None, "1")
    )
    page = await store.history("AAPL", "1m", 4)
    assert page == aapl[6:] and not page[-1].closed and all(b.closed for b in page[:-1])
    assert await store.history("AAPL", "1m", 4, before=page[0].start) == aapl[2:6]
    assert await store.history("AAPL", "1m", 4, before=aapl[2].start) == aapl[:2]
    assert await store.history("AAPL", "1m", 4, before=aapl[0].start) == []
    assert await store.history("AAPL", "1m", MAX_HISTORY) == aapl
    assert await store.history("AAPL", "1m", 3, before=aapl[5].start + timedelta(seconds=1)) == aapl[3:6]
    assert await store.history("TSLA", "1m", 10) == []
    assert [b.start for b in await store.history("AAPL", "5m", 10)] == [T0 + k * STEP["5m"] for k in range(3)]


@pytest.mark.parametrize(
    ("limit", "before", "error"),
    [
        (0, None, "limit: expected 1 to 5000, got 0"),
        (MAX_HISTORY + 1, None, "limit: expected 1 to 5000, got 5001"),
        (10, datetime(2026, 3, 2, 14, 30), "before: 2026-03-02T14:30:00 has no time zone"),
    ],
)
async def test_history_refuses_bad_arguments(
    store: BarStore, limit: int, before: datetime | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        await store.history("AAPL", "1m", limit, before)


async def test_open_bars_are_the_unfinished_ones_of_every_ticker_and_interval(store: BarStore) -> None:
    written = [*series("AAPL", "1m", 3), *series("AAPL", "1d", 2), *series("MSFT", "1m", 2, open_last=False)]
    await store.write(written, PositionMove(LOG, None, "1"))
    assert await store.open_bars() == [written[4], written[2]]  # by ticker, interval (as text), start
    closing = msgspec.structs.replace(written[2], closed=True)
    await store.write([closing, bar(n=3, closed=False)], PositionMove(LOG, "1", "2"))
    assert await store.open_bars() == [written[4], bar(n=3, closed=False)]


async def test_prune_deletes_each_interval_past_its_retention_in_batches(store: BarStore) -> None:
    now = T0 + timedelta(days=40)
    keep = {"1m": timedelta(days=30), "1d": timedelta(days=3650)}
    old_minutes = [bar("AAPL", "1m", n) for n in range(PRUNE_BATCH + 7)]  # more than one batch
    recent = bar("AAPL", "1m", start=now - timedelta(days=1))
    stale_open = bar("MSFT", "1m", closed=False)  # the builder's to close: never pruned
    days = [bar("AAPL", "1d", n) for n in range(5)]  # 40 days old: well within 10 years
    hours = [bar("AAPL", "1h", n) for n in range(3)]  # not in keep: untouched
    await store.write([*old_minutes, recent, stale_open, *days, *hours], PositionMove(LOG, None, "1"))

    assert await store.prune(now, keep) == PRUNE_BATCH + 7
    assert await store.history("AAPL", "1m", MAX_HISTORY) == [recent]
    assert await store.history("MSFT", "1m", 10) == [stale_open]
    assert await store.history("AAPL", "1d", 10) == days
    assert await store.history("AAPL", "1h", 10) == hours
    assert await store.prune(now, keep) == 0
    # the boundary: a bar that started exactly ``keep`` ago stays, one a microsecond older goes
    edge = now - timedelta(days=30)
    await store.write(
        [bar("AAPL", "1m", start=edge), bar("AAPL", "1m", start=edge - timedelta(microseconds=1))],
        PositionMove(LOG, "1", "2"),
    )
    assert await store.prune(now, keep) == 1
    assert [b.start for b in await store.history("AAPL", "1m", 10)] == [edge, recent.start]
    with pytest.raises(ValueError, match="keep\\['1m'\\]: expected a positive period"):
        await store.prune(now, {"1m": timedelta(0)})


async def _plan(database: Database, sql: str) -> str:
    explain = "EXPLAIN" if database.backend == "postgresql" else "EXPLAIN QUERY PLAN"
    async with database.read() as conn:
        rows = (await conn.execute(text(f"{explain} {sql}"))).all()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


async def test_the_last_500_bars_of_a_ticker_are_one_index_range_read(
    store: BarStore, database: Database
) -> None:
    """The measurement behind the table's keys: the plans of history, open_bars and prune, on a table of
    18,000 bars whose statistics the planner has (ANALYZE)."""
    written: list[Bar] = []
    for ticker in ("AAPL", "MSFT", "TSLA"):
        for interval in ("1m", "5m", "1h"):
            written += series(ticker, interval, 2000)
    await store.write(written, PositionMove(LOG, None, "1"))
    async with database.write() as conn:
        await conn.execute(text("ANALYZE"))
    dialect = database.engine.dialect

    def sql(statement: object) -> str:
        return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]

    last_500 = await _plan(database, sql(history_query("AAPL", "1m", 500, None)))
    if database.backend == "postgresql":
        # Limit over a backward scan of the primary key, bounded by its prefix: no sort, no table scan
        assert "Index Scan Backward using pk_bars on bars" in last_500, last_500
        assert (
            "Index Cond: (((ticker)::text = 'AAPL'::text) AND ((\"interval\")::text = '1m'::text))"
            in last_500
        )
        assert "Seq Scan" not in last_500 and "Sort" not in last_500, last_500
    else:
        # WITHOUT ROWID: the rows are the primary key's B-tree; read backwards, no sort
        assert "SEARCH bars USING PRIMARY KEY (ticker=? AND interval=?)" in last_500, last_500
        assert "TEMP B-TREE" not in last_500 and "SCAN bars" not in last_500, last_500
    page = await store.history("AAPL", "1m", 500)
    assert page == written[1500:2000]

    open_plan = await _plan(database, sql(open_query()))
    assert "ix_bars_open" in open_plan, open_plan
    assert len(await store.open_bars()) == 9
    stale_plan = await _plan(database, sql(stale_query("1m", T0 + timedelta(minutes=100))))
    if database.backend == "postgresql":
        assert "ix_bars_interval_start" in stale_plan and "Seq Scan" not in stale_plan, stale_plan
    else:  # the index, or with as few tickers as here a skip-scan of the primary key: a search either way
        assert "SEARCH bars USING" in stale_plan and "SCAN bars" not in stale_plan, stale_plan
        assert "interval=? AND start<?" in stale_plan, stale_plan


async def test_the_server_prunes_old_bars_every_prune_interval(database: Database) -> None:
    settings = Settings(bars=BarSettings(keep_1m_days=30, prune_interval=0.05))
    services = bootstrap(
        settings,
        clock=FrozenClock(T0 + timedelta(days=40)),
        database=database,
        run_quote_poller=False,
        plugins={},
    )
    assert services.bars is not None
    recent = bar(start=T0 + timedelta(days=39))
    await services.bars.write([bar(n=0), bar(n=1), recent], PositionMove(LOG, None, "1"))
    await services.start()
    try:
        async with asyncio.timeout(10):
            while await services.bars.history("AAPL", "1m", 10) != [recent]:
                await asyncio.sleep(0.02)
        assert services.supervisor.status()["bar-pruning"]["failures"] == 0
    finally:
        await services.stop()
