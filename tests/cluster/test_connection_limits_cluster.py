"""Connection limits hold across the cluster: a user's connections on every instance count together,
and those of an instance that died stop counting once its registration lapses, interest_ttl after its
last heartbeat (a dead worker's, evicted by its supervisor, at once: test_workers.py)."""

from __future__ import annotations

import asyncio
import signal
import time

from tests.cluster.conftest import close_code
from tests.support.redis_server import RedisServer
from tests.support.server import LegendServer
from tests.support.wsclient import connect

INTEREST_TTL = 2.0


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
        b.stop(signal.SIGKILL)  # nothing releases its connection: the cluster must notice the death
        killed = time.monotonic()
        while await close_code(f"{a.ws_url}?user_id=trader") == 4429:
            # its registry entry lapses interest_ttl after its last heartbeat (every interest_ttl / 3)
            late = time.monotonic() - killed
            assert late < INTEREST_TTL + 1.0, f"the dead instance's connection still counts {late:.1f} s on"
            await asyncio.sleep(0.1)
        await on_a.close()
        del on_b
    finally:
        a.close()
        b.close()
        redis.close()
