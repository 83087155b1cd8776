"""The watchlist repository over SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select

from legend.adapters.sql.database import Database
from legend.adapters.sql.tables import watchlist_items


class SqlAlchemyWatchlistRepository:
    """WatchlistRepository over SQLAlchemy."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def tickers(self, user_id: str) -> list[str]:
        query = (
            select(watchlist_items.c.ticker)
            .where(watchlist_items.c.user_id == user_id)
            .order_by(watchlist_items.c.id)
        )
        async with self.database.read() as conn:
            return list((await conn.scalars(query)).all())

    async def add(self, user_id: str, ticker: str, limit: int) -> bool | None:
        mine = watchlist_items.c.user_id == user_id
        async with self.database.write(lock=f"watchlist:{user_id}") as conn:
            exists = await conn.scalar(
                select(watchlist_items.c.id).where(mine, watchlist_items.c.ticker == ticker)
            )
            if exists is not None:
                return False
            count = await conn.scalar(select(func.count()).select_from(watchlist_items).where(mine))
            if (count or 0) >= limit:
                return None
            await conn.execute(
                insert(watchlist_items).values(user_id=user_id, ticker=ticker, created_at=datetime.now(UTC))
            )
            return True

    async def remove(self, user_id: str, ticker: str) -> bool:
        statement = delete(watchlist_items).where(
            watchlist_items.c.user_id == user_id, watchlist_items.c.ticker == ticker
        )
        async with self.database.write() as conn:
            result = await conn.execute(statement)
            return bool(result.rowcount)
