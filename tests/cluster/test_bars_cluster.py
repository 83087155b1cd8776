"""Bars built once for the cluster: two real ``legend serve`` processes on a real Redis and one shared
database; prices broadcast through both across a real minute boundary, the building instance SIGKILLed
right after it. Exactly one instance builds at a time, the stored bars are exactly what one builder makes
of the published prices (from the stream's history), and the bars channel carries every closed bar once:
none lost, none with two versions, none twice.

The instances run on the system clock, so the test waits for the next minute boundary (up to a minute,
half of one on average); the frozen-clock version is tests/persistence/test_bar_building.py.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.adapters.sql import Database
from legend.adapters.sql.bars import SqlAlchemyBarStore
from legend.domain.bar_building import BarBuilder
from legend.domain.bars import INTERVALS, Bar
from legend.domain.prices import decode_logged_price
from legend.domain.timefmt import iso
from tests.cluster.conftest import stats, until
from tests.support.redis_server import RedisServer, quick_redis_settings
from tests.support.server import LegendServer

TICKER = "BARZ"  # not in the replay provider's data: only the test's prices move it
LEASE_TTL = 1.5


class Instances:
    """A Redis and two instances on one SQLite database."""

    def __init__(self, database_url: str) -> None:
        self.redis = RedisServer().start()
        config: dict[str, dict[str, Any]] = {
            "redis": quick_redis_settings(self.redis.url, LEASE_TTL),
            "realtime": {"update_interval": 3600, "after_hours_interval": 3600, "history_size": 5000},
            "quotes": {"provider": "replay"},
            "database": {"url": database_url},
        }
        self.servers = [LegendServer(config) for _ in range(2)]

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.redis.close()

    def logs(self) -> str:
        return "\n".join(f"--- :{s.port}\n{s.logs()[-3000:]}" for s in self.servers)

    async def published(self, stream: str = f"ticker:{TICKER}") -> list[dict[str, Any]]:
        """What ``stream`` carried, in order (the ticker's prices: in log order)."""
        client = aioredis.from_url(self.redis.url)
        try:
            texts = await client.lrange(f"legend:{{{stream}}}:history", 0, -1)
        finally:
            await client.aclose()
        return [json.loads(text) for text in texts]


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[Instances]:
    made = Instances(f"sqlite+aiosqlite:///{tmp_path}/shared.db")
    try:
        yield made
    finally:
        made.close()


async def leaders(http: httpx.AsyncClient, servers: list[LegendServer]) -> list[LegendServer]:
    return [s for s in servers if s.process is not None and (await stats(http, s))["bars"]["leader"]]


def expected(prices: list[dict[str, Any]], now: datetime) -> list[Bar]:
    """What one builder makes of ``prices`` (in log order) with its clock at ``now``."""
    nyse = ExchangeCalendarsMarketCalendar("XNYS")
    builder = BarBuilder(nyse.zone, nyse.session_on)
    bars: dict[tuple[str, datetime], Bar] = {}
    for message in prices:
        price = decode_logged_price(json.dumps(message))
        assert price.timestamp is not None
        for bar in builder.add(price.ticker, price.price, int(price.volume), price.timestamp):
            bars[bar.interval, bar.start] = bar
    for bar in builder.close_due(now):
        bars[bar.interval, bar.start] = bar
    return sorted(bars.values(), key=lambda bar: (INTERVALS.index(bar.interval), bar.start))


async def stored(url: str) -> list[Bar]:
    database = Database(url, migrate_on_start=False)
    try:
        store = SqlAlchemyBarStore(database)
        return [bar for interval in INTERVALS for bar in await store.history(TICKER, interval, 1000)]
    finally:
        await database.close()


async def test_the_builder_killed_at_a_bar_boundary_is_taken_over_with_one_version_of_every_bar(
    instances: Instances, tmp_path: Path
) -> None:
    for server in instances.servers:
        server.start(timeout=60)
    async with httpx.AsyncClient(timeout=10) as http:
        (builder,), _ = await until(
            lambda: leaders(http, instances.servers), timeout=15, what="a building instance"
        )
        boundary = (int(time.time()) // 60 + 1) * 60  # the next minute: the 1m bar before it closes
        killed_at = boundary + 0.05
        sent, killed = 0, False
        while time.time() < boundary + 3.0:
            target = next(s for s in instances.servers[sent % 2 :] + instances.servers if s.process)
            response = await http.post(
                f"{target.url}/api/ws/broadcast/price",
                json={"ticker": TICKER, "price": 100.0 + sent % 7 - sent % 3, "volume": 1000 + 10 * sent},
                headers=target.admin,
            )
            assert response.status_code == 200, response.text
            sent += 1
            if not killed and time.time() >= killed_at:
                builder.stop(signal.SIGKILL)  # just as the minute's bars close
                killed = True
            await asyncio.sleep(0.05)
        survivor = next(s for s in instances.servers if s is not builder)
        await until(lambda: leaders(http, [survivor]), timeout=10, what="the survivor building the bars")
        prices = await instances.published()
        assert len(prices) == sent
        url = instances.servers[0].config["database"]["url"]
        want = expected(prices, datetime.now(UTC))
        closed = [bar for bar in want if bar.closed and bar.interval == "1m"]
        assert closed and closed[-1].start.timestamp() == boundary - 60  # the minute before it closed

        async def caught_up() -> bool:
            return await stored(url) == want

        try:
            await until(caught_up, timeout=10, what="the stored bars")
        except AssertionError:
            got = await stored(url)
            missing = [bar for bar in want if bar not in got]
            extra = [bar for bar in got if bar not in want]
            raise AssertionError(f"missing {missing}\nextra {extra}\n{instances.logs()}") from None
        # the bars channel: every closed 1m bar once, in order, whoever published it
        went = [m["time"] for m in await instances.published(f"bars:{TICKER}:1m") if m["closed"]]
        assert went == [iso(bar.start) for bar in closed], instances.logs()
        figures = (await stats(http, survivor))["bars"]
        assert figures["leader"] is True and figures["late_dropped"] == 0 and figures["failures"] == 0
