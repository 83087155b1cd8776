"""SQLAlchemy 2 (asyncio) adapters: the database, the server's tables, their repositories, the migrations."""

import logging

from legend.adapters.sql.alerts import SqlAlchemyAlertRepository
from legend.adapters.sql.database import Database, database_url
from legend.adapters.sql.errors import DatabaseError
from legend.adapters.sql.plugin_state import SqlAlchemyPluginStateRepository
from legend.adapters.sql.watchlists import SqlAlchemyWatchlistRepository

__all__ = [
    "Database",
    "DatabaseError",
    "SqlAlchemyAlertRepository",
    "SqlAlchemyPluginStateRepository",
    "SqlAlchemyWatchlistRepository",
    "database_url",
]

# A plugin's own tables and repositories are the plugin's (the portfolio's: legend.plugins.builtin.portfolio).

# Alembic announces each of its plugins at INFO when first imported; its migration steps stay visible.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
