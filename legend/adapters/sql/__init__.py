"""SQLAlchemy 2 (asyncio) adapters: the database, its tables, the repositories and the migrations."""

import logging

from legend.adapters.sql.alerts import SqlAlchemyAlertRepository
from legend.adapters.sql.database import Database, DatabaseError, database_url
from legend.adapters.sql.watchlists import SqlAlchemyWatchlistRepository

__all__ = [
    "Database",
    "DatabaseError",
    "SqlAlchemyAlertRepository",
    "SqlAlchemyWatchlistRepository",
    "database_url",
]

# The repositories of revision 0002 (legend.adapters.sql.positions: SqlAlchemyPositionRepository,
# SqlAlchemyPluginStateRepository) are imported from their module: they build on the plugin API.

# Alembic announces each of its plugins at INFO when first imported; its migration steps stay visible.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
