"""Alembic migrations, run through the async engine: the server's own (``migrations/``) and each plugin's.

Each owner of tables is a ``Schema``: its tables (a SQLAlchemy ``MetaData``), the folder of its Alembic
revisions and its own version table. The server's revisions live in ``migrations/versions`` and record
themselves in ``alembic_version``; a plugin's in a folder of its own and in ``<plugin>_alembic_version``.
Alembic calls that "multiple environments" (independent lineages, separate version tables) rather than
"multiple bases" (one shared table): a plugin's revisions never collide with the server's or another
plugin's, and a plugin that is disabled or uninstalled leaves the others' histories untouched. Every schema
runs through the one ``migrations/env.py``, which reads the schema from the Alembic configuration.

``upgrade``/``downgrade``/``current`` run Alembic on a connection of ``Database.write()``: one transaction
(SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so two processes starting together migrate one
after the other and the second finds nothing to do. ``migrations/env.py`` calls ``run_migrations`` on that
connection, or opens its own when Alembic's own command line runs it (the server's tables only).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from legend.adapters.sql.errors import DatabaseError
from legend.adapters.sql.tables import metadata

if TYPE_CHECKING:  # the database runs the migrations at start-up: no import back at run time
    from legend.adapters.sql.database import Database

log = logging.getLogger("legend.db")

LOCK = "legend:migrations"
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Schema:
    """The tables of one owner and the Alembic revisions that make them: the server's own (``plugin`` None)
    or one plugin's."""

    metadata: MetaData
    versions: Path  # the folder of its revision scripts
    version_table: str = VERSION_TABLE
    plugin: str | None = None

    @property
    def owner(self) -> str:
        """For messages: ``plugin portfolio``, or ``the server``."""
        return f"plugin {self.plugin}" if self.plugin else "the server"


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


def core() -> Schema:
    """The server's own tables (``legend.adapters.sql.tables``) and revisions (``migrations/versions``)."""
    return Schema(metadata, migrations_dir() / "versions")


def _option(value: str) -> str:
    return value.replace("%", "%%")  # Alembic's options go through configparser interpolation


def alembic_config(url: str | None = None, schema: Schema | None = None) -> Config:
    """Alembic's configuration, built in code (``migrations/alembic.ini`` serves the ``alembic`` CLI)."""
    scripts = migrations_dir()
    if not (scripts / "env.py").is_file():
        raise DatabaseError(f"migrations not found in {scripts}")
    schema = schema or core()
    config = Config()
    config.set_main_option("script_location", str(scripts))
    # one folder, split on nothing but os.pathsep (Alembic < 1.16 reads the older name of the option)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_path_separator", "os")
    config.set_main_option("version_locations", _option(str(schema.versions)))
    config.attributes["schema"] = schema
    if url:
        config.set_main_option("sqlalchemy.url", _option(url))
    return config


def _scripts(schema: Schema | None) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(schema=schema))


def head(schema: Schema | None = None) -> str:
    """The newest revision (of the server's tables, or of a plugin's)."""
    owner = (schema or core()).owner
    try:
        revision = _scripts(schema).get_current_head()
    except CommandError as exc:  # several heads
        raise DatabaseError(f"migrations of {owner}: {exc}") from None
    if revision is None:
        raise DatabaseError(f"no migrations found for {owner}")
    return revision


def run_migrations(context: EnvironmentContext, connection: Connection) -> None:
    """What ``env.py`` does on a live connection, for the schema the configuration names."""
    schema: Schema = context.config.attributes.get("schema") or core()
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,
        version_table=schema.version_table,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone(context: EnvironmentContext, database: Database) -> None:
    """``env.py`` run by Alembic's own command line: migrate on the database it opened, then close it."""
    try:
        async with database.write(lock=LOCK) as conn:
            await conn.run_sync(lambda sync: run_migrations(context, sync))
    finally:
        await database.close()


def _command(connection: Connection, name: str, revision: str, schema: Schema | None) -> None:
    config = alembic_config(schema=schema)
    config.attributes["connection"] = connection
    getattr(command, name)(config, revision)


async def _run(database: Database, name: str, revision: str, schema: Schema | None) -> None:
    # Alembic reads its scripts from disk: load them off the event loop before it needs them.
    await asyncio.to_thread(lambda: list(_scripts(schema).walk_revisions()))
    if schema is not None and schema.plugin:
        log.info("the tables of %s: %s to %s", schema.owner, name, revision)
    try:
        async with database.write(lock=LOCK) as conn:
            await conn.run_sync(_command, name, revision, schema)
    except CommandError as exc:  # an unknown revision, a broken migration chain
        of = f" ({schema.owner})" if schema is not None and schema.plugin else ""
        raise DatabaseError(f"{name} to {revision!r}{of}: {exc}") from None


async def upgrade(database: Database, revision: str = "head", schema: Schema | None = None) -> None:
    """Migrate up to ``revision`` (the server's tables, or ``schema``'s)."""
    await _run(database, "upgrade", revision, schema)


async def downgrade(database: Database, revision: str, schema: Schema | None = None) -> None:
    """Migrate down to ``revision`` (``base``: nothing left)."""
    await _run(database, "downgrade", revision, schema)


def _current(connection: Connection, version_table: str) -> Any:
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return context.get_current_revision()


async def current(database: Database, schema: Schema | None = None) -> str | None:
    """The revision the database is at (None: never migrated)."""
    version_table = (schema or core()).version_table
    async with database.read() as conn:
        revision = await conn.run_sync(_current, version_table)
    return None if revision is None else str(revision)


async def check(database: Database, schema: Schema | None = None) -> None:
    """Raise DatabaseError unless the tables are at the newest revision."""
    at, newest = await current(database, schema), await asyncio.to_thread(head, schema)
    if at == newest:
        return
    where = (
        f"the tables of {schema.owner} in {database.safe_url} are"
        if schema is not None and schema.plugin
        else f"the database {database.safe_url} is"
    )
    raise DatabaseError(
        f"{where} at schema revision {at or 'none'}, this version needs {newest}: run `legend db upgrade`"
    )
