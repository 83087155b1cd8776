"""``GET /ready`` asks the database too: a ``SELECT 1`` with a short timeout, its answer reused for a
moment so that a balancer's probes do not load the database; 503 with the reason while it is down."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from legend.adapters.sql import Database
from tests.support.postgres import SUPERUSER, PostgresServer
from tests.support.server import LegendServer


async def test_the_database_health_is_shared_cached_and_recovers(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/not-yet/legend.db")
    try:
        answers = await asyncio.gather(*(database.health() for _ in range(20)))
        first = answers[0]
        assert first["ok"] is False and first["backend"] == "sqlite"
        assert "unable to open database file" in first["error"]
        assert all(answer is first for answer in answers)  # one probe answered all twenty
        assert await database.health() is first  # and the next one, within the cache time
        (tmp_path / "not-yet").mkdir()
        deadline = time.monotonic() + 30
        while not (await database.health())["ok"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert await database.health() == {"ok": True, "backend": "sqlite"}
    finally:
        await database.close()


@pytest.mark.postgres
def test_ready_is_503_with_the_reason_while_postgresql_is_stopped() -> None:
    postgres = PostgresServer().start()
    server: LegendServer | None = None
    try:
        url = f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{postgres.port}/postgres"
        server = LegendServer({"database": {"url": url, "migrate_on_start": True}}).start()
        ready = httpx.get(f"{server.url}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["database"] == {"ok": True, "backend": "postgresql"}
        postgres.stop()
        deadline = time.monotonic() + 60
        while (ready := httpx.get(f"{server.url}/ready", timeout=10)).status_code == 200:
            assert time.monotonic() < deadline, "still ready 60 s after PostgreSQL stopped"
            time.sleep(0.2)
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "degraded" and body["backplane"]["ok"] is True
        assert body["database"]["ok"] is False and body["database"]["error"], body
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200  # alive, not ready
    finally:
        if server is not None:
            server.close()
        postgres.close()
