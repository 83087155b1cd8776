"""Alembic migrations (``migrations/``), run through the async engine.

``upgrade``/``downgrade``/``current`` run Alembic on a connection of ``Database.write()``: one transaction
(SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so two processes starting together migrate one
after the other and the second finds nothing to do. ``migrations/env.py`` calls ``run_migrations`` on that
connection, or opens its own when Alembic's own command line runs it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from legend.adapters.sql.database import Database, DatabaseError
from legend.adapters.sql.tables import metadata

LOCK = "legend:migrations"


def migrations_dir() -> Path:
    """The Alembic scripts: packaged as ``legend.migrations`` in a wheel, ``migrations/`` in a checkout."""
    try:
        from importlib.resources import files

        packaged = Path(str(files("legend.migrations")))
        if (packaged / "env.py").is_file():
            return packaged
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration, built in code (``migrations/alembic.ini`` serves the ``alembic`` CLI)."""
    scripts = migrations_dir()
    if not (scripts / "env.py").is_file():
        raise DatabaseError(f"migrations not found in {scripts}")
    config = Config()
    config.set_main_option("script_location", str(scripts))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head() -> str:
    """The newest revision."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise DatabaseError("no migrations found")
    return revision


def run_migrations(context: EnvironmentContext, connection: Connection) -> None:
    """What ``env.py`` does on a live connection."""
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone(context: EnvironmentContext, url: str) -> None:
    """``env.py`` run by Alembic's own command line: open the database, migrate, close."""
    database = Database(url)
    try:
        async with database.write(lock=LOCK) as conn:
            await conn.run_sync(lambda sync: run_migrations(context, sync))
    finally:
        await database.close()


def _command(connection: Connection, name: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, name)(config, revision)


async def _run(database: Database, name: str, revision: str) -> None:
    # Alembic reads its scripts from disk: load them off the event loop before it needs them.
    await asyncio.to_thread(lambda: list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
    try:
        async with database.write(lock=LOCK) as conn:
            await conn.run_sync(_command, name, revision)
    except CommandError as exc:  # an unknown revision, a broken migration chain
        raise DatabaseError(f"{name} to {revision!r}: {exc}") from None


async def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate up to ``revision``."""
    await _run(database, "upgrade", revision)


async def downgrade(database: Database, revision: str) -> None:
    """Migrate down to ``revision`` (``base``: nothing left)."""
    await _run(database, "downgrade", revision)


def _current(connection: Connection) -> Any:
    return MigrationContext.configure(connection).get_current_revision()


async def current(database: Database) -> str | None:
    """The revision the database is at (None: never migrated)."""
    async with database.read() as conn:
        revision = await conn.run_sync(_current)
    return None if revision is None else str(revision)


async def check(database: Database) -> None:
    """Raise DatabaseError unless the schema is at the newest revision."""
    at, newest = await current(database), await asyncio.to_thread(head)
    if at != newest:
        raise DatabaseError(
            f"the database {database.safe_url} is at schema revision {at or 'none'}, this version needs "
            f"{newest}: run `legend db upgrade`"
        )
