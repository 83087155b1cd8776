"""The bar store over SQLAlchemy Core: bars upserted with the builder's log position in one transaction.

The position lives beside alert evaluation's (``log_positions``, under ``bars:<log>``) and moves by compare
and set, so a builder that lost its lease stores nothing once its successor has written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Select, delete, not_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row

from legend.adapters.sql.database import Database
from legend.adapters.sql.log_positions import move_position, stored_position
from legend.adapters.sql.rows import chunks, from_row
from legend.adapters.sql.tables import bar_backfill
from legend.adapters.sql.tables import bars as bar_table
from legend.domain.bar_history import Coverage
from legend.domain.bars import Bar, BarInterval, parse_interval
from legend.ports.bars import MAX_HISTORY
from legend.ports.repositories import PositionMove

POSITION_PREFIX = "bars:"  # the builder's row in alert_log_positions: never the same as alert evaluation's
PRUNE_BATCH = 5000  # bars deleted per transaction: a SQLite writer waits for one batch at most
_FIGURES = ("open", "high", "low", "close", "volume", "regular", "closed", "last_at", "session_volume")


def _bar(row: Row[Any]) -> Bar:
    return from_row(Bar, row, interval=parse_interval(row.interval))


def history_query(ticker: str, interval: BarInterval, limit: int, before: datetime | None) -> Select[Any]:
    """The newest ``limit`` bars before ``before``, newest first: a backward range read of the primary key."""
    query = select(bar_table).where(bar_table.c.ticker == ticker, bar_table.c.interval == interval)
    if before is not None:
        query = query.where(bar_table.c.start < before)
    return query.order_by(bar_table.c.start.desc()).limit(limit)


def open_query() -> Select[Any]:
    """The bars not closed yet: the partial index ix_bars_open (its predicate is NOT closed as SQLAlchemy
    writes it on each backend: SQLite ``closed = 0``)."""
    c = bar_table.c
    return select(bar_table).where(not_(c.closed)).order_by(c.ticker, c.interval, c.start)


def stale_query(interval: BarInterval, before: datetime, limit: int = PRUNE_BATCH) -> Select[Any]:
    """The keys of up to ``limit`` closed bars of ``interval`` that started before ``before``: a range of
    the index on (interval, start)."""
    c = bar_table.c
    return (
        select(c.ticker, c.interval, c.start)
        .where(c.interval == interval, c.start < before, c.closed)
        .limit(limit)
    )


class SqlAlchemyBarStore:
    """BarStore over SQLAlchemy: SQLite (the embedded default) or PostgreSQL (a cluster)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def write(self, bars: Sequence[Bar], position: PositionMove) -> None:
        dialect = postgresql if self.database.backend == "postgresql" else sqlite
        statement = dialect.insert(bar_table)
        upsert = statement.on_conflict_do_update(
            index_elements=["ticker", "interval", "start"],
            set_={name: statement.excluded[name] for name in _FIGURES},
        )
        async with self.database.write() as conn:
            await move_position(conn, position, POSITION_PREFIX + position.name)
            for chunk in chunks(bars):
                await conn.execute(upsert, [msgspec.structs.asdict(bar) for bar in chunk])

    async def position(self, log: str) -> str | None:
        async with self.database.read() as conn:
            return await stored_position(conn, POSITION_PREFIX + log)

    async def history(
        self, ticker: str, interval: BarInterval, limit: int, before: datetime | None = None
    ) -> list[Bar]:
        if not 1 <= limit <= MAX_HISTORY:
            raise ValueError(f"limit: expected 1 to {MAX_HISTORY}, got {limit}")
        if before is not None and before.tzinfo is None:
            raise ValueError(f"before: {before.isoformat()} has no time zone; give one (UTC: Z)")
        async with self.database.read() as conn:
            rows = (await conn.execute(history_query(ticker, interval, limit, before))).all()
        return [_bar(row) for row in reversed(rows)]

    async def open_bars(self) -> list[Bar]:
        async with self.database.read() as conn:
            return [_bar(row) for row in await conn.execute(open_query())]

    async def prune(self, now: datetime, keep: Mapping[BarInterval, timedelta]) -> int:
        deleted = 0
        for interval, period in keep.items():
            if period <= timedelta(0):
                raise ValueError(f"keep[{interval!r}]: expected a positive period, got {period}")
            old = stale_query(interval, now - period)
            key = tuple_(bar_table.c.ticker, bar_table.c.interval, bar_table.c.start)
            while True:
                async with self.database.write() as conn:
                    count = (await conn.execute(delete(bar_table).where(key.in_(old)))).rowcount
                deleted += count
                if count < PRUNE_BATCH:
                    break
        return deleted

    async def insert_missing(
        self, bars: Sequence[Bar], covered: tuple[str, BarInterval, Coverage] | None = None
    ) -> int:
        dialect = postgresql if self.database.backend == "postgresql" else sqlite
        ignore = dialect.insert(bar_table).on_conflict_do_nothing(
            index_elements=["ticker", "interval", "start"]
        )
        inserted = 0
        async with self.database.write() as conn:
            for chunk in chunks(bars):
                # executemany with RETURNING: one cached statement, sent in batches (insertmanyvalues); a
                # row that was already there returns nothing
                result = await conn.execute(
                    ignore.returning(bar_table.c.start), [msgspec.structs.asdict(bar) for bar in chunk]
                )
                inserted += len(result.all())
            if covered is not None:
                ticker, interval, coverage = covered
                values = {"start": coverage.start, "end": coverage.end, "updated_at": datetime.now(UTC)}
                record = dialect.insert(bar_backfill).values(ticker=ticker, interval=interval, **values)
                await conn.execute(
                    record.on_conflict_do_update(index_elements=["ticker", "interval"], set_=values)
                )
        return inserted

    async def coverage(self, ticker: str, interval: BarInterval) -> Coverage | None:
        c = bar_backfill.c
        async with self.database.read() as conn:
            row = (
                await conn.execute(select(c.start, c.end).where(c.ticker == ticker, c.interval == interval))
            ).first()
        return None if row is None else Coverage(row.start, row.end)
