"""A trading halt holds alert rules, end to end: over a real uvicorn server on the single server's database
price log and on a real redis-server, an admin's ``market_status`` broadcast enters the price log between
the prices around it, and alert evaluation holds every rule from ``halted`` to the next status.

No quote poller runs: its own announcements (``open``, ``closed``) would end the test's halt whenever they
came. What it publishes enters the log the same way (tests/persistence/test_price_log_contract.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from legend.bootstrap import bootstrap
from legend.settings import DatabaseSettings, RedisSettings, SecuritySettings, Settings
from tests.support.inprocess import serving
from tests.support.redis_server import REDIS_SERVER, RedisServer

ADMIN = {"Authorization": "Bearer halt-admin-token"}
ALICE = {"X-User-Id": "alice"}
TIMEOUT = 15.0


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["memory", "redis"])
async def http(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a served server: its price log in its SQLite database, or Redis's stream."""
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"),
        security=SecuritySettings(admin_token=ADMIN["Authorization"].removeprefix("Bearer ")),
    )
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis")
        prefix = f"legend-halt-{os.getpid()}-{tmp_path.name}-"
        settings = msgspec.structs.replace(settings, redis=RedisSettings(url=redis.url, key_prefix=prefix))
    services = bootstrap(settings, run_quote_poller=False)
    async with serving(services) as url:
        base = url.replace("ws://", "http://").removesuffix("/api/ws")
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as client:
            yield client


async def post(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    response = await http.post(path, json=body, headers=ADMIN)
    assert response.status_code == 200, response.text


async def evaluation(http: httpx.AsyncClient) -> dict[str, Any]:
    stats: dict[str, Any] = (await http.get("/api/ws/stats", headers=ADMIN)).json()["alerting"]["evaluation"]
    return stats


async def price(http: httpx.AsyncClient, value: float) -> None:
    """Broadcast an AAPL price and wait until evaluation has taken it into account."""
    before = (await evaluation(http))["prices_evaluated"]
    await post(http, "/api/ws/broadcast/price", {"ticker": "AAPL", "price": value})
    async with asyncio.timeout(TIMEOUT):
        while (await evaluation(http))["prices_evaluated"] <= before:
            await asyncio.sleep(0.02)


async def events(http: httpx.AsyncClient) -> list[tuple[str, float]]:
    listed = (await http.get("/api/alerts/events", headers=ALICE)).json()["events"]
    return [(e["alert_id"], e["current_price"]) for e in listed]


async def test_a_crossing_during_a_halt_does_not_fire_and_the_first_after_reopening_fires_once(
    http: httpx.AsyncClient,
) -> None:
    rule = {"ticker": "AAPL", "kind": "breakout", "threshold": 150, "rearm": "recross", "session": "any"}
    response = await http.post("/api/alerts/rules", json=rule, headers=ALICE)
    assert response.status_code == 201, response.text
    rule_id = response.json()["id"]

    await price(http, 149.0)  # below the level
    await post(http, "/api/ws/broadcast/market_status", {"status": "halted"})
    await price(http, 151.0)  # crosses, but the market is halted: held
    assert (await evaluation(http))["halted"] is True
    await price(http, 149.5)
    await price(http, 152.0)  # crosses again, still halted
    assert await events(http) == []

    await post(http, "/api/ws/broadcast/market_status", {"status": "open"})
    await price(http, 153.0)  # the first price past the level since the halt ended: fires
    assert (await evaluation(http))["halted"] is False
    await price(http, 154.0)  # holds past it: nothing more
    async with asyncio.timeout(TIMEOUT):
        while not await events(http):
            await asyncio.sleep(0.02)
    assert await events(http) == [(f"{rule_id}:1", 153.0)]
