"""Fixtures: a migrated database per test on SQLite (a temporary file) and on a real PostgreSQL server.

PostgreSQL: one ``legend_test_<random>`` database per session, migrated once and emptied before each test;
migration tests create their own. Every database created here is dropped at the end of the session. The
server is the session's private one (tests/support/postgres.py), or ``$LEGEND_TEST_POSTGRES``; a PostgreSQL
case never skips.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.sql import Database, SqlAlchemyAlertRepository, migrate
from legend.adapters.sql.tables import metadata
from legend.domain.channels import ChannelRegistry
from legend.domain.stats import Counters
from legend.ports.backplane import Backplane
from legend.services.alerts.service import AlertingService
from legend.services.streaming.publisher import Publisher
from tests.support.postgres import PostgresDatabases, run_sync

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await migrate.upgrade(database)
    finally:
        await database.close()


@pytest.fixture(scope="session")
def postgres_migrated(postgres: PostgresDatabases) -> str:
    """URL of the session's PostgreSQL database, migrated to the newest revision."""
    url = postgres.create("main")
    run_sync(_migrate(url))
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "legend.db"
    run_sync(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / "legend.db"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each backend."""
    if request.param == "sqlite":
        return sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    url: str = request.getfixturevalue("postgres_migrated")
    run_sync(_truncate(url))
    return url


async def _truncate(url: str) -> None:
    database = Database(url, migrate_on_start=False)
    try:
        async with database.write() as conn:
            # every table of the core schema (a new one is never forgotten); plugin_state: a plugin's own
            names = ", ".join(table.name for table in metadata.sorted_tables if table.name != "plugin_state")
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await database.close()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url, migrate_on_start=False)
    await db.start()  # checks that the schema is at the newest revision
    yield db
    await db.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def alerting_service(
    database: Database,
    clock: FrozenClock,
    backplane: Backplane | None = None,
    *,
    instance_id: str = "instance-a",
    single_instance: bool = True,
    claim_seconds: float = 30.0,
) -> AlertingService:
    """An alerting service as bootstrap wires it, over ``database`` and an in-memory backplane."""
    backplane = backplane if backplane is not None else InMemoryBackplane()
    publisher = Publisher(backplane, ChannelRegistry(), clock, Counters(), history_size=100)
    return AlertingService(
        SqlAlchemyAlertRepository(database),
        publisher,
        backplane,
        clock,
        price_log=backplane,
        cluster=backplane,
        instance_id=instance_id,
        retry_interval=3600.0,  # tests drive delivery rounds themselves
        claim_seconds=claim_seconds,
        single_instance=single_instance,
    )
