"""The single server keeps every acknowledged crossing across SIGKILL: a real ``legend serve`` on its
defaults (the in-memory backplane, the SQLite file in its data directory; and on PostgreSQL), killed right
after a crossing price was answered 200, restarted on the same data. The price log is in the database
(``legend.adapters.sql.price_log``), committed before the answer: after the restart the crossing fires,
once, is stored, and reaches its owner (from the stream's history on connect). Evaluation is held up
meanwhile (``evaluation_held``), so the crossing is evaluated after the restart every time.

Before the log was durable, none of the five crossings below fired: each died with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.cluster.conftest import until
from tests.persistence.conftest import _truncate as truncate
from tests.support.postgres import run_sync
from tests.support.server import LegendServer
from tests.support.wsclient import connect

TICKER = "CRSH"  # not in the replay provider's data: only the test's own prices move it
LEVEL = 100.0
ROUNDS = 5


@pytest.fixture(params=["default", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The ``[database]`` section: none but the data directory (SQLite, the embedded default), or a
    migrated PostgreSQL database."""
    if request.param == "default":
        return {"data_dir": str(tmp_path / "data")}
    url: str = request.getfixturevalue("postgres_migrated")
    run_sync(truncate(url))
    return {"url": url}


@pytest.fixture
def server(database: dict[str, Any]) -> Iterator[LegendServer]:
    made = LegendServer(
        {
            "database": database,
            "quotes": {"provider": "replay"},
            "realtime": {"update_interval": 3600, "after_hours_interval": 3600},
        }
    )
    try:
        yield made.start(timeout=60)
    finally:
        made.close()


@contextlib.asynccontextmanager
async def evaluation_held(database: dict[str, Any]) -> AsyncIterator[None]:
    """Another writer holds what evaluation writes first when it stores a batch (the server's SQLite
    file; on PostgreSQL the positions table), so the crossing is certainly not stored before the kill:
    without the hold, evaluation sometimes wins the race and stores and publishes it first. Publishing
    is not held up: the price log is in its own file (SQLite) or table (PostgreSQL)."""
    if "url" in database:
        engine = create_async_engine(database["url"])
        try:
            async with engine.connect() as conn, conn.begin():
                await conn.execute(text("LOCK TABLE alert_log_positions IN EXCLUSIVE MODE"))
                yield
        finally:
            await engine.dispose()
        return
    conn = sqlite3.connect(Path(database["data_dir"]) / "legend.db", isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def price(http: httpx.AsyncClient, server: LegendServer, value: float) -> None:
    response = await http.post(
        f"{server.url}/api/ws/broadcast/price", json={"ticker": TICKER, "price": value}, headers=server.admin
    )
    assert response.status_code == 200, response.text


async def stored(http: httpx.AsyncClient, server: LegendServer) -> list[dict[str, Any]]:
    response = await http.get(f"{server.url}/api/alerts/events?limit=100", headers={"X-User-Id": "alice"})
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()["events"]
    return events[::-1]  # oldest first


async def test_a_crossing_answered_right_before_a_sigkill_fires_once_after_the_restart(
    server: LegendServer, database: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        body = {
            "ticker": TICKER,
            "kind": "breakout",
            "threshold": LEVEL,
            "rearm": "recross",
            "session": "any",
        }
        response = await http.post(
            f"{server.url}/api/alerts/rules", json=body, headers={"X-User-Id": "alice"}
        )
        assert response.status_code == 201, response.text
        rule = response.json()["id"]
        await price(http, server, 99.0)  # the rule learns its side
        for n in range(1, ROUNDS + 1):
            async with evaluation_held(database):  # so that it cannot store the crossing before the kill
                await price(http, server, 101.0)  # a crossing, answered 200 ...
                server.stop(signal.SIGKILL)  # ... and the process dies at once
            server.start(timeout=60)  # on the same data

            async def published(count: int = n) -> list[dict[str, Any]] | None:
                events = await stored(http, server)
                return events if len(events) >= count and all(e["published"] for e in events) else None

            try:
                events, _ = await until(published, timeout=30, what=f"trigger {n} stored and published")
            except AssertionError as exc:
                raise AssertionError(
                    f"{exc}: {await stored(http, server)}\n{server.logs()[-4000:]}"
                ) from None
            assert [e["alert_id"] for e in events] == [f"{rule}:{k}" for k in range(1, n + 1)]  # once each

            alice = await connect(server.ws_url, user_id="alice")  # the owner, connecting after the restart
            _, histories = await alice.subscribe("alerts")
            mine = next(h for h in histories if h["channel"] == "alerts:user:alice")
            assert [m["alert_id"] for m in mine["messages"]] == [f"{rule}:{n}"]  # delivered by this run
            assert mine["messages"][0]["current_price"] == 101.0
            await alice.close()
            await price(http, server, 99.0)  # back below: the next round crosses again

        status = (await http.get(f"{server.url}/api/ws/stats", headers=server.admin)).json()
        assert status["alerting"]["triggers_fired"] == 1  # this run fired the last crossing, nothing else
        assert len(await stored(http, server)) == ROUNDS


async def test_a_crossing_the_quote_poller_published_right_before_a_sigkill_fires_once_after_the_restart(
    server: LegendServer, database: dict[str, Any]
) -> None:
    """The same for a price the quote poller published (the replay provider's SPX): once a client has
    seen it, it is in the log. After the restart the poller publishes SPX again (the rule's ticker), so
    a trigger fires either way; the one of the price logged before the kill fires first, stamped then."""
    async with httpx.AsyncClient(timeout=10) as http:
        body = {"ticker": "SPX", "kind": "price_above", "threshold": 1000, "rearm": "once", "session": "any"}
        response = await http.post(
            f"{server.url}/api/alerts/rules", json=body, headers={"X-User-Id": "alice"}
        )
        assert response.status_code == 201, response.text
        rule = response.json()["id"]
        async with evaluation_held(database):
            bob = await connect(server.ws_url, user_id="bob")
            await bob.subscribe("ticker", ticker="SPX")  # the poller polls SPX at once (update_interval: 1 h)
            seen = await bob.expect(lambda m: m.get("type") == "price_update", timeout=30)
            server.stop(signal.SIGKILL)
            killed_at = datetime.now(UTC)
        server.start(timeout=60)

        async def published() -> list[dict[str, Any]] | None:
            events = await stored(http, server)
            return events if events and all(e["published"] for e in events) else None

        events, _ = await until(published, timeout=30, what="the trigger stored and published")
        await asyncio.sleep(1.0)  # a second trigger (there must be none: the rule fires once) would be in
        events = await stored(http, server)
        assert [e["alert_id"] for e in events] == [f"{rule}:1"]
        (event,) = events
        assert datetime.fromisoformat(event["triggered_at"]) <= killed_at  # the price seen before the kill
        assert event["current_price"] == seen["price"]
        alice = await connect(server.ws_url, user_id="alice")
        _, histories = await alice.subscribe("alerts")
        mine = next(h for h in histories if h["channel"] == "alerts:user:alice")
        assert [m["alert_id"] for m in mine["messages"]] == [f"{rule}:1"]
        await alice.close()
