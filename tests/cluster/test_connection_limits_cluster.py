"""Connection limits hold across the cluster: a user's connections on every instance count together,
and those of an instance that died stop counting once its registrations expire."""

from __future__ import annotations

import asyncio
import signal
import time

import websockets

from tests.support.redis_server import RedisServer
from tests.support.server import LegendServer
from tests.support.wsclient import connect

INTEREST_TTL = 2.0


async def close_code(url: str) -> int | None:
    """None when the connection is accepted and acknowledged, else the code it was closed with."""
    async with websockets.connect(url, open_timeout=10) as ws:
        try:
            first = await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            return ws.close_code
        assert '"connection"' in str(first)
        return None


async def test_a_users_connections_count_on_every_instance_and_a_dead_ones_expire() -> None:
    redis = RedisServer().start()
    config = {
        "redis": {"url": redis.url, "interest_ttl": INTEREST_TTL, "lease_ttl": 2.0},
        "realtime": {"update_interval": 3600, "after_hours_interval": 3600, "max_connections_per_user": 2},
    }
    a, b = LegendServer(config), LegendServer(config)
    try:
        a.start(timeout=60)
        b.start(timeout=60)
        on_a = await connect(a.ws_url, user_id="trader")
        on_b = await connect(b.ws_url, user_id="trader")
        assert await close_code(f"{a.ws_url}?user_id=trader") == 4429  # two already, one on each
        assert await close_code(f"{b.ws_url}?user_id=trader") == 4429
        assert await close_code(f"{b.ws_url}?user_id=someone_else") is None
        b.stop(signal.SIGKILL)  # its connection can no longer be released: it must expire
        deadline = time.monotonic() + INTEREST_TTL * 4
        while await close_code(f"{a.ws_url}?user_id=trader") == 4429:
            assert time.monotonic() < deadline, "the dead instance's connection still counts"
            await asyncio.sleep(0.5)
        await on_a.close()
        del on_b
    finally:
        a.close()
        b.close()
        redis.close()
