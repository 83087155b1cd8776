"""A plugin's own tables: what it declares (``register_storage``), the checks, and the database it uses.

A plugin that keeps data of its own declares its tables (a SQLAlchemy ``MetaData`` of its own) and the
folder of its Alembic revisions. The server migrates them with its own tables (``legend db upgrade``, and
the embedded default at every start) and records them in a version table of the plugin's own,
``<plugin>_alembic_version``, so no two histories ever mix. Its repositories reach the tables through
``context.database`` (a ``SqlDatabase``): never through the server's adapters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import MetaData

from legend.adapters.sql.rows import chunks, from_row
from legend.adapters.sql.tables import NAMING, UtcDateTime
from legend.adapters.sql.tables import metadata as server_tables
from legend.plugins.database import SqlDatabase

if TYPE_CHECKING:
    from legend.plugins.hook_caller import HookCaller
    from legend.plugins.state import PluginRecord

__all__ = ["NAMING_CONVENTION", "RegisterStorage", "SqlDatabase", "UtcDateTime", "chunks", "from_row"]

# Constraint and index names as the server's tables have them (``pk_<table>``, ``uq_<table>_<columns>``…):
# ``MetaData(naming_convention=NAMING_CONVENTION)`` makes a revision's names and the tables' agree.
NAMING_CONVENTION: dict[str, str] = dict(NAMING)


class RegisterStorage(Protocol):
    """``register(metadata, migrations)`` in ``register_storage``: the plugin's tables and the folder of
    their Alembic revisions."""

    def __call__(self, metadata: MetaData, migrations: str | Path) -> None: ...


def version_table(plugin: str) -> str:
    """Where a plugin's migrations record its revision: ``portfolio_alembic_version``."""
    return re.sub(r"[^0-9a-z_]", "_", plugin.lower()) + "_alembic_version"


def storage_arg(metadata: Any, migrations: Any) -> tuple[Any, Any]:
    """What one call of ``register_storage``'s ``register`` registers."""
    return metadata, migrations


def storage_problem(plugin: str, registered: list[tuple[Any, Any]], taken: dict[str, str]) -> str | None:
    """What is wrong with the storage one plugin registered, or None. ``taken``: table name -> its owner."""
    if len(registered) != 1:
        return (
            f"register() called {len(registered)} times: a plugin has one MetaData and one migrations folder"
        )
    ((metadata, migrations),) = registered
    if not isinstance(metadata, MetaData) or metadata is server_tables:
        return f"register() takes the plugin's own sqlalchemy MetaData, not {metadata!r}"
    if not metadata.tables:
        return "its MetaData has no tables"
    if not isinstance(migrations, str | Path) or not Path(migrations).is_dir():
        return f"migrations must be the folder of the plugin's Alembic revisions; {migrations!r} is not one"
    mine = version_table(plugin)
    for name in [*metadata.tables, mine]:
        if name in taken:
            return f"table {name!r} belongs to {taken[name]} (name your tables after your plugin)"
    if mine in metadata.tables:
        return f"table {mine!r} is the plugin's version table (Alembic's)"
    return None


def register_storage(hooks: HookCaller, records: Iterable[PluginRecord]) -> None:
    """Run ``register_storage`` of each plugin; keep what passes the checks, fail the plugins whose does not."""
    from legend.adapters.sql.migrate import VERSION_TABLE, Schema

    taken = {name: "the server" for name in [*server_tables.tables, VERSION_TABLE]}
    for record in records:
        registered = hooks.collect(record, "register_storage", {}, storage_arg)
        if not registered:
            continue
        problem = storage_problem(record.name, registered, taken)
        if problem:
            record.fail("register_storage", problem)
            continue
        ((metadata, migrations),) = registered
        record.storage = Schema(metadata, Path(migrations), version_table(record.name), plugin=record.name)
        taken.update(dict.fromkeys([*metadata.tables, version_table(record.name)], f"plugin {record.name}"))
