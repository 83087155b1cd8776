"""Several real ``legend serve`` processes on one private ``redis-server``: the docker-compose topology
(deploy/) without Docker, each instance on its own port as a load balancer would see them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import httpx
import pytest
import websockets

from tests.support.redis_server import RedisServer, quick_redis_settings
from tests.support.server import LegendServer, pattern_body

LEASE_TTL = 2.0  # [redis] lease_ttl: how long a killed leader can keep the quote poller lease


class Cluster:
    """A Redis and N app instances; every process is killed on ``close()`` whatever happened."""

    def __init__(self, size: int, **extra: dict[str, Any]) -> None:
        self.redis = RedisServer().start()
        config: dict[str, dict[str, Any]] = {
            "redis": {**quick_redis_settings(self.redis.url, LEASE_TTL), "health_check_interval": 1.0},
            # Prices twice a second in and out of market hours, so every test sees a steady stream.
            "realtime": {"update_interval": 0.5, "after_hours_interval": 0.5},
        }
        for section, values in extra.items():
            config.setdefault(section, {}).update(values)
        self.servers = [LegendServer(config) for _ in range(size)]

    def start(self) -> Cluster:
        try:
            with ThreadPoolExecutor(len(self.servers)) as pool:
                list(pool.map(lambda server: server.start(), self.servers))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.close()  # SIGKILL
        self.redis.close()

    def alive(self) -> list[LegendServer]:
        return [s for s in self.servers if s.process is not None and s.process.poll() is None]

    def logs(self) -> str:
        return "\n".join(f"--- instance :{s.port}\n{s.logs()[-3000:]}" for s in self.servers)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Three instances shared by the tests that leave them running."""
    with closing(Cluster(3).start()) as made:
        yield made


@pytest.fixture
def own_cluster() -> Iterator[Callable[[int], Cluster]]:
    """A fresh cluster for a test that kills something in it."""
    made: list[Cluster] = []

    def make(size: int) -> Cluster:
        made.append(Cluster(size).start())
        return made[-1]

    try:
        yield make
    finally:
        for item in made:
            item.close()


async def until(
    condition: Callable[[], Awaitable[Any]], timeout: float, what: str, every: float = 0.1
) -> tuple[Any, float]:
    """Poll an async condition until it returns something truthy: (that value, seconds it took)."""
    started = time.monotonic()
    while True:
        value = await condition()
        if value:
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(every)


async def close_code(url: str) -> int | None:
    """None when the connection is accepted and acknowledged, else the code it was closed with."""
    async with websockets.connect(url, open_timeout=10) as ws:
        try:
            first = await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            return ws.close_code
        assert '"connection"' in str(first)
        return None


async def stats(http: httpx.AsyncClient, server: LegendServer) -> dict[str, Any]:
    response = await http.get(f"{server.url}/api/ws/stats", headers=server.admin)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def pattern(i: int) -> dict[str, object]:
    return pattern_body(f"cluster pattern {i}", entry=100 + i, stop=95 + i, target=120 + i)
