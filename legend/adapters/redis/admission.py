"""Connections per user and per client address across the cluster: one sorted set each, of
``instance/connection`` -> expiry. This instance keeps its own connections' entries alive. Those of an
instance that is gone stop counting as soon as it leaves the instance registry: at once when it was
evicted (its supervisor saw the worker die), within ``redis.interest_ttl`` of its last heartbeat when it
died unseen; and each entry expires on its own ``interest_ttl`` after its last refresh."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Literal

from redis.asyncio import Redis

from legend.adapters.redis import scripts
from legend.adapters.redis.connection import RedisConnection
from legend.adapters.redis.keys import Keys
from legend.ports.backplane import BackplaneUnavailable

REFRESH_CHUNK = 500  # connections refreshed per script run
RELEASE_CHUNK = 1000  # connections released per pipeline


class RedisConnectionRegistry:
    """The ConnectionRegistry port on Redis; raises BackplaneUnavailable."""

    def __init__(self, connection: RedisConnection, keys: Keys) -> None:
        self.connection = connection
        self.keys = keys
        self.ttl_ms = int(connection.settings.interest_ttl * 1000)
        self._admitted: dict[str, tuple[str, str]] = {}  # connection id -> its two set keys
        # releases asked for meanwhile, sent together (``_release_batch``), and what their callers await
        self._releasing: list[tuple[tuple[str, str], str]] = []
        self._released: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit(
        self, connection_id: str, user_id: str, address: str, max_per_user: int, max_per_address: int
    ) -> Literal["user", "address"] | None:
        """Register the connection in the cluster-wide sets of its user and its address (one script)."""
        keys = self.keys.connections(user_id, address)
        args = [self._member(connection_id), self.ttl_ms, max_per_user, max_per_address]
        verdict = int(await self.connection.call("admit", scripts.ADMIT, [*keys, self.keys.registry], args))
        if verdict == 1:
            return "user"
        if verdict == 2:
            return "address"
        self._admitted[connection_id] = keys
        return None

    async def release(self, connection_id: str, user_id: str, address: str) -> None:
        """Unregister the connection. The releases asked for within one turn of the event loop go in one
        pipeline: a drain or a network blip ends thousands of connections at once, and a round trip each
        (18,000 in a restart storm) held the stopping process up for seconds."""
        keys = self._admitted.pop(connection_id, None) or self.keys.connections(user_id, address)
        self._releasing.append((keys, self._member(connection_id)))
        released = self._released
        if released is None:
            released = self._released = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._release_batch())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.shield(released)

    async def _release_batch(self) -> None:
        await asyncio.sleep(0)  # the releases of this moment join the batch
        batch, self._releasing = self._releasing, []
        released, self._released = self._released, None
        assert released is not None

        async def remove(redis: Redis, chunk: list[tuple[tuple[str, str], str]]) -> None:
            pipe = redis.pipeline(transaction=False)
            for keys, member in chunk:
                for key in keys:
                    pipe.zrem(key, member)
            await pipe.execute()

        try:
            for start in range(0, len(batch), RELEASE_CHUNK):
                await self.connection.call("release", remove, batch[start : start + RELEASE_CHUNK])
        except asyncio.CancelledError:  # the instance stopping: its callers with it
            released.cancel()
            raise
        except BackplaneUnavailable as exc:  # every caller of the batch hears of it
            released.set_exception(exc)
            released.exception()  # retrieved: no warning when no caller waits any more
        else:
            released.set_result(None)

    async def expect_reconnects(self, addresses: Mapping[str, int], ttl: float) -> None:
        """Add to each address's counter of expected reconnects (one pipeline), which expires in ``ttl``."""
        if not addresses:
            return
        ttl_ms = max(1, int(ttl * 1000))

        async def add(redis: Redis) -> None:
            pipe = redis.pipeline(transaction=False)
            for address, count in addresses.items():
                key = self.keys.reconnects(address)
                pipe.incrby(key, count)
                pipe.pexpire(key, ttl_ms)
            await pipe.execute()

        await self.connection.call("expect reconnects", add)

    async def take_reconnect(self, address: str) -> bool:
        key = self.keys.reconnects(address)
        return bool(int(await self.connection.call("take reconnect", scripts.TAKE_RECONNECT, [key], [])))

    async def keep_alive(self) -> None:
        """Extend this instance's registrations well inside their ttl, for as long as it runs."""
        while True:
            await asyncio.sleep(self.connection.settings.interest_ttl / 3)
            if self._admitted:
                with contextlib.suppress(BackplaneUnavailable):
                    await self.connection.call("refresh connections", self._refresh)

    async def _refresh(self, redis: Redis) -> None:
        items = list(self._admitted.items())
        for start in range(0, len(items), REFRESH_CHUNK):
            chunk = items[start : start + REFRESH_CHUNK]
            keys = [key for _, pair in chunk for key in pair]
            members = [self._member(connection) for connection, _ in chunk]
            await scripts.REFRESH(redis, keys, [self.ttl_ms, *members])

    def _member(self, connection_id: str) -> str:
        """A connection's entry in the sets: prefixed with this instance's id (which holds no ``/``), so
        that admit.lua can tell whose it is and drop it once that instance is gone."""
        return f"{self.connection.instance_id}/{connection_id}"
