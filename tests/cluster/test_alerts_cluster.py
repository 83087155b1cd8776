"""Alert triggers across a cluster and across crashes: real ``legend serve`` processes, a real Redis, one
database shared by the instances (SQLite and PostgreSQL).

Every crossing of a rule fires exactly once, only for its owner, whichever instance or program published
the price (an admin broadcast through any instance, a raw ``PUBLISH price_updates`` in the
specification's format), and whatever process is SIGKILLed right after a crossing (the one instance,
or the one that evaluates), during a burst included.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.cluster.conftest import stats, until
from tests.support.postgres import PostgresDatabases, run_sync
from tests.support.redis_server import RedisServer, quick_redis_settings
from tests.support.server import LegendServer
from tests.support.wsclient import connect

TICKER = "ALRT"  # not in the replay provider's data: only the tests' own prices move it
LEVEL = 100.0
LEASE_TTL = 1.5


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database for every instance of a test."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    return migrated_postgres(request.getfixturevalue("postgres"))


def migrated_postgres(postgres: PostgresDatabases) -> str:
    """A new database on the session's PostgreSQL with the server's and the plugins' tables: its URL."""
    url = postgres.create(f"cluster_{int(time.monotonic() * 1000) % 10**9}")
    from legend.adapters.sql import Database
    from legend.plugins.schemas import enabled_schemas
    from legend.settings import Settings

    async def upgrade() -> None:  # as `legend db upgrade`: the server's tables and the enabled plugins'
        database = Database(url, migrate_on_start=True)
        try:
            assert await database.start(enabled_schemas(Settings())) == {}
        finally:
            await database.close()

    run_sync(upgrade())
    return url


class Alerts:
    """A Redis, N instances on one database, and the helpers the tests share."""

    def __init__(self, size: int, database_url: str, **realtime: Any) -> None:
        self.redis = RedisServer().start()
        config: dict[str, dict[str, Any]] = {
            "redis": quick_redis_settings(self.redis.url, LEASE_TTL),
            "realtime": {
                "update_interval": 3600,
                "after_hours_interval": 3600,
                "history_size": 5000,
                **realtime,
            },
            "quotes": {"provider": "replay"},
            "database": {"url": database_url},
            "alerts": {"retry_interval": 0.5},
        }
        self.servers = [LegendServer(config) for _ in range(size)]
        self.sent = 0

    def start(self) -> Alerts:
        for server in self.servers:
            server.start(timeout=60)
        return self

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.redis.close()

    async def rule(self, http: httpx.AsyncClient, server: LegendServer, user: str, **spec: Any) -> int:
        body = {
            "ticker": TICKER,
            "kind": "breakout",
            "threshold": LEVEL,
            "rearm": "recross",
            "session": "any",
            **spec,
        }
        response = await http.post(f"{server.url}/api/alerts/rules", json=body, headers={"X-User-Id": user})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def price(self, http: httpx.AsyncClient, server: LegendServer, value: float) -> None:
        response = await http.post(
            f"{server.url}/api/ws/broadcast/price",
            json={"ticker": TICKER, "price": value},
            headers=server.admin,
        )
        assert response.status_code == 200, response.text

    async def raw_price(self, value: float) -> None:
        """What another program sends straight into Redis, in the specification's format."""
        self.sent += 1  # a distinct volume: an identical payload would be the same message twice
        message = {"type": "price_update", "ticker": TICKER, "price": value, "volume": self.sent}
        client = aioredis.from_url(self.redis.url)
        try:
            await client.publish("price_updates", json.dumps(message))
        finally:
            await client.aclose()

    async def triggers(self, user: str) -> list[str]:
        return [m["alert_id"] for m in await self.redis.history(f"alerts:user:{user}")]

    async def fired(self, http: httpx.AsyncClient, count: int, user: str = "alice") -> list[str]:
        """Wait until ``user``'s stream carries ``count`` triggers (and no more turn up), then return them."""

        async def enough() -> list[str] | None:
            ids = await self.triggers(user)
            return ids if len(ids) >= count else None

        try:
            await until(enough, timeout=60, what=f"{count} triggers for {user}")
        except AssertionError as exc:  # say what did arrive, and what the instances logged
            logs = "\n".join(s.logs()[-4000:] for s in self.servers)
            raise AssertionError(f"{exc}; got {await self.triggers(user)}\n{logs}") from None
        await asyncio.sleep(LEASE_TTL)  # anything fired twice would be there by now
        return await self.triggers(user)

    async def expect(self, http: httpx.AsyncClient, rule: int, count: int, user: str = "alice") -> None:
        """``user``'s stream carries exactly the triggers 1..count of ``rule``, in order, once each."""
        got = await self.fired(http, count, user)
        if got != keys(rule, count):
            logs = "\n".join(s.logs()[-6000:] for s in self.servers)
            alive = next(s for s in self.servers if s.process is not None)
            events = await http.get(f"{alive.url}/api/alerts/events?limit=100", headers={"X-User-Id": user})
            raise AssertionError(f"expected {keys(rule, count)}, got {got}\nevents {events.text}\n{logs}")


