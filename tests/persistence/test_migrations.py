"""Migrations: an empty database upgrades to exactly the tables the code declares — the server's and the
enabled plugins' own — and downgrades cleanly, on SQLite and PostgreSQL; a database migrated before plugins
owned their tables upgrades without losing a row; the embedded default migrates itself on first start, a
server database does not."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Connection

from legend.adapters.sql import Database, DatabaseError, migrate
from legend.adapters.sql.migrate import Schema
from legend.adapters.sql.tables import metadata, plugin_state
from legend.cli import main
from legend.plugins.builtin.portfolio.storage import portfolio_positions
from legend.plugins.schemas import enabled_schemas
from legend.settings import DatabaseSettings, Settings
from tests.support.postgres import PostgresDatabases

TABLES = {
    "alert_events",
    "alert_rules",
    "alert_log_positions",
    "alert_price_log",
    "bars",
    "bar_backfill",
    "notify_webhooks",
    "notify_push",
    "notify_email",
    "alert_deliveries",
    "server_keys",
    "watchlist_items",
    "plugin_state",
}
# the plugins' own tables, each with its version table: the built-in portfolio (on by default) and the
# installed example package legend-sentiment (once enabled)
PLUGIN_TABLES = {
    "portfolio": {"portfolio_positions", "portfolio_alembic_version"},
    "sentiment": {"sentiment_daily", "sentiment_alembic_version"},
}
EVERY_PLUGIN = Settings(plugins={"enabled": ["news", "portfolio", "sentiment"]})
LEGACY_0002 = Path(__file__).with_name("legacy") / "0002_portfolio_and_plugin_state.py"


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


def _diff(conn: Connection, plugins: Sequence[Schema]) -> list[Any]:
    """What differs between the database and the tables the code declares: the server's and the plugins'."""
    version_tables = {migrate.VERSION_TABLE, *(schema.version_table for schema in plugins)}

    def include(name: str | None, kind: str, parent: Any) -> bool:
        return kind != "table" or name not in version_tables

    context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include})
    declared = [metadata, *(schema.metadata for schema in plugins)]
    return list(compare_metadata(context, declared))  # type: ignore[arg-type]  # a list is accepted


async def test_upgrade_creates_exactly_the_tables_of_the_code_and_downgrade_removes_them(
    empty_url: str,
) -> None:
    plugins = enabled_schemas(EVERY_PLUGIN)
    assert [schema.plugin for schema in plugins] == ["portfolio", "sentiment"]  # news has no tables
    database = Database(empty_url, migrate_on_start=False)
    try:
        assert await migrate.current(database) is None
        await migrate.upgrade(database)
        for schema in plugins:
            assert await migrate.current(database, schema) is None
            await migrate.upgrade(database, schema=schema)
            assert await migrate.current(database, schema) == migrate.head(schema)
        assert await migrate.current(database) == migrate.head()
        async with database.read() as conn:
            assert await conn.run_sync(_tables) == TABLES | {"alembic_version"} | set().union(
                *PLUGIN_TABLES.values()
            )
            assert await conn.run_sync(_diff, plugins) == []
        for schema in plugins:
            await migrate.downgrade(database, "base", schema=schema)
            assert await migrate.current(database, schema) is None
        await migrate.downgrade(database, "base")
        assert await migrate.current(database) is None
        async with database.read() as conn:  # what is left: the empty version tables
            assert await conn.run_sync(_tables) == {"alembic_version"} | {
                schema.version_table for schema in plugins
            }
        await migrate.upgrade(database)  # and up again
        assert await migrate.current(database) == migrate.head()
    finally:
        await database.close()


def _legacy(tmp_path: Path) -> Schema:
    """The server's revisions as a database was migrated before plugins owned their tables: today's 0001 and
    0003, and the 0002 of then, which made the portfolio plugin's table."""
    versions = tmp_path / "legacy-versions"
    versions.mkdir()
    for script in migrate.core().versions.glob("000[13]_*.py"):
        shutil.copy(script, versions / script.name)
    shutil.copy(LEGACY_0002, versions / LEGACY_0002.name)
    return Schema(metadata, versions)


