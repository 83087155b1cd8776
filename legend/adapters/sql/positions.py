"""SQLAlchemy repositories of the portfolio plugin's positions and of every plugin's small state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row

from legend.adapters.sql.database import Database
from legend.adapters.sql.tables import plugin_state, portfolio_positions
from legend.plugins.builtin.portfolio.model import NewPosition, Position, PositionLimitReached

CHUNK = 500  # ids per IN list


def _position(row: Row[Any]) -> Position:
    return Position(
        ticker=row.ticker,
        quantity=row.quantity,
        average_cost=row.average_cost,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlAlchemyPositionRepository:
    """PositionRepository over SQLAlchemy (SQLite and PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def positions(self, user_id: str) -> list[Position]:
        query = (
            select(portfolio_positions)
            .where(portfolio_positions.c.user_id == user_id)
            .order_by(portfolio_positions.c.ticker)
        )
        async with self.database.read() as conn:
            return [_position(row) for row in await conn.execute(query)]

    async def positions_of(self, user_ids: Sequence[str]) -> dict[str, list[Position]]:
        found: dict[str, list[Position]] = {}
        users = list(dict.fromkeys(user_ids))
        async with self.database.read() as conn:
            for start in range(0, len(users), CHUNK):
                query = (
                    select(portfolio_positions)
                    .where(portfolio_positions.c.user_id.in_(users[start : start + CHUNK]))
                    .order_by(portfolio_positions.c.user_id, portfolio_positions.c.ticker)
                )
                for row in await conn.execute(query):
                    found.setdefault(row.user_id, []).append(_position(row))
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


class SqlAlchemyPluginStateRepository:
    """PluginStateRepository over SQLAlchemy: JSON values by (plugin, key)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, plugin: str, key: str) -> Any | None:
        query = select(plugin_state.c.value).where(plugin_state.c.plugin == plugin, plugin_state.c.key == key)
        async with self.database.read() as conn:
            raw = await conn.scalar(query)
        return None if raw is None else msgspec.json.decode(raw)

    async def put(self, plugin: str, key: str, value: Any) -> None:
        text = msgspec.json.encode(value).decode()
        now = datetime.now(UTC)
        where = (plugin_state.c.plugin == plugin, plugin_state.c.key == key)
        async with self.database.write(lock=f"plugin_state:{plugin}:{key}") as conn:
            result = await conn.execute(update(plugin_state).where(*where).values(value=text, updated_at=now))
            if not result.rowcount:
                await conn.execute(
                    insert(plugin_state).values(plugin=plugin, key=key, value=text, updated_at=now)
                )

    async def delete(self, plugin: str, key: str) -> bool:
        statement = delete(plugin_state).where(plugin_state.c.plugin == plugin, plugin_state.c.key == key)
        async with self.database.write(lock=f"plugin_state:{plugin}:{key}") as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)
