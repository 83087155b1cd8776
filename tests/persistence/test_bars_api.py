"""``GET /api/bars/{ticker}`` over the real app (Litestar test client) and a real database, SQLite and
PostgreSQL: the body, paging backwards with ``before``, the 400s naming their field, 404 for a ticker the
provider does not know, and JWT mode."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.sql import Database
from legend.adapters.sql.bars import SqlAlchemyBarStore
from legend.app import create_app
from legend.bootstrap import Services, bootstrap
from legend.domain.bars import Bar
from legend.ports.repositories import PositionMove
from legend.settings import DatabaseSettings, QuotesSettings, SecuritySettings, Settings
from tests.support.bars import T0, bar

JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256"

Client = AsyncTestClient[Any]


def settings_for(url: str, provider: str = "simulated", **security: Any) -> Settings:
    return Settings(
        database=DatabaseSettings(url=url),
        security=SecuritySettings(admin_token="admin-secret", **security),
        quotes=QuotesSettings(provider=provider),
    )


@asynccontextmanager
async def serving(url: str, services: Services, bars: list[Bar]) -> AsyncIterator[Client]:
    """The app over ``services`` (started by its lifespan, in the test client's own loop), with ``bars``
    stored first in its database ``url`` through a bar store of this loop."""
    database = Database(url, migrate_on_start=False)
    try:
        await SqlAlchemyBarStore(database).write(bars, PositionMove("test-log", None, "1"))
    finally:
        await database.close()
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        yield client


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    services = bootstrap(settings_for(database_url), clock=FrozenClock(), run_quote_poller=False)
    # ten closed bars of 1m, the eleventh still forming, and a 5m bar beside them
    async with serving(
        database_url, services, [bar(n=n) for n in range(10)] + [bar(n=10, closed=False), bar(interval="5m")]
    ) as test:
        yield test


async def test_bars_oldest_first_the_forming_bar_last_paged_back_with_before(client: Client) -> None:
    response = await client.get("/api/bars/aapl")  # interval=1m, limit=500 by default
    assert response.status_code == 200
    body = response.json()
    assert body["ticker"] == "AAPL" and body["interval"] == "1m"
    assert [b["time"] for b in body["bars"]] == [
        (T0 + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:00.000Z") for n in range(11)
    ]
    assert body["bars"][0] == {
        "time": "2026-03-02T14:30:00.000Z",
        "open": 99.5,
        "high": 101.0,
        "low": 99.0,
        "close": 100.0,
        "volume": 1000,
    }
    assert body["bars"][-1]["close"] == 110.0  # the bar still forming
    page = (await client.get("/api/bars/AAPL", params={"limit": 3})).json()["bars"]
    assert [b["close"] for b in page] == [108.0, 109.0, 110.0]
    back = await client.get("/api/bars/AAPL", params={"limit": 3, "before": page[0]["time"]})
    assert [b["close"] for b in back.json()["bars"]] == [105.0, 106.0, 107.0]
    # naive is UTC, an offset is read
    naive = (await client.get("/api/bars/AAPL", params={"before": "2026-03-02T14:32:00"})).json()["bars"]
    offset = await client.get("/api/bars/AAPL", params={"before": "2026-03-02T09:32:00-05:00"})
    assert [b["close"] for b in naive] == [b["close"] for b in offset.json()["bars"]] == [100.0, 101.0]
    five = (await client.get("/api/bars/AAPL", params={"interval": "5m"})).json()
    assert five["interval"] == "5m" and len(five["bars"]) == 1
    # a known ticker without bars yet: an empty list
    empty = await client.get("/api/bars/MSFT", params={"interval": "1d"})
    assert empty.status_code == 200 and empty.json() == {"ticker": "MSFT", "interval": "1d", "bars": []}


@pytest.mark.parametrize(
    ("path", "params", "key", "message"),
    [
        ("/api/bars/AAPL", {"interval": "2m"}, "interval", "expected one of 1m, 5m, 15m, 1h, 1d, got '2m'"),
        ("/api/bars/AAPL", {"limit": "5001"}, "limit", "5000"),
        ("/api/bars/AAPL", {"limit": "0"}, "limit", "1"),
        ("/api/bars/AAPL", {"limit": "many"}, "limit", "int"),
        ("/api/bars/AAPL", {"before": "yesterday"}, "before", "not an ISO-8601 instant: 'yesterday'"),
        ("/api/bars/A$", {}, "ticker", "Invalid ticker: 'A$'"),
    ],
)
async def test_a_bad_field_is_a_400_that_names_it(
    client: Client, path: str, params: dict[str, str], key: str, message: str
) -> None:
    response = await client.get(path, params=params)
    body = response.json()
    assert response.status_code == 400 and body["status_code"] == 400, body
    assert [item["key"] for item in body["extra"]] == [key], body
    assert message in body["extra"][0]["message"], body


async def test_an_unknown_ticker_is_404_as_subscribe_refuses_it(database_url: str) -> None:
    # the replay provider knows its files' tickers only (the bundled sample: SPX)
    services = bootstrap(settings_for(database_url, "replay"), clock=FrozenClock(), run_quote_poller=False)
    async with serving(database_url, services, [bar("SPX")]) as client:
        response = await client.get("/api/bars/NOTAREAL")
        assert response.status_code == 404
        assert response.json() == {
            "status_code": 404,
            "detail": "Unknown ticker: NOTAREAL (no prices for it from replay)",
        }
        known = await client.get("/api/bars/SPX")
        assert known.status_code == 200 and len(known.json()["bars"]) == 1


async def test_jwt_mode_needs_a_signed_in_user(database_url: str) -> None:
    settings = settings_for(database_url, auth="jwt", jwt_secret=JWT_SECRET)
    services = bootstrap(settings, clock=FrozenClock(), run_quote_poller=False)
    async with serving(database_url, services, [bar()]) as client:
        response = await client.get("/api/bars/AAPL", headers={"X-User-Id": "alice"})
        assert response.status_code == 401
        assert response.json()["detail"] == (
            "authentication required: missing token: send Authorization: Bearer <JWT>"
        )
        token = jwt.encode({"sub": "alice", "exp": time.time() + 60}, JWT_SECRET, algorithm="HS256")
        signed_in = await client.get("/api/bars/AAPL", headers={"Authorization": f"Bearer {token}"})
        assert signed_in.status_code == 200 and len(signed_in.json()["bars"]) == 1


async def test_development_mode_is_public(client: Client) -> None:
    response = await client.get("/api/bars/AAPL", params={"limit": 1})  # no user id, no token
    assert response.status_code == 200 and len(response.json()["bars"]) == 1
