"""SQLAlchemy repository of every plugin's small key-value state (``PluginContext.store``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import delete, insert, select, update

from legend.adapters.sql.database import Database
from legend.adapters.sql.tables import plugin_state


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