async def test_a_database_migrated_before_plugins_owned_their_tables_upgrades_and_keeps_its_rows(
    empty_url: str, tmp_path: Path
) -> None:
    old = Database(empty_url, migrate_on_start=False)
    at = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    rows = [
        {"user_id": "ann", "ticker": "AAPL", "quantity": 10.0, "average_cost": 150.0},
        {"user_id": "ann", "ticker": "TSLA", "quantity": -5.0, "average_cost": 200.0},
        {"user_id": "bob", "ticker": "MSFT", "quantity": 3.0, "average_cost": 300.0},
    ]
    try:  # as a server of then left it: at revision 0003, positions and plugin state in it
        await migrate.upgrade(old, schema=_legacy(tmp_path))
        assert await migrate.current(old) == "0003"
        async with old.write() as conn:
            await conn.execute(
                insert(portfolio_positions), [{**row, "created_at": at, "updated_at": at} for row in rows]
            )
            await conn.execute(
                insert(plugin_state).values(plugin="news", key="etag", value='"x"', updated_at=at)
            )
    finally:
        await old.close()

    plugins = enabled_schemas(Settings())  # the defaults: news and portfolio
    (portfolio,) = plugins
    database = Database(empty_url, migrate_on_start=True)  # today's start-up (as `legend db upgrade`)
    try:
        assert await database.start(plugins) == {}
        assert await migrate.current(database) == migrate.head()
        assert await migrate.current(database, portfolio) == migrate.head(portfolio) == "0001"
        async with database.read() as conn:
            kept = (await conn.execute(select(portfolio_positions).order_by(portfolio_positions.c.id))).all()
            assert [
                {key: row._mapping[key] for key in ("user_id", "ticker", "quantity", "average_cost")}
                for row in kept
            ] == rows
            assert {row.created_at for row in kept} == {at} and [row.id for row in kept] == [1, 2, 3]
            assert (await conn.execute(select(plugin_state.c.value))).scalars().all() == ['"x"']
            assert await conn.run_sync(_diff, plugins) == []  # the same table as the plugin declares
        assert await database.start(plugins) == {}  # a second start finds nothing to do
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
    out = capsys.readouterr().out
    assert (
        f"at revision {migrate.head()}" in out and "plugin portfolio: at revision 0001; newest is 0001" in out
    )
    assert main(["db", "downgrade", "base", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "at revision none (empty)" in out and "plugin portfolio: at revision none (empty)" in out
    assert main(["db", "downgrade", "nonexistent", "--config", str(config)]) != 0


def test_the_cli_migrates_one_plugins_tables_and_a_third_party_plugins(
    empty_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PLUGIN@REVISION`` acts on that plugin's tables alone; an installed plugin's tables are migrated
    once it is enabled, and ``legend db downgrade PLUGIN@base`` drops them again."""
    config = tmp_path / "legend.toml"
    config.write_text(
        f'[database]\nurl = "{empty_url}"\n[plugins]\nenabled = ["portfolio", "sentiment"]\n',
        encoding="utf-8",
    )
    monkeypatch.delenv("LEGEND_CONFIG", raising=False)
    run = ["--config", str(config)]
    assert main(["db", "upgrade", *run]) == 0
    out = capsys.readouterr().out
    assert "plugin portfolio: at revision 0001" in out and "plugin sentiment: at revision 0001" in out
    assert main(["db", "downgrade", "sentiment@base", *run]) == 0
    out = capsys.readouterr().out
    assert f"at revision {migrate.head()};" in out and "plugin portfolio: at revision 0001;" in out
    assert "plugin sentiment: at revision none (empty)" in out
    sentiment = PLUGIN_TABLES["sentiment"]
    assert _tables_of(empty_url) >= TABLES | PLUGIN_TABLES["portfolio"]
    assert _tables_of(empty_url) & sentiment == {"sentiment_alembic_version"}
    assert main(["db", "upgrade", "sentiment@head", *run]) == 0
    assert "plugin sentiment: at revision 0001;" in capsys.readouterr().out
    assert _tables_of(empty_url) >= sentiment
    assert main(["db", "upgrade", "news@head", *run]) == 1  # news has no tables of its own
    assert "'news' is no enabled plugin with tables of its own (those are: portfolio, sentiment)" in (
        capsys.readouterr().err
    )


def _tables_of(url: str) -> set[str]:
    async def read() -> set[str]:
        database = Database(url, migrate_on_start=False)
        try:
            async with database.read() as conn:
                return await conn.run_sync(_tables)
        finally:
            await database.close()

    return asyncio.run(read())
