"""Cluster membership on Redis: the instance registry, each instance's interest and figures, and leases.

A heartbeat (one script, every ``interest_ttl / 3``) registers the instance in a sorted set of id ->
expiry and replaces its interest set and figures hash, all expiring after ``interest_ttl``: a dead
instance drops out on its own. A lease is a key taken when free and renewed only by its holder (one
script); a held lease is renewed in the background while the process lives, so a dead holder's lease
lapses within its ttl whatever the caller's cadence. Leaving hands leases back at once. Every new holding
gets a new fencing token (a counter beside the lease): publishes made with it (``fence``) are refused
once another took the lease, so a holder that was frozen or cut past its ttl cannot publish after it.

The registry is also what says whether an instance's connections still count against the connection
limits (admit.lua): an instance that left it, by leaving, by missing its heartbeats for ``interest_ttl``
or by being evicted (``evict``, by the supervisor of a worker that died), holds none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from legend.adapters.redis import scripts
from legend.adapters.redis.connection import RedisConnection, text
from legend.adapters.redis.keys import Keys
from legend.ports.backplane import BackplaneUnavailable
from legend.ports.cluster import Figures
from legend.runtime.supervisor import Supervised, TaskSupervisor
from legend.settings import RedisSettings

log = logging.getLogger("legend.redis")

# How long ``cluster()`` waits for Redis before it answers with the last figures read: the stats endpoint
# answers from local state within about this, whatever Redis does.
CLUSTER_WAIT = 0.05


def _retrieved(read: asyncio.Future[Any]) -> None:
    """A background read nobody waited for to the end: its failure is the next caller's to see."""
    if not read.cancelled():
        read.exception()


