"""Fixtures: a migrated database per test on SQLite (a temporary file) and on the real PostgreSQL server.

PostgreSQL: one ``legend_test_<random>`` database per session, migrated once and emptied before each test;
migration tests create their own. Every database created here is dropped at the end of the session. The
server is ``$LEGEND_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``); without it
the PostgreSQL cases are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from legend.adapters.frozen_clock import FrozenClock
from legend.adapters.memory_backplane import InMemoryBackplane
from legend.adapters.sql import Database, SqlAlchemyAlertRepository, migrate
from legend.domain.alerting import AlertingService
from legend.domain.channels import ChannelRegistry
from legend.domain.publisher import Publisher
from legend.domain.stats import Counters
from legend.ports.backplane import Backplane

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own loop in another thread (safe beside the test's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


ADMIN_URL = os.environ.get("LEGEND_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


class PostgresDatabases:
    """Creates ``legend_test_*`` databases on the test server and drops them all at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"legend_test_{secrets.token_hex(4)}"
        self.created: list[str] = []

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create(self, suffix: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{self.prefix}_{suffix}"
        assert name.startswith("legend_test_")
        run_sync(self._admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url(name)

    def empty(self) -> str:
        """The session's scratch database, emptied (its public schema recreated): for migration tests."""
        name = f"{self.prefix}_scratch"
        if name not in self.created:
            return self.create("scratch")
        run_sync(self._admin_on(name, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        return self.url(name)

    async def _admin_on(self, name: str, sql: str) -> None:
        assert name.startswith("legend_test_")
        conn = await asyncpg.connect(
            make_url(self.admin_url).set(database=name).render_as_string(False), timeout=5
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def url(self, name: str) -> str:
        return (
            make_url(self.admin_url)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )

    def drop_all(self) -> None:
        for name in self.created:
            assert name.startswith("legend_test_")
            run_sync(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(ADMIN_URL)
    try:
        run_sync(databases._admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {ADMIN_URL}: {exc}")
    yield databases
    databases.drop_all()


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
            await conn.execute(
                text(
                    "TRUNCATE alert_events, alert_rules, alert_log_positions, watchlist_items RESTART IDENTITY CASCADE"
                )
            )
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
        instance_id=instance_id,
        retry_interval=3600.0,  # tests drive delivery rounds themselves
        claim_seconds=claim_seconds,
        single_instance=single_instance,
    )
