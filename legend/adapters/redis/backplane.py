"""The Redis backplane: many instances behave as one server.

It assembles the package's parts on one connection: publishing (``sequencer``), the listener that
delivers, reconnects and fills gaps (``listener``, ``recovery``), the sequencing of other programs'
messages (``external``), the price log (``price_log``) and the connection registry (``admission``).
``membership`` is the ClusterMembership port on the same connection. Losing Redis degrades, never
crashes: commands raise ``BackplaneUnavailable`` within the configured timeouts and ``health()`` says so.

Redis Cluster is not supported (``docs/scaling.md`` says why): use one primary, with a replica for
failover, or Redis Sentinel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from legend.adapters.price_log_reads import PriceLogReads
from legend.adapters.redis.admission import RedisConnectionRegistry
from legend.adapters.redis.connection import RedisConnection
from legend.adapters.redis.external import ExternalMessages
from legend.adapters.redis.keys import Keys
from legend.adapters.redis.listener import Listener
from legend.adapters.redis.membership import RedisClusterMembership
from legend.adapters.redis.price_log import RedisPriceLog
from legend.adapters.redis.sequencer import Sequencer
from legend.domain.envelope import Envelope
from legend.ports.backplane import AlreadyPublished, Deliver, Outgoing, Replay
from legend.runtime.message_bus import MessageBus
from legend.runtime.supervisor import Supervised, TaskSupervisor
from legend.settings import RedisSettings


class RedisBackplane(PriceLogReads):
    """The Backplane port on Redis: sequence and history in keys, fan-out through pub/sub."""

    def __init__(
        self,
        settings: RedisSettings,
        *,
        instance_id: str,
        topics: Iterable[str] = (),
        log_size: int = 100_000,
        once_ttl: float = 600.0,
        supervisor: TaskSupervisor | None = None,
        bus: MessageBus | None = None,
    ) -> None:
        """``bus`` hears each change of ``health()["ok"]`` (``BackplaneHealthChanged``)."""
        self.settings = settings
        self.supervisor = supervisor or TaskSupervisor()  # its loops and the membership's
        self.instance_id = instance_id
        self.connection = RedisConnection(settings, instance_id, bus)
        keys = Keys(settings.key_prefix, settings.channel_prefix, instance_id)
        self.membership = RedisClusterMembership(self.connection, keys, self.supervisor)
        self.price_log = RedisPriceLog(self.connection, keys, log_size)
        self.name = self.price_log.name
        self.durable = True
        self.admission = RedisConnectionRegistry(self.connection, keys)
        self.external = ExternalMessages()
        self.listener = Listener(self.connection, keys, topics, self.external.hear, self.external.invalid)
        self.sequencer = Sequencer(self.connection, keys, self.listener, log_size=log_size, once_ttl=once_ttl)
        self._tasks: list[Supervised] = []

    # ───────────────────────── lifecycle ─────────────────────────

    async def start(self, deliver: Deliver) -> None:
        """Connect and subscribe; waits a bounded time for the first subscription, never fails on it."""
        if self._tasks:
            return
        self.listener.deliver = deliver
        self.connection.open()
        start = self.supervisor.start
        self._tasks = [
            start("redis listener", self.listener.run),
            start("redis resequencer", lambda: self.external.resequence(self.sequencer)),
            start("redis connections", self.admission.keep_alive),
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.connection.deadline):
                await self.listener.first_try.wait()

    async def stop(self) -> None:
        """Stop listening, leave the cluster (``membership``), close; bounded when Redis is down."""
        if self.connection.closing or not self._tasks:
            return
        await self.membership.leave()  # before the connection it runs on closes
        self.connection.closing = True
        await self.supervisor.stop_tasks(self._tasks, timeout=1.0)
        await self.listener.close()
        await self.connection.close()
        self.listener.connected = False
        self.listener.deliver = None

    # ───────────────────────── the port ─────────────────────────

    async def publish(self, message: Outgoing) -> Envelope:
        """Sequence, store, log (prices) and PUBLISH in one script; raises BackplaneUnavailable within
        the timeouts, AlreadyPublished when ``once`` was published within ``once_ttl``."""
        [published] = await self.publish_many([message])
        if published is None:
            raise AlreadyPublished(message.once or message.stream)
        return published

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[Envelope | None]:
        return await self.sequencer.publish_many(messages)

    async def replay(self, stream: str, since: int | None) -> Replay:
        return await self.sequencer.replay(stream, since)

    async def admit(
        self, connection_id: str, user_id: str, address: str, max_per_user: int, max_per_address: int
    ) -> Literal["user", "address"] | None:
        return await self.admission.admit(connection_id, user_id, address, max_per_user, max_per_address)

    async def release(self, connection_id: str, user_id: str, address: str) -> None:
        await self.admission.release(connection_id, user_id, address)

    async def expect_reconnects(self, addresses: Mapping[str, int], ttl: float) -> None:
        await self.admission.expect_reconnects(addresses, ttl)

    async def take_reconnect(self, address: str) -> bool:
        return await self.admission.take_reconnect(address)

    async def add_topics(self, topics: Iterable[str]) -> None:
        """Listen on more topics (plugin channels) before anything is published on them."""
        for topic in topics:
            await self.listener.watch(self.listener.keys.topic(topic))

    def health(self) -> dict[str, object]:
        """For /ready and stats: ok while subscribed and the last command worked."""
        connection, listener, sequencer = self.connection, self.listener, self.sequencer
        external = self.external
        link = connection.health()
        return {
            "ok": connection.ok,
            "backend": "redis",
            "url": link.pop("url"),
            "instance_id": self.instance_id,
            "connected": listener.connected,
            "last_error": link.pop("last_error"),
            "reconnects": listener.reconnects,
            "publish_failures": sequencer.publish_failures,
            "delivered": listener.delivered,
            "delivery_errors": listener.delivery_errors,
            "gap_filled": listener.gap_filled,
            "history_gaps": listener.gaps,
            "archive_filled": listener.archive_filled,
            "archive_incomplete": listener.archive_incomplete,
            "journal_incomplete": listener.journal.incomplete,
            "unreplicated": sequencer.unreplicated,
            "fenced": sequencer.fenced,
            "duplicates_skipped": listener.duplicates_skipped,
            "external_resequenced": external.resequenced,
            "external_duplicates": external.duplicates,
            "external_invalid": external.invalid_count,
            "external_failed": external.failed,
            "topics": sorted(listener.subscribed),
            "leases": sorted(self.membership.leases),
            "streams": len(listener.last_seq),
            **link,  # with Sentinel: the sentinels, the service name, the primary
        }
