"""The single server's price log in the database (``SqlPriceLog``), on SQLite and PostgreSQL: order and
positions, group commit, trimming, a failed commit, and alert evaluation replaying it after a crash.

A "crash" here is a second log (or a second set of services) built on the same database while the first
is simply dropped, never stopped: what the first had not committed, or evaluated, is what a SIGKILL loses.
The real-process version is tests/persistence/test_crash_safety.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.sql import Database, SqlAlchemyAlertRepository
from legend.adapters.sql import price_log as sql_price_log
from legend.adapters.sql.bars import SqlAlchemyBarStore
from legend.adapters.sql.price_log import SqlPriceLog
from legend.adapters.sql.price_log_stores import FileStore, TableStore
from legend.adapters.sql.tables import alert_price_log
from legend.bootstrap import Services, bootstrap
from legend.domain.alert_rules import AlertKind, Rearm, RuleSpec
from legend.domain.inputs import PriceInput
from legend.ports.backplane import BackplaneUnavailable, Outgoing
from legend.ports.price_log import LogRead
from legend.ports.repositories import PositionMove
from legend.settings import Settings


async def stored_ids(database: Database) -> list[int]:
    async with database.read() as conn:
        return [int(i) for i in (await conn.scalars(select(alert_price_log.c.id).order_by("id"))).all()]


async def started(database: Database, clock: FrozenClock, log_size: int = 100_000) -> SqlPriceLog:
    log = SqlPriceLog(database, clock, log_size)
    await log.start()
    return log


async def test_entries_keep_append_order_and_their_ids_carry_on_after_a_restart(
    database: Database, clock: FrozenClock
) -> None:
    log = await started(database, clock)
    assert await log.end() == "0"
    await log.append("price", '{"ticker":"AAPL","price":1}')
    await log.note_rule_change(7)
    await log.append("price", '{"ticker":"AAPL","price":2}')
    read = await log.read(None, 10, 0)  # from memory
    assert [(e.id, e.kind, e.data) for e in read.entries] == [
        ("1", "price", '{"ticker":"AAPL","price":1}'),
        ("2", "rule", "7"),
        ("3", "price", '{"ticker":"AAPL","price":2}'),
    ]
    assert not read.missed and read.entries[0].at == clock.now().timestamp()
    assert [e.id for e in (await log.read("1", 1, 0)).entries] == ["2"]
    assert (await log.read("3", 10, 0)).entries == []

    again = await started(database, clock)  # the process died; a new one on the same database
    assert await again.end() == "3"
    replayed = await again.read("1", 10, 0)  # from the table
    assert replayed.entries == read.entries[1:] and not replayed.missed
    await again.append("price", '{"ticker":"AAPL","price":3}')
    assert [e.id for e in (await again.read("3", 10, 0)).entries] == ["4"]
    assert await stored_ids(database) == [1, 2, 3, 4]


async def test_concurrent_appends_share_commits_and_are_numbered_in_call_order(
    database: Database, clock: FrozenClock
) -> None:
    log = await started(database, clock)
    await asyncio.gather(*(log.append("price", str(n)) for n in range(200)))
    assert log.stored == 200
    assert log.commits <= 2  # the first append's commit, then everything that came during it
    read = await log.read(None, 1000, 0)
    assert [e.data for e in read.entries] == [str(n) for n in range(200)]
    assert [e.id for e in read.entries] == [str(n) for n in range(1, 201)]


async def test_a_read_waits_for_the_next_commit(database: Database, clock: FrozenClock) -> None:
    log = await started(database, clock)
    reading = asyncio.create_task(log.read(None, 10, 10.0))
    await asyncio.sleep(0)
    assert not reading.done()
    await log.append("price", "x")
    read = await asyncio.wait_for(reading, 10)
    assert [e.data for e in read.entries] == ["x"]


@pytest.fixture
async def five_trimmed_on_commit(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> SqlPriceLog:
    """A started log of five entries (ids 1-5) that trims what is done on every commit."""
    monkeypatch.setattr(sql_price_log, "TRIM_SECONDS", 0.0)
    log = await started(database, clock)
    for n in range(5):
        await log.append("price", str(n))
    return log


async def test_evaluated_entries_are_trimmed_with_the_next_append(
    database: Database, clock: FrozenClock, five_trimmed_on_commit: SqlPriceLog
) -> None:
    log = five_trimmed_on_commit
    repository = SqlAlchemyAlertRepository(database)
    await repository.record_changes([], "a", clock.now(), PositionMove(log.name, None, "3"))  # 1-3 evaluated
    await log.append("price", "5")
    assert await stored_ids(database) == [4, 5, 6]
    await repository.record_changes([], "a", clock.now(), PositionMove(log.name, "3", "6"))  # all evaluated
    await log.append("price", "6")
    assert await stored_ids(database) == [7]  # what is left: the newest, the ids carry on from it
    assert log.trimmed == 6

    again = await started(database, clock)
    assert await again.end() == "7"
    assert [e.id for e in (await again.read("6", 10, 0)).entries] == ["7"]


async def test_entries_the_bar_builder_has_not_stored_are_kept_though_evaluation_has(
    database: Database, clock: FrozenClock, five_trimmed_on_commit: SqlPriceLog
) -> None:
    log = five_trimmed_on_commit
    bars = SqlAlchemyBarStore(database)
    await bars.write([], PositionMove(log.name, None, "2"))  # bars built from 1-2
    repository = SqlAlchemyAlertRepository(database)
    await repository.record_changes([], "a", clock.now(), PositionMove(log.name, None, "5"))  # 1-5 evaluated
    await log.append("price", "5")
    assert await stored_ids(database) == [3, 4, 5, 6]  # the lower position: 3 onwards is the builder's
    await bars.write([], PositionMove(log.name, "2", "5"))
    await log.append("price", "6")
    assert await stored_ids(database) == [6, 7]


async def test_past_log_size_the_oldest_entries_go_and_a_reader_behind_them_is_told(
    database: Database, clock: FrozenClock
) -> None:
    log = await started(database, clock, log_size=10)
    for n in range(30):
        await log.append("price", str(n))
    ids = await stored_ids(database)
    assert len(ids) <= 10 and ids[-1] == 30
    again = await started(database, clock, log_size=10)  # read from the table
    behind = await again.read("5", 100, 0)
    assert behind.missed and behind.entries[0].id == str(ids[0])
    assert not (await again.read(str(ids[0]), 100, 0)).missed


async def test_a_failed_commit_fails_its_appends_and_the_next_commit_carries_on(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = await started(database, clock)
    await log.append("price", "1")
    real = database.write

    @contextlib.asynccontextmanager
    async def broken(lock: str | None = None) -> AsyncIterator[Any]:
        raise OSError("disk full")
        yield  # pragma: no cover

    monkeypatch.setattr(database, "write", broken)
    with pytest.raises(BackplaneUnavailable, match="disk full"):
        await log.append("price", "lost")
    assert log.status()["failures"] == 1 and "disk full" in str(log.status()["last_error"])
    monkeypatch.setattr(database, "write", real)
    await log.append("price", "2")
    assert [e.data for e in (await log.read(None, 10, 0)).entries] == ["1", "2"]
    assert await stored_ids(database) == [1, 2]  # gapless: the failed entry's id was given again


async def test_a_publish_is_answered_only_once_its_price_is_committed(
    database: Database, clock: FrozenClock
) -> None:
    log = await started(database, clock)
    backplane = InMemoryBackplane(clock, price_log=log)
    delivered: list[str] = []
    await backplane.start(lambda envelope: delivered.append(envelope.stream))
    body = b'{"type":"price_update","ticker":"AAPL","price":1.0}'
    await backplane.publish(Outgoing("ticker:AAPL", "price_updates", "price_update", body, 10))
    assert delivered == ["ticker:AAPL"]
    assert await stored_ids(database) == [1]  # committed before publish returned
    await backplane.publish(Outgoing("patterns", "patterns", "pattern_alert", b"{}", 10))
    assert await stored_ids(database) == [1]  # only prices enter the log
    assert backplane.health()["price_log"] == log.status()
    await backplane.stop()


async def test_read_back_takes_what_the_table_trimmed_from_memory_and_says_so_after_a_restart(
    database: Database, clock: FrozenClock, five_trimmed_on_commit: SqlPriceLog
) -> None:
    """Entries every reader has stored leave the table with the next commit, but the log keeps its newest
    ones in memory: reading back in the running process gets them all; a restarted one only what the table
    kept, and is told the log no longer reaches back."""
    log = five_trimmed_on_commit
    repository = SqlAlchemyAlertRepository(database)
    await repository.record_changes([], "a", clock.now(), PositionMove(log.name, None, "5"))  # all read
    clock.advance(1.0)
    await log.append("status", '{"type":"market_status","status":"halted"}')
    assert await stored_ids(database) == [6]
    everything = (await log.read(None, 10, 0)).entries
    assert [e.id for e in everything] == ["1", "2", "3", "4", "5", "6"]
    assert await log.read_back(None, 0.0, 10) == LogRead(everything)
    assert await log.read_back("5", everything[0].at, 2) == LogRead(everything[3:5])

    again = await started(database, clock)
    assert await again.read_back(None, 0.0, 10) == LogRead(everything[5:], missed=True)
    assert await again.read_back("5", 0.0, 10) == LogRead([], missed=True)
    assert await again.read_back("9" * 20, 0.0, 10) == LogRead(everything[5:], missed=True)  # past any id
    clock.advance(1.0)
    await again.append("price", "7")  # in memory from here on
    await repository.record_changes([], "a", clock.now(), PositionMove(log.name, "5", "7"))
    await again.append("price", "8")
    await again.append("price", "9")
    assert await stored_ids(database) == [8, 9]  # the table trimmed past the oldest in memory
    back = await again.read_back(None, 0.0, 10)
    assert ([e.id for e in back.entries], back.missed) == (["7", "8", "9"], True)
    assert await again.read_back(None, clock.now().timestamp(), 10) == back  # the oldest left is from then


# ───────────── alert evaluation on the log, across a crash ─────────────

BREAKOUT = RuleSpec(ticker="AAPL", kind=AlertKind.BREAKOUT, threshold=150.0, rearm=Rearm.RECROSS)


def services(database: Database, clock: FrozenClock) -> Services:
    return bootstrap(Settings(), clock=clock, database=database, run_quote_poller=False, plugins={})


async def test_a_crossing_logged_but_not_evaluated_before_a_crash_fires_once_after_it(
    database: Database, clock: FrozenClock
) -> None:
    first = services(database, clock)
    await first.streaming.start()  # the backplane and its log; evaluation is driven by hand
    evaluation = first.alerting.evaluation
    assert evaluation.price_log.durable and evaluation.price_log.name == "database:price-log"
    await evaluation.take_over()
    rule = await first.alerting.create_rule("alice", BREAKOUT)
    await first.publisher.price(PriceInput(ticker="AAPL", price=149.0))
    assert await evaluation.step(0) == []  # the rule's side, and the position, stored
    await first.publisher.price(PriceInput(ticker="AAPL", price=151.0))  # answered: committed
    # ... and the process dies before evaluating it

    second = services(database, clock)
    await second.streaming.start()
    await second.alerting.evaluation.take_over()
    fired = await second.alerting.evaluation.step(0)
    assert [e.key for e in fired] == [f"{rule.id}:1"]
    replay = await second.backplane.replay("alerts:user:alice", None)
    assert ['"alert_id":"' + f"{rule.id}:1" + '"' in e.text for e in replay.envelopes] == [True]

    third = services(database, clock)  # and dies again: the crossing is stored with the position
    await third.streaming.start()
    await third.alerting.evaluation.take_over()
    assert await third.alerting.evaluation.step(0) == []
    assert [e.key for e in await third.alerting.events("alice", 10)] == [f"{rule.id}:1"]
    await third.backplane.stop()


async def test_prices_published_before_the_first_position_was_stored_are_not_skipped(
    database: Database, clock: FrozenClock
) -> None:
    """The first start stores where evaluation begins at once; a crash before the first batch replays
    from there, not from the log's end (which would skip the prices that came meanwhile)."""
    repository = SqlAlchemyAlertRepository(database)
    rule = await repository.create_rule("alice", BREAKOUT, clock.now(), 10)
    first = services(database, clock)
    await first.streaming.start()
    await first.alerting.evaluation.take_over()  # a fresh database: the log's end, stored now
    async with database.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(alert_price_log)) == 0
    assert await repository.log_position("database:price-log") == "0"
    for value in (149.0, 151.0):
        await first.publisher.price(PriceInput(ticker="AAPL", price=value))

    second = services(database, clock)
    await second.streaming.start()
    await second.alerting.evaluation.take_over()
    assert [e.key for e in await second.alerting.evaluation.step(0)] == [f"{rule.id}:1"]
    await second.backplane.stop()


async def test_a_sqlite_file_keeps_the_log_in_a_file_of_its_own_beside_it(
    database: Database, clock: FrozenClock
) -> None:
    """SQLite has one writer per file: the log's commits (which publishes wait for) must not queue behind
    evaluation's transactions. PostgreSQL keeps the log in its own table of the same database."""
    log = SqlPriceLog.beside(database, clock)
    await log.start()
    await log.append("price", "1")
    if database.file is None:
        assert isinstance(log.store, TableStore) and await stored_ids(database) == [1]
    else:
        assert isinstance(log.store, FileStore)
        assert log.store.path == database.file.with_name("legend-price-log.db")
        with sqlite3.connect(log.store.path) as own:
            assert own.execute("SELECT id, kind, data FROM alert_price_log").fetchall() == [(1, "price", "1")]
        assert await stored_ids(database) == []
    await log.stop()
    again = SqlPriceLog.beside(database, clock)  # restarted: the ids carry on from the file
    await again.start()
    assert await again.end() == "1"
    assert [e.data for e in (await again.read("0", 10, 0)).entries] == ["1"]
    await again.stop()