@pytest.fixture
def alerts(database_url: str) -> Iterator[type[Alerts]]:
    made: list[Alerts] = []

    class Made(Alerts):
        def __init__(self, size: int, **realtime: Any) -> None:
            super().__init__(size, database_url, **realtime)
            made.append(self)

    try:
        yield Made
    finally:
        for cluster in made:
            cluster.close()


def crossings(prices: list[float], level: float = LEVEL) -> int:
    """How many times a recross breakout at ``level`` fires along ``prices`` (its first price only
    tells it which side it is on)."""
    fired, side = 0, None
    for price in prices:
        now = price > level
        if side is not None and now and not side:
            fired += 1
        side = now
    return fired


def keys(rule_id: int, count: int) -> list[str]:
    return [f"{rule_id}:{n}" for n in range(1, count + 1)]


async def test_every_crossing_fires_once_for_its_owner_whoever_publishes_the_price(
    alerts: type[Alerts],
) -> None:
    cluster = alerts(2).start()
    a, b = cluster.servers
    async with httpx.AsyncClient(timeout=10) as http:
        rule = await cluster.rule(http, a, "alice")
        await cluster.rule(http, a, "bob", threshold=900.0)  # bob's never crosses
        bob = await connect(b.ws_url, user_id="bob")
        await bob.subscribe("alerts")
        alice = await connect(a.ws_url, user_id="alice")
        await alice.subscribe("alerts")
        await cluster.price(http, b, 99.0)
        for _ in range(10):  # through B only
            await cluster.price(http, b, 101.0)
            await cluster.price(http, b, 99.0)
        for i in range(10):  # through A and B alternately
            await cluster.price(http, (a, b)[i % 2], 101.0)
            await cluster.price(http, (b, a)[i % 2], 99.0)
        for _ in range(10):  # straight into Redis, as another program would
            await cluster.raw_price(101.0)
            await cluster.raw_price(99.0)
        await cluster.expect(http, rule, 30)
        got = await alice.collect("alert_trigger", 30, timeout=20)
        assert [m["alert_id"] for m in got] == keys(rule, 30)  # live, once each, in order
        assert not [m for m in await bob.quiet(0.5) if m["type"] == "alert_trigger"]
        assert await cluster.triggers("bob") == []
        alerting = [(await stats(http, s))["alerting"] for s in (a, b)]
        assert sorted(x["evaluation"]["evaluating"] for x in alerting) == [
            False,
            True,
        ]  # exactly one evaluates
        assert sum(x["triggers_fired"] for x in alerting) == 30
        events = (
            await http.get(f"{a.url}/api/alerts/events?limit=100", headers={"X-User-Id": "alice"})
        ).json()
        assert sorted(e["alert_id"] for e in events["events"]) == sorted(keys(rule, 30))
        assert all(e["published"] for e in events["events"])
        await alice.close()
        await bob.close()


