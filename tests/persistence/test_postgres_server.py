"""The tests' own PostgreSQL (tests/support/postgres.py): a private server, never the machine's shared one,
that stops and leaves nothing behind, and a PostgreSQL test that skips fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest

from tests.support.postgres import OVERRIDE, PostgresServer, run_sync

ROOT = Path(__file__).resolve().parents[2]


async def _fetch(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_the_session_server_is_private_unless_one_is_named(postgres_admin_url: str) -> None:
    if OVERRIDE in os.environ:  # the user's own server, as asked
        assert postgres_admin_url == os.environ[OVERRIDE]
        return
    assert ":5432/" not in postgres_admin_url
    data_directory = str(run_sync(_fetch(postgres_admin_url, "SHOW data_directory")))
    assert Path(data_directory).name == "data" and Path(data_directory).parent.name.startswith(
        "legend-postgres-"
    )
    assert run_sync(_fetch(postgres_admin_url, "SHOW listen_addresses")) == "127.0.0.1"
    assert run_sync(_fetch(postgres_admin_url, "SHOW fsync")) == "off"


@pytest.mark.postgres
def test_a_server_starts_stops_and_removes_its_files() -> None:
    server = PostgresServer().start()
    directory = server.dir
    assert directory is not None and directory.is_dir()
    try:
        assert run_sync(_fetch(server.admin_url, "SELECT 1")) == 1
        assert run_sync(_fetch(server.admin_url, "SELECT current_user")) == "postgres"
    finally:
        server.close()
    assert not server.running and not directory.exists()
    with pytest.raises(OSError):
        run_sync(_fetch(server.admin_url, "SELECT 1"))


def test_a_postgres_test_that_skips_fails_the_run(tmp_path: Path) -> None:
    """Whatever makes a PostgreSQL test skip (a marker, a fixture, the test itself), the run fails."""
    (tmp_path / "test_sample.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.postgres
            def test_marked():
                pytest.skip("no server here")

            def test_fixture(postgres_admin_url):
                pass

            @pytest.fixture
            def postgres_admin_url():
                pytest.skip("no server either")

            def test_unrelated_skip_is_a_skip():
                pytest.skip("fine")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.postgres", "-p", "no:cacheprovider", "-rA"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 skipped, 1 error" in result.stdout, result.stdout  # the fixture's skip: an error
    assert "a PostgreSQL test must not skip (no server here)" in result.stdout
    assert "a PostgreSQL test must not skip (no server either)" in result.stdout
