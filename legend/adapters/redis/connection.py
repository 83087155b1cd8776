"""One instance's connections to Redis (on a URL or through Sentinel) and the health of that link.

Every command of the package goes through ``RedisConnection.call``: bounded by the configured timeouts,
any failure becomes ``BackplaneUnavailable``, and the link's health (``ok``: subscribed and caught up,
and the last command worked) is announced on the bus once per change (``BackplaneHealthChanged``).

With ``sentinels`` set, every connection asks Redis Sentinel for the current primary, so after a failover
the next connection (the command pool's retry, the listener's reconnect) follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from legend.domain.events import BackplaneHealthChanged
from legend.ports.backplane import BackplaneUnavailable
from legend.runtime.logcontext import HOSTILE
from legend.runtime.message_bus import MessageBus
from legend.runtime.supervisor import describe
from legend.settings import RedisSettings, sentinel_address

log = logging.getLogger("legend.redis")

T = TypeVar("T")


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (connections to the current primary) that waits for a free connection like
    ``BlockingConnectionPool`` instead of failing when all are in use."""


class RedisConnection:
    """The command pool and the subscriber's client of one instance, opened by ``open`` and closed by
    ``close``; what ``health()["ok"]`` of the backplane says."""

    def __init__(self, settings: RedisSettings, instance_id: str, bus: MessageBus | None = None) -> None:
        if not settings.enabled:
            raise ValueError("RedisBackplane needs settings.url or settings.sentinels")
        self.settings = settings
        self.url: str = settings.url or ""
        self.instance_id = instance_id
        self.deadline = settings.connect_timeout + settings.socket_timeout
        self.commands: Redis | None = None
        self.subscriber: Redis | None = None
        self.sentinel: Sentinel | None = None
        self.closing = False
        self.command_ok = True  # the last command worked
        self.live = False  # subscribed, and caught up with what was published while it was not
        # Since the last failed command, the subscription answered a PING (or was made again): a command
        # that works again is not enough to say ``ok``, the line clients hear from must work too.
        self.proven = True
        self._ok_since = 0.0  # when ``ok`` was last announced true (``time.monotonic()``)
        self.last_error: str | None = None
        self.wake = asyncio.Event()  # a command worked: a listener waiting to reconnect need not wait
        # Told of every change of ``ok`` (bootstrap: clients get ``service_status``).
        self.bus = bus if bus is not None else MessageBus()
        self._reported_ok: bool | None = None

    @property
    def ok(self) -> bool:
        return self.live and self.command_ok and self.proven

    def heard(self) -> None:
        """The subscription answered (a pong, or it was made again): it proves the line works."""
        if not self.proven:
            self.proven = True
            self.note_health()

    def open(self) -> None:
        """Make the command client (a pool) and the subscriber's client, on the URL or through Sentinel.

        One immediate retry on a connection error: a pooled connection that Redis closed (a restart, a
        failover) is replaced once, asking Sentinel for the primary again; never on a timeout, where the
        script may have run. A burst of publishes waits for a free connection (within the deadline)
        instead of failing on a full pool. The subscriber never retries by itself: the listener owns
        reconnection and resubscription.
        """
        settings = self.settings
        common: dict[str, Any] = {
            "socket_timeout": settings.socket_timeout,
            "socket_connect_timeout": settings.connect_timeout,
            "socket_keepalive": True,
            "client_name": f"legend-{self.instance_id}",
        }
        pooled: dict[str, Any] = {
            "max_connections": settings.max_connections,
            "timeout": self.deadline,
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        }
        no_retry = Retry(NoBackoff(), 0, supported_errors=())
        if not settings.sentinels:
            pool = BlockingConnectionPool.from_url(self.url, **pooled, **common)
            self.commands = Redis.from_pool(pool)
            self.subscriber = Redis.from_url(self.url, retry=no_retry, **common)
            return
        target: dict[str, Any] = {}
        if self.url:  # credentials, database and TLS of the data nodes; the host is Sentinel's to say
            target = {k: v for k, v in parse_url(self.url).items() if k in ("username", "password", "db")}
            if self.url.startswith("rediss://"):
                target["ssl"] = True
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": settings.socket_timeout,
            "socket_connect_timeout": settings.connect_timeout,
            "username": settings.sentinel_username,
            "password": settings.sentinel_password,
        }
        sentinel = self.sentinel = Sentinel(
            [sentinel_address(address) for address in settings.sentinels],
            sentinel_kwargs=sentinel_kwargs,
            **common,
            **target,
        )
        name = settings.service_name or ""
        self.commands = sentinel.master_for(name, connection_pool_class=_BlockingSentinelPool, **pooled)
        self.subscriber = sentinel.master_for(name, retry=no_retry)

    async def close(self) -> None:
        """Close every client (and the sentinels'); bounded when Redis is down."""
        closers = [client.aclose() for client in (self.subscriber, self.commands) if client]
        if self.sentinel is not None:  # its own connections to the sentinels
            closers += [client.aclose() for client in self.sentinel.sentinels]
        for closing in closers:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await closing
        self.live = False

    async def call(self, what: str, op: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run one Redis operation within the deadline; any failure becomes BackplaneUnavailable."""
        redis = self.commands
        if redis is None or self.closing:
            raise BackplaneUnavailable("redis backplane is not running")
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.deadline):
                result = await op(redis, *args)
        except (RedisError, OSError, TimeoutError) as exc:
            self.last_error = f"{what}: {describe(exc)}"
            # A command sent before the link was last found ok, failing late (it timed out over the
            # outage), is old news: it does not make the health flap back to degraded.
            if started >= self._ok_since or self._reported_ok is not True:
                self.command_ok = self.proven = False
                self.note_health()
            if isinstance(exc, TimeoutError | RedisTimeoutError):
                # The command may have reached Redis and run after all: say so rather than "nothing happened".
                raise BackplaneUnavailable(
                    f"redis {what} timed out; it may still have been applied"
                ) from None
            raise BackplaneUnavailable(f"redis {what} failed: {describe(exc)}") from None
        self.command_ok = True
        if not self.live:
            self.wake.set()  # Redis answers again: the listener need not sit out its backoff
        elif self._reported_ok is False:
            self.note_health()
        return result

    def note_health(self) -> None:
        """Announce ``BackplaneHealthChanged`` when ``ok`` changed (a handler that raises is logged)."""
        ok = self.ok
        if ok is self._reported_ok or self.closing:
            return
        self._reported_ok = ok
        if ok:
            self._ok_since = time.monotonic()
        self.bus.publish(BackplaneHealthChanged(ok))

    def health(self) -> dict[str, object]:
        """The link's part of the backplane's health: the URL (without its password), the last error,
        and with Sentinel the sentinels and the primary in use."""
        shown: dict[str, object] = {"url": redact(self.url), "last_error": self.last_error}
        if self.settings.sentinels:
            pool = self.commands.connection_pool if self.commands is not None else None
            primary = getattr(pool, "master_address", None)
            shown |= {
                "sentinels": list(self.settings.sentinels),
                "service_name": self.settings.service_name,
                "primary": f"{primary[0]}:{primary[1]}" if primary else None,
            }
        return shown


def redact(url: str) -> str:
    """The URL without its password, for health reports and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def warn(message: str, *args: object) -> None:
    """A warning another program's messages can trigger at will: rate-limited by the log setup."""
    log.warning(message, *args, extra=HOSTILE)


def text(value: object) -> str:
    """A reply of Redis as text."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
