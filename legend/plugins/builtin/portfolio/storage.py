"""The portfolio plugin's own table and its SQLAlchemy repository, on the server's database.

Declared by the ``register_storage`` hook and migrated by the revisions in ``migrations/``, as any
plugin's tables are; the repository reaches the database through ``context.database`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import (
    CheckConstraint,
    Column,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)

from legend.plugins import NAMING_CONVENTION, SqlDatabase, UtcDateTime, chunks, from_row
from legend.plugins.builtin.portfolio.model import NewPosition, Position, PositionLimitReached

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

portfolio_positions = Table(
    "portfolio_positions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("ticker", String(16), nullable=False),
    Column("quantity", Double(), nullable=False),
    Column("average_cost", Double(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("user_id", "ticker"),  # also the index for "the positions of one user"
    CheckConstraint("average_cost >= 0", name="average_cost"),
    CheckConstraint("quantity <> 0", name="quantity"),
    sqlite_autoincrement=True,
)


class SqlAlchemyPositionRepository:
    """PositionRepository over SQLAlchemy (SQLite and PostgreSQL)."""

    def __init__(self, database: SqlDatabase) -> None:
        self.database = database

    async def positions(self, user_id: str) -> list[Position]:
        query = (
            select(portfolio_positions)
            .where(portfolio_positions.c.user_id == user_id)
            .order_by(portfolio_positions.c.ticker)
        )
        async with self.database.read() as conn:
            return [from_row(Position, row) for row in await conn.execute(query)]

    async def positions_of(self, user_ids: Sequence[str]) -> dict[str, list[Position]]:
        found: dict[str, list[Position]] = {}
        users = list(dict.fromkeys(user_ids))
        async with self.database.read() as conn:
            for chunk in chunks(users):
                query = (
                    select(portfolio_positions)
                    .where(portfolio_positions.c.user_id.in_(chunk))
                    .order_by(portfolio_positions.c.user_id, portfolio_positions.c.ticker)
                )
                for row in await conn.execute(query):
                    found.setdefault(row.user_id, []).append(from_row(Position, row))
        return found

    async def put(
        self, user_id: str, position: NewPosition, now: datetime, limit: int
    ) -> tuple[Position, bool]:
        table = portfolio_positions
        mine = table.c.user_id == user_id
        async with self.database.write(lock=f"portfolio:{user_id}") as conn:
            existing = (
                await conn.execute(
                    select(table.c.id, table.c.created_at).where(mine, table.c.ticker == position.ticker)
                )
            ).first()
            if existing is not None:
                await conn.execute(
                    update(table)
                    .where(table.c.id == existing.id)
                    .values(quantity=position.quantity, average_cost=position.average_cost, updated_at=now)
                )
                created_at = existing.created_at
            else:
                count = await conn.scalar(select(func.count()).select_from(table).where(mine))
                if (count or 0) >= limit:
                    raise PositionLimitReached(limit)
                await conn.execute(
                    insert(table).values(
                        user_id=user_id,
                        ticker=position.ticker,
                        quantity=position.quantity,
                        average_cost=position.average_cost,
                        created_at=now,
                        updated_at=now,
                    )
                )
                created_at = now
        stored = Position(
            ticker=position.ticker,
            quantity=position.quantity,
            average_cost=position.average_cost,
            created_at=created_at,
            updated_at=now,
        )
        return stored, existing is None

    async def replace(self, user_id: str, positions: Sequence[NewPosition], now: datetime) -> list[Position]:
        table = portfolio_positions
        mine = table.c.user_id == user_id
        async with self.database.write(lock=f"portfolio:{user_id}") as conn:
            created = {
                row.ticker: row.created_at
                for row in await conn.execute(select(table.c.ticker, table.c.created_at).where(mine))
            }
            await conn.execute(delete(table).where(mine))
            if positions:
                await conn.execute(
                    insert(table),
                    [
                        {
                            "user_id": user_id,
                            "ticker": p.ticker,
                            "quantity": p.quantity,
                            "average_cost": p.average_cost,
                            "created_at": created.get(p.ticker, now),
                            "updated_at": now,
                        }
                        for p in positions
                    ],
                )
        return await self.positions(user_id)

    async def delete(self, user_id: str, ticker: str) -> bool:
        statement = delete(portfolio_positions).where(
            portfolio_positions.c.user_id == user_id, portfolio_positions.c.ticker == ticker
        )
        async with self.database.write(lock=f"portfolio:{user_id}") as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)