async def test_a_rule_changed_through_one_instance_applies_to_the_next_price_through_the_other(
    alerts: type[Alerts],
) -> None:
    cluster = alerts(2).start()
    a, b = cluster.servers
    async with httpx.AsyncClient(timeout=10) as http:
        await cluster.price(http, b, 99.0)
        rule = await cluster.rule(http, a, "alice", kind="price_above")  # created on A ...
        await cluster.price(http, b, 101.0)  # ... the very next price, through B, fires it
        assert await cluster.fired(http, 1) == [f"{rule}:1"]
        patch = {"threshold": 110.0}
        response = await http.patch(
            f"{b.url}/api/alerts/rules/{rule}", json=patch, headers={"X-User-Id": "alice"}
        )
        assert response.status_code == 200, response.text
        await cluster.price(http, a, 105.0)  # above the old level only: nothing
        await cluster.price(http, a, 111.0)  # above the new one: fires (a redefined rule fires at once)
        assert await cluster.fired(http, 2) == [f"{rule}:1", f"{rule}:2"]
        response = await http.delete(f"{a.url}/api/alerts/rules/{rule}", headers={"X-User-Id": "alice"})
        assert response.status_code == 204
        await cluster.price(http, b, 90.0)
        await cluster.price(http, b, 120.0)
        await asyncio.sleep(1.0)
        assert await cluster.triggers("alice") == [f"{rule}:1", f"{rule}:2"]  # deleted: never again


async def test_repeated_sigkill_right_after_crossings_loses_and_repeats_nothing(alerts: type[Alerts]) -> None:
    cluster = alerts(1).start()
    (server,) = cluster.servers
    prices = [99.0]
    async with httpx.AsyncClient(timeout=10) as http:
        rule = await cluster.rule(http, server, "alice")
        await cluster.price(http, server, 99.0)
        for _ in range(4):
            for value in (101.0, 99.0, 101.0):
                await cluster.price(http, server, value)  # acknowledged ...
                prices.append(value)
            server.stop(signal.SIGKILL)  # ... and the process dies within milliseconds
            server.start(timeout=60)
            await cluster.price(http, server, 99.0)
            prices.append(99.0)
        expected = crossings(prices)
        assert expected == 8
        await cluster.expect(http, rule, expected)


async def test_a_sigkill_during_a_burst_loses_no_acknowledged_crossing(alerts: type[Alerts]) -> None:
    cluster = alerts(1).start()
    (server,) = cluster.servers
    async with httpx.AsyncClient(timeout=10) as http:
        rule = await cluster.rule(http, server, "alice")
        await cluster.price(http, server, 99.0)
        acknowledged = 0

        async def burst() -> None:
            nonlocal acknowledged
            for i in range(400):
                await cluster.price(http, server, 101.0 if i % 2 == 0 else 99.0)
                acknowledged += 1

        task = asyncio.create_task(burst())
        while acknowledged < 150:
            await asyncio.sleep(0.001)
        server.stop(signal.SIGKILL)  # mid-burst, with prices still being evaluated
        with pytest.raises(httpx.TransportError):
            await task
        server.start(timeout=60)
        published = [m["price"] for m in await cluster.redis.history(f"ticker:{TICKER}")]
        assert len(published) >= acknowledged + 1  # every acknowledged price was published
        expected = crossings(published)
        assert expected >= 75
        await cluster.expect(http, rule, expected)


async def test_the_evaluating_instance_killed_after_crossings_is_taken_over_without_loss(
    alerts: type[Alerts],
) -> None:
    cluster = alerts(2).start()
    async with httpx.AsyncClient(timeout=10) as http:

        async def evaluator() -> LegendServer | None:
            for s in cluster.servers:
                if s.process is not None and (await stats(http, s))["alerting"]["evaluation"]["evaluating"]:
                    return s
            return None

        rule = await cluster.rule(http, cluster.servers[0], "alice")
        total = 0
        prices = [99.0]
        await cluster.price(http, cluster.servers[0], 99.0)
        for _ in range(3):
            holder, _ = await until(evaluator, timeout=30, what="an evaluating instance")
            other = next(s for s in cluster.servers if s is not holder)
            for value in (101.0, 99.0, 101.0, 99.0):
                await cluster.price(http, holder, value)
                prices.append(value)
            holder.stop(signal.SIGKILL)  # the evaluator dies right after the crossings
            total = crossings(prices)
            await cluster.expect(http, rule, total)  # the other took over
            holder.start(timeout=60)
            await cluster.price(http, other, 99.0)
            prices.append(99.0)
        assert total == 6
