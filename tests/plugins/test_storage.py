"""Plugins own their tables (``register_storage``): the example third-party package keeps a table of its
own end to end (migrated at start, written by its feed, read by its route); what a plugin registers is
checked; a plugin whose revisions fail, or whose tables a server database lacks, fails alone; no built-in
plugin reaches into the server's adapters."""

from __future__ import annotations

import ast
import asyncio
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import legend_sentiment
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect
from sqlalchemy.engine import Connection

from legend.adapters.sql import Database, migrate
from legend.app import create_app
from legend.bootstrap import Services
from legend.plugins import RegisterStorage, hookimpl

from .helpers import eventually

Build = Callable[..., Services]
ROOT = Path(__file__).resolve().parents[2]

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table("notes_items", sa.Column("id", sa.Integer(), primary_key=True))
    {after}


def downgrade():
    op.drop_table("notes_items")
"""


def notes_metadata(*tables: str) -> MetaData:
    metadata = MetaData()
    for name in tables:
        Table(name, metadata, Column("id", Integer, primary_key=True), Column("text", String(200)))
    return metadata


def storing(*registrations: tuple[Any, Any]) -> types.SimpleNamespace:
    """A plugin whose ``register_storage`` registers these (metadata, migrations) pairs."""

    @hookimpl
    def register_storage(register: RegisterStorage) -> None:
        for metadata, migrations in registrations:
            register(metadata, migrations)

    return types.SimpleNamespace(register_storage=register_storage)


def migrations(tmp_path: Path, after: str = "") -> Path:
    folder = tmp_path / "notes-migrations"
    folder.mkdir(exist_ok=True)
    (folder / "0001_notes.py").write_text(REVISION.format(after=after), encoding="utf-8")
    return folder


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def record(services: Services, name: str) -> Any:
    assert services.plugins is not None
    return services.plugins.records[name]


async def test_a_third_party_plugin_owns_a_table_end_to_end(build: Build) -> None:
    services = build(
        {
            "enabled": ["sentiment"],
            "sentiment": {"tickers": ["AAPL"], "interval": 0.05, "premium_users": ["vip"]},
        }
    )
    sentiment = record(services, "sentiment")
    assert sentiment.source.startswith("entry point") and sentiment.storage is not None
    assert sentiment.storage.version_table == "sentiment_alembic_version"
    assert sentiment.summary()["tables"] == ["sentiment_daily"]
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        # started: the embedded default migrated the plugin's tables with the server's
        assert services.database is not None
        async with services.database.read() as conn:
            assert {"sentiment_daily", "sentiment_alembic_version"} <= await conn.run_sync(_tables)
        assert await migrate.current(services.database, sentiment.storage) == "0001"
        await eventually(lambda: sentiment.context.metrics.get("readings", 0) >= 3, what="three readings")
        # the counter moves before the reading's write commits: wait for the table to show three
        for _ in range(200):
            response = await client.get("/api/sentiment/aapl/daily", headers={"X-User-Id": "vip"})
            assert response.status_code == 200, response.text
            days = response.json()["days"]
            if days and days[0]["readings"] >= 3:
                break
            await asyncio.sleep(0.05)
        (today,) = response.json()["days"]
        assert response.json()["ticker"] == "AAPL" and today["day"] == services.clock.now().date().isoformat()
        assert today["readings"] >= 3 and today["bullish"] + today["bearish"] == today["mentions"]
        assert -1 <= today["average_score"] <= 1
        denied = await client.get("/api/sentiment/AAPL/daily", headers={"X-User-Id": "pleb"})
        assert denied.status_code == 403
    assert sentiment.state.value == "enabled" and sentiment.errors == 0


@pytest.mark.parametrize(
    ("registrations", "problem"),
    [
        (lambda m: [], None),  # registering nothing is no storage, and no problem
        (
            lambda m: [(notes_metadata("notes_items"), m), (notes_metadata("notes_more"), m)],
            "register() called 2 times: a plugin has one MetaData and one migrations folder",
        ),
        (
            lambda m: [("notes_items", m)],
            "register() takes the plugin's own sqlalchemy MetaData, not 'notes_items'",
        ),
        (lambda m: [(MetaData(), m)], "its MetaData has no tables"),
        (lambda m: [(notes_metadata("notes_items"), m / "nowhere")], "is not one"),
        (lambda m: [(notes_metadata("alert_rules"), m)], "table 'alert_rules' belongs to the server"),
        (lambda m: [(notes_metadata("portfolio_positions"), m)], "belongs to plugin portfolio"),
        (lambda m: [(notes_metadata("notes_alembic_version"), m)], "is the plugin's version table"),
    ],
)
async def test_what_a_plugin_registers_as_storage_is_checked(
    build: Build, tmp_path: Path, registrations: Callable[[Path], list[tuple[Any, Any]]], problem: str | None
) -> None:
    services = build({}, plugins={"notes": storing(*registrations(migrations(tmp_path)))})
    notes = record(services, "notes")
    if problem is None:
        assert (notes.state.value, notes.storage) == ("enabled", None)
    else:
        assert notes.state.value == "failed" and notes.storage is None
        assert notes.last_error.startswith("register_storage: ") and problem in notes.last_error
    await services.start()
    assert record(services, "portfolio").state.value == "enabled"  # the others go on


async def test_a_plugin_whose_revisions_fail_is_failed_alone_and_its_changes_rolled_back(
    build: Build, tmp_path: Path
) -> None:
    folder = migrations(tmp_path, after='raise RuntimeError("revision broke")')
    services = build({}, plugins={"notes": storing((notes_metadata("notes_items"), folder))})
    notes = record(services, "notes")
    assert notes.state.value == "enabled" and notes.storage is not None
    await services.start()
    assert services.started and notes.state.value == "failed"
    assert notes.last_error == "storage: RuntimeError: revision broke"
    assert record(services, "portfolio").state.value == "enabled"
    assert services.database is not None
    async with services.database.read() as conn:
        tables = await conn.run_sync(_tables)
    assert "notes_items" not in tables and "portfolio_positions" in tables
    assert await migrate.current(services.database, notes.storage) is None


async def test_on_a_server_database_a_plugin_whose_tables_are_not_migrated_fails_until_db_upgrade(
    build: Build, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/server.db"
    setup = Database(url)
    await migrate.upgrade(setup)  # the server's tables only, as `alembic upgrade head` would
    await setup.close()
    services = build({}, database=Database(url, migrate_on_start=False))
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        portfolio = record(services, "portfolio")
        assert services.started and portfolio.state.value == "failed"
        assert record(services, "news").state.value == "enabled"
        assert portfolio.last_error == (
            f"storage: DatabaseError: the tables of plugin portfolio in {url} are at schema revision none, "
            "this version needs 0001: run `legend db upgrade`"
        )
        response = await client.get("/api/portfolio/positions", headers={"X-User-Id": "ann"})
        assert response.status_code == 503 and "run `legend db upgrade`" in response.json()["detail"]


def test_the_built_in_plugins_and_the_example_import_no_server_adapter() -> None:
    """Ordinary plugins: their tables, migrations and repositories use only ``legend.plugins`` (and the
    domain's value types); nothing of ``legend.adapters``."""
    folders = [ROOT / "legend/plugins/builtin", Path(legend_sentiment.__file__).parent]
    offenders = []
    for path in sorted(p for folder in folders for p in folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.relative_to(ROOT)} imports {n}" for n in names if n.startswith("legend.adapters")
            ]
    assert not offenders, offenders