class RedisClusterMembership:
    """The ClusterMembership port on Redis; raises BackplaneUnavailable."""

    def __init__(
        self, connection: RedisConnection, keys: Keys, supervisor: TaskSupervisor | None = None
    ) -> None:
        self.connection = connection
        self.supervisor = supervisor or TaskSupervisor()  # runs the heartbeat and the lease renewal
        self.keys = keys
        self.instance_id = connection.instance_id
        self.figures: Figures | None = None  # this instance's share, sent with every heartbeat
        self.leases: dict[str, int] = {}  # held lease -> its ttl in ms, renewed in the background
        self.tokens: dict[str, int] = {}  # held lease -> the fencing token of this holding
        self._interest: list[str] = []
        # One heartbeat at a time, its tickers read inside: a background beat sent with the tickers of
        # before a set_interest (its script delayed, say by a NOSCRIPT reload) must not land after it.
        self._beating = asyncio.Lock()
        self._tasks: list[Supervised] = []
        self._registered = False  # something of this instance is in Redis: leave() has work
        self._reading: asyncio.Future[dict[str, object]] | None = None  # the cluster figures being read
        self._snapshot: tuple[dict[str, object], float] | None = None  # the last read, and when (loop time)

    async def join(self, figures: Figures) -> None:
        """Report ``figures`` with every heartbeat, and keep the registration and held leases alive."""
        self.figures = figures
        self._registered = True
        if self._tasks:
            return
        self._tasks = [
            self.supervisor.start("redis heartbeat", self._keep_alive),
            self.supervisor.start("redis leases", self._renew_leases),
        ]

    async def leave(self) -> None:
        """Stop the heartbeat, hand back held leases and leave the registry (one script, at most a
        second when Redis is down)."""
        tasks, self._tasks = self._tasks, []
        await self.supervisor.stop_tasks(tasks, timeout=1.0)
        redis = self.connection.commands
        if redis is not None and self._registered:
            keys = [self.keys.lease(name) for name in sorted(self.leases)]
            keys += [self.keys.registry, self.keys.interest, self.keys.figures]
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(min(1.0, self.connection.deadline)):
                    await scripts.LEAVE(redis, keys, [self.instance_id])
        self._registered = False
        self.leases.clear()
        self.tokens.clear()

    async def set_interest(self, tickers: Iterable[str]) -> None:
        """Store this instance's tickers now; the heartbeat keeps them alive until ``interest_ttl``."""
        self._interest = sorted(set(tickers))
        await self.connection.call("set_interest", self._heartbeat)

    async def interest(self) -> set[str]:
        """The union of the tickers of every live instance."""
        found = await self.connection.call(
            "interest", scripts.MEMBERS, [self.keys.registry], [self.keys.prefix, "interest"]
        )
        return {text(item) for item in found}

    async def hold_lease(self, name: str, ttl: float) -> bool:
        """Take the lease when free or renew it when ours (one script). The ttl is capped at
        ``lease_ttl``; a held lease is renewed in the background (after ``join``)."""
        ms = max(1, int(min(ttl, self.connection.settings.lease_ttl) * 1000))
        return self._held(name, ms, await self._lease(name, ms))

    async def release_lease(self, name: str) -> bool:
        """Forget the lease here (no more renewals), then give it up in Redis if still ours."""
        self._held(name, 0, 0)
        await self.connection.call("lease", scripts.RELEASE, [self.keys.lease(name)], [self.instance_id])
        return True

    def fence(self, name: str) -> tuple[str, int] | None:
        """The held lease's fencing token for ``Outgoing.fence``; None when not held."""
        token = self.tokens.get(name)
        return None if token is None else (name, token)

    def _held(self, name: str, ms: int, token: int) -> bool:
        if token:
            self.leases[name] = ms
            self.tokens[name] = token
            self._registered = True
            return True
        self.leases.pop(name, None)
        self.tokens.pop(name, None)
        return False

    async def advance_position(self, name: str, by_time: bool, own: float) -> float:
        """SharedPositions on Redis (one script, Redis's clock); a position not moved for ``stream_ttl``
        expires like an idle stream."""
        ms = int(self.connection.settings.stream_ttl * 1000)
        args = ["time" if by_time else "step", repr(float(own)), ms]
        found = await self.connection.call("position", scripts.POSITION, [self.keys.position(name)], args)
        return float(text(found))

    async def cluster(self, wait: float = CLUSTER_WAIT) -> dict[str, object]:
        """Live instances and the sum of their reported figures (each at most a heartbeat old), within
        ``wait`` seconds whatever Redis does: when the read takes longer (a silent cut, a slow link) or
        fails, the last figures read, with ``stale: true``, their ``age_seconds`` and the ``error``; the
        read goes on in the background for the next call. BackplaneUnavailable before any was read."""
        read = self._reading
        if read is None or read.done():
            read = self._reading = asyncio.ensure_future(self._read_cluster())
            read.add_done_callback(_retrieved)
        try:
            async with asyncio.timeout(wait):
                return await asyncio.shield(read)
        except (TimeoutError, BackplaneUnavailable) as exc:
            why = str(exc) or f"no answer from redis within {wait * 1000:.0f} ms"
            if self._snapshot is None:
                raise BackplaneUnavailable(why) from None
            figures, at = self._snapshot
            age = round(asyncio.get_running_loop().time() - at, 1)
            return {**figures, "stale": True, "age_seconds": age, "error": why}

    async def _read_cluster(self) -> dict[str, object]:
        found = await self.connection.call(
            "cluster", scripts.MEMBERS, [self.keys.registry], [self.keys.prefix, "figures"]
        )
        members: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}
        for i in range(0, len(found) - 1, 2):
            flat = [text(x) for x in found[i + 1]]
            figures = {
                k: int(v) for k, v in zip(flat[::2], flat[1::2], strict=True) if v.lstrip("-").isdigit()
            }
            figures.pop("seen", None)
            members[text(found[i])] = figures
            for key, value in figures.items():
                totals[key] = totals.get(key, 0) + value
        read: dict[str, object] = {"instances": len(members), "members": members, **totals}
        self._snapshot = (read, asyncio.get_running_loop().time())
        return read

    async def _lease(self, name: str, ms: int) -> int:
        keys, args = [self.keys.lease(name), self.keys.fence(name)], [self.instance_id, ms]
        return int(await self.connection.call("lease", scripts.LEASE, keys, args))

    async def _heartbeat(self, redis: Redis) -> None:
        async with self._beating:
            await self._beat(redis)

    async def _beat(self, redis: Redis) -> None:
        figures: dict[str, int] = {}
        if self.figures is not None:
            try:
                figures = {str(k): int(v) for k, v in self.figures().items()}
            except Exception:  # a faulty figures callback must not stop the heartbeat
                log.exception("instance figures failed")
        settings = self.connection.settings
        args: list[str | int] = [self.instance_id, int(settings.interest_ttl * 1000), len(figures)]
        for key, value in figures.items():
            args += [key, value]
        args += self._interest
        self._registered = True
        await scripts.HEARTBEAT(redis, [self.keys.registry, self.keys.interest, self.keys.figures], args)

    async def _keep_alive(self) -> None:
        """Refresh this instance's registry entry, interest and figures well inside ``interest_ttl``."""
        while True:
            with contextlib.suppress(BackplaneUnavailable):
                await self.connection.call("heartbeat", self._heartbeat)
            await asyncio.sleep(self.connection.settings.interest_ttl / 3)

    async def _renew_leases(self) -> None:
        """Renew every held lease at a third of its ttl; forget one that another instance took meanwhile."""
        default_ms = self.connection.settings.lease_ttl * 1000
        while True:
            await asyncio.sleep(min(self.leases.values(), default=default_ms) / 3000)
            for name, ms in list(self.leases.items()):
                with contextlib.suppress(BackplaneUnavailable):
                    if name in self.leases and not self._held(name, ms, await self._lease(name, ms)):
                        log.warning("lease %r was taken by another instance", name)


async def evict(settings: RedisSettings, instance_ids: Iterable[str]) -> None:
    """Remove instances known to be dead from the cluster now: their registration, interest and figures,
    and with the registration the weight of their connections against the connection limits. Their
    leases still lapse on their own, within ``lease_ttl``: nothing outside an instance knows their names.
    On a connection of its own (a worker's supervisor has none); raises BackplaneUnavailable."""
    connection = RedisConnection(settings, "supervisor")
    connection.open()
    try:
        for instance_id in instance_ids:
            keys = Keys(settings.key_prefix, settings.channel_prefix, instance_id)
            await connection.call(
                "evict", scripts.LEAVE, [keys.registry, keys.interest, keys.figures], [instance_id]
            )
    finally:
        await connection.close()
