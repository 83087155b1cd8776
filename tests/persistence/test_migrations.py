"""Migrations: an empty database upgrades to exactly the tables the code uses and downgrades cleanly, on
SQLite and PostgreSQL; the embedded default migrates itself on first start, a server database does not."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from legend.adapters.sql import Database, DatabaseError, migrate
from legend.adapters.sql.tables import metadata
from legend.cli import main
from legend.settings import DatabaseSettings
from tests.support.postgres import PostgresDatabases

TABLES = {
    "alert_events",
    "alert_rules",
    "alert_log_positions",
    "watchlist_items",
    "portfolio_positions",
    "plugin_state",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that was never migrated."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    else:
        postgres: PostgresDatabases = request.getfixturevalue("postgres")
        yield postgres.empty()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_upgrade_creates_exactly_the_tables_of_the_code_and_downgrade_removes_them(
    empty_url: str,
) -> None:
    database = Database(empty_url, migrate_on_start=False)
    try:
        assert await migrate.current(database) is None
        await migrate.upgrade(database)
        assert await migrate.current(database) == migrate.head()
        async with database.read() as conn:
            assert await conn.run_sync(_tables) == TABLES | {"alembic_version"}
            assert await conn.run_sync(_diff) == []
        await migrate.downgrade(database, "base")
        assert await migrate.current(database) is None
        async with database.read() as conn:
            assert await conn.run_sync(_tables) == {"alembic_version"}
        await migrate.upgrade(database)  # and up again
        assert await migrate.current(database) == migrate.head()
    finally:
        await database.close()


async def test_a_server_database_is_checked_not_migrated_at_start(empty_url: str) -> None:
    database = Database(empty_url, migrate_on_start=False)
    try:
        with pytest.raises(DatabaseError, match="legend db upgrade"):
            await database.start()
        async with database.read() as conn:
            assert await conn.run_sync(_tables) == set()
    finally:
        await database.close()


async def test_two_processes_starting_together_migrate_once(empty_url: str) -> None:
    first, second = Database(empty_url, migrate_on_start=True), Database(empty_url, migrate_on_start=True)
    try:
        await asyncio.gather(first.start(), second.start())
        assert await migrate.current(first) == migrate.head()
    finally:
        await first.close()
        await second.close()


async def test_the_embedded_default_creates_its_data_directory_and_migrates_on_first_start(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "nested" / "data"
    database = Database.from_settings(DatabaseSettings(data_dir=str(data_dir)))
    assert database.backend == "sqlite" and database.migrate_on_start
    try:
        await database.start()
        assert (data_dir / "legend.db").is_file()
        assert await migrate.current(database) == migrate.head()
        await database.start()  # a second start finds nothing to do
    finally:
        await database.close()


def test_the_cli_upgrades_and_downgrades(
    empty_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(f'[database]\nurl = "{empty_url}"\n', encoding="utf-8")
    monkeypatch.delenv("LEGEND_CONFIG", raising=False)
    assert main(["db", "current", "--config", str(config)]) == 0
    assert "at revision none (empty)" in capsys.readouterr().out
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert f"at revision {migrate.head()}" in capsys.readouterr().out
    assert main(["db", "downgrade", "base", "--config", str(config)]) == 0
    assert "at revision none (empty)" in capsys.readouterr().out
    assert main(["db", "downgrade", "nonexistent", "--config", str(config)]) != 0
