"""Alembic environment: async engines (aiosqlite, asyncpg); the server's tables (legend.adapters.sql.tables),
or a plugin's when ``legend db upgrade`` or the start-up migrates them (the schema in the configuration)."""

from __future__ import annotations

import asyncio

from alembic import context

from legend.adapters.sql import migrate
from legend.adapters.sql.database import Database, database_url
from legend.adapters.sql.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if context.is_offline_mode():  # `alembic upgrade head --sql`: print the SQL
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or "sqlite://",
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:  # `legend db upgrade` and start-up: a connection inside a transaction
    migrate.run_migrations(context, connection)
else:  # Alembic's command line
    from legend.settings import load_settings

    url = config.get_main_option("sqlalchemy.url") or database_url(load_settings().database)
    asyncio.run(migrate.run_standalone(context, Database(url)))
