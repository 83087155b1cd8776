"""The plugin's own table, ``sentiment_daily`` (each ticker's readings summed per day), and its repository.

The table is declared here (``metadata``) and created by the Alembic revisions in ``migrations/``; the
server migrates both with its own tables once the plugin is enabled (``register_storage``). The repository
reads and writes through ``context.database``, the server's database, in transactions it opens.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import msgspec
from sqlalchemy import Column, Date, Double, Integer, MetaData, String, Table, insert, select, update

from legend.plugins import NAMING_CONVENTION, SqlDatabase, UtcDateTime, from_row

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

sentiment_daily = Table(  # named after the plugin: no one else's table is called that
    "sentiment_daily",
    metadata,
    Column("ticker", String(16), primary_key=True),
    Column("day", Date(), primary_key=True),  # UTC
    Column("readings", Integer(), nullable=False),
    Column("mentions", Integer(), nullable=False),
    Column("bullish", Integer(), nullable=False),
    Column("bearish", Integer(), nullable=False),
    Column("score_sum", Double(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)


class Day(msgspec.Struct, kw_only=True):
    """One ticker's readings of one day, summed."""

    day: date
    readings: int
    mentions: int
    bullish: int
    bearish: int
    average_score: float


class DailySentiment:
    """``sentiment_daily`` over the server's database."""

    def __init__(self, database: SqlDatabase) -> None:
        self.database = database

    async def add(
        self, ticker: str, at: datetime, score: float, mentions: int, bullish: int, bearish: int
    ) -> None:
        """Count one reading in its day's row (made on the day's first)."""
        table, day = sentiment_daily, at.date()
        mine = (table.c.ticker == ticker, table.c.day == day)
        async with self.database.write(lock=f"sentiment:{ticker}") as conn:
            result = await conn.execute(
                update(table)
                .where(*mine)
                .values(
                    readings=table.c.readings + 1,
                    mentions=table.c.mentions + mentions,
                    bullish=table.c.bullish + bullish,
                    bearish=table.c.bearish + bearish,
                    score_sum=table.c.score_sum + score,
                    updated_at=at,
                )
            )
            if not result.rowcount:
                await conn.execute(
                    insert(table).values(
                        ticker=ticker,
                        day=day,
                        readings=1,
                        mentions=mentions,
                        bullish=bullish,
                        bearish=bearish,
                        score_sum=score,
                        updated_at=at,
                    )
                )

    async def days(self, ticker: str, limit: int = 30) -> list[Day]:
        """The ticker's last ``limit`` days, newest first."""
        table = sentiment_daily
        query = select(table).where(table.c.ticker == ticker).order_by(table.c.day.desc()).limit(limit)
        async with self.database.read() as conn:
            rows = (await conn.execute(query)).all()
        return [from_row(Day, row, average_score=round(row.score_sum / row.readings, 3)) for row in rows]
