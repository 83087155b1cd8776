"""The Redis backplane: many instances behave as one server.

Every publish is one Lua script on the Redis server: it bumps the stream's sequence number, appends the
final wire text to the stream's history and PUBLISHes it on the topic, atomically, so the order of
sequence numbers is the order of delivery and any instance can replay any stream for any client.

Each instance keeps one pub/sub connection subscribed to every topic and hands each message, decoded once,
to the streaming service. Messages that another program publishes in the seed's format (no ``channel``,
no ``seq``) are sequenced by exactly one instance (a SET NX guard on the payload's hash) and come back
through the same topic like any other message.

Losing Redis degrades, never crashes: publishing raises ``BackplaneUnavailable`` within the configured
timeouts, the listener reconnects with capped exponential backoff (cut short as soon as a command works
again), resubscribes, and then replays from the stored history whatever was published while it was away:
the publish script also appends (stream, seq) to a journal, and the listener keeps a checkpoint in it
that every message up to it is known to have reached this instance.

Redis Cluster is not supported (``docs/scaling.md`` says why): use one primary, with a replica for
failover. With ``sentinels`` set, every connection asks Redis Sentinel for the current primary, so after
a failover the next connection (the command pool's retry, the listener's reconnect) follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from legend.domain.envelope import Envelope, conflation_key, seal
from legend.domain.external import SEED_TOPICS, external_message
from legend.domain.logcontext import HOSTILE
from legend.ports.backplane import (
    AlreadyPublished,
    BackplaneUnavailable,
    Deliver,
    HealthListener,
    Outgoing,
    Replay,
)
from legend.ports.price_log import LogEntry, LogRead
from legend.settings import RedisSettings, sentinel_address

log = logging.getLogger("legend.redis")

# Streams whose last sequence number is remembered for gap filling after a reconnect; the least
# recently delivered are forgotten first, so subscriptions to junk symbols cannot grow memory forever.
MAX_TRACKED_STREAMS = 20_000

T = TypeVar("T")

PRICE_TYPE = "price_update"  # what enters the price log
DEFAULT_HISTORY = 100  # the seed's "last 100 messages", for streams first created by an external message
POLL_SECONDS = 0.25  # the listener wakes this often when idle (new topics, liveness pings)
FILL_CHUNK = 500  # streams per round trip when replaying what a reconnect missed
INBOX_SIZE = 10_000  # external messages waiting to be sequenced, at most
JOURNAL_CHUNK = 5_000  # journal entries per round trip when finding what a reconnect missed
PING_TOKEN = "legend-checkpoint"  # a pub/sub PING's message: the pong carries the journal position


# KEYS: seq, history, topic registry, dedupe key, price log, journal.
# ARGV: topic, body, history size, seq floor, stream ttl ms, announce, control channel, dedupe ttl ms,
#       keep a longer history (external messages never shrink one), stream, into the price log, its size,
#       journal size.
# The floor keeps seq monotonic when Redis lost its data: the caller passes the last seq it delivered.
# The dedupe key makes a message publish once: an external message heard by every instance, or an alert
# trigger retried after a crash. A price enters the price log (a Redis stream) in the same step. Every
# message enters the journal (stream, seq): what a listener that was away replays from history.
PUBLISH_LUA = """
if tonumber(ARGV[8]) > 0 and not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[8]) then
  return 0
end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[4])
if seq < floor then seq = floor end
seq = seq + 1
redis.call('SET', KEYS[1], seq)
local body = ARGV[2]
local text = string.sub(body, 1, -2) .. ',"seq":' .. string.format('%d', seq) .. '}'
local size = tonumber(ARGV[3])
if size > 0 then
  if ARGV[9] == '1' then
    local length = redis.call('LLEN', KEYS[2])
    if length > size then size = length end
  end
  redis.call('RPUSH', KEYS[2], text)
  redis.call('LTRIM', KEYS[2], -size, -1)
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if ARGV[6] == '1' and redis.call('SADD', KEYS[3], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[7], ARGV[1] .. '\\n' .. ARGV[10])
end
if ARGV[11] == '1' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[12], '*', 'k', 'price', 'd', text)
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[13], '*', 's', ARGV[10], 'q', seq)
redis.call('PUBLISH', ARGV[1], text)
return seq
"""

# KEYS: instance registry (zset of id -> expiry ms), this instance's interest set, its figures hash.
# ARGV: instance id, ttl ms, number of figure fields n, n field/value pairs, then the tickers.
HEARTBEAT_LUA = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('ZADD', KEYS[1], ms + ttl, ARGV[1])
local n = tonumber(ARGV[3])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[3], 'seen', now[1])
for i = 1, n do redis.call('HSET', KEYS[3], ARGV[2 + 2 * i], ARGV[3 + 2 * i]) end
redis.call('PEXPIRE', KEYS[3], ttl)
local first = 4 + 2 * n
for i = first, #ARGV, 1000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV >= first then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
"""

# KEYS: instance registry. ARGV: key prefix of the per-instance keys, "interest" or "figures".
MEMBERS_LUA = """
local now = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now[1] * 1000 + math.floor(now[2] / 1000))
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
if ARGV[2] == 'interest' then
  local keys = {}
  for i, id in ipairs(ids) do keys[#keys + 1] = ARGV[1] .. 'interest:' .. id end
  if #keys == 0 then return out end
  return redis.call('SUNION', unpack(keys))
end
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'figures:' .. id)
end
return out
"""

# KEYS: the user's and the address's connection sets (zsets of connection id -> expiry ms).
# ARGV: connection id, ttl ms, max per user, max per address (0: none). 0 admitted, 1 user full, 2 address full.
ADMIT_LUA = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ms)
local user_max, address_max = tonumber(ARGV[3]), tonumber(ARGV[4])
if user_max > 0 and redis.call('ZCARD', KEYS[1]) >= user_max then return 1 end
if address_max > 0 and redis.call('ZCARD', KEYS[2]) >= address_max then return 2 end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], ms + ttl, ARGV[1])
redis.call('ZADD', KEYS[2], ms + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 0
"""

# KEYS: pairs of connection sets, one pair per connection. ARGV: ttl ms, then the connection ids.
# Keeps this instance's connections registered: those of an instance that died expire after ttl.
REFRESH_LUA = """
local now = redis.call('TIME')
local until_ms = now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  for j = 0, 1 do
    local key = KEYS[2 * (i - 2) + 1 + j]
    redis.call('ZADD', key, 'XX', until_ms, ARGV[i])
    redis.call('PEXPIRE', key, tonumber(ARGV[1]))
  end
end
return 1
"""

# KEYS: lease. ARGV: holder, ttl ms. Take it when free, renew it when ours.
LEASE_LUA = """
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: leases to give up, then the registry, interest and figures of this instance. ARGV: holder.
LEAVE_LUA = """
local n = #KEYS
for i = 1, n - 3 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
redis.call('ZREM', KEYS[n - 2], ARGV[1])
redis.call('DEL', KEYS[n - 1], KEYS[n])
return 1
"""


class _Wire(msgspec.Struct):
    """The few fields of a pub/sub message the backplane needs; the rest is never decoded."""

    type: str | None = None
    channel: str | None = None
    seq: int | None = None
    ticker: object = None  # with ``symbol``: the conflation key
    symbol: object = None


_wire = msgspec.json.Decoder(_Wire)


class _Stale(Exception):
    """The pub/sub connection stopped answering."""


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


def envelope_of(stream: str, text: bytes) -> Envelope | None:
    """The envelope of one stored wire text, or None if it is not one."""
    try:
        wire = _wire.decode(text)
        if wire.seq is None:
            return None
        key = conflation_key(wire.ticker, wire.symbol)
        return Envelope(stream, wire.seq, wire.type or "", text.decode(), key, time.monotonic())
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None


def after(envelopes: list[Envelope], last_seq: int, since: int | None) -> Replay:
    """What a history holds after ``since``: the same rules as the in-memory ``StreamLog.after``."""
    if since is None:
        return Replay(envelopes, last_seq, True)
    if since > last_seq:  # the stream restarted below the client's position: give what there is
        return Replay(envelopes, last_seq, False)
    kept = [env for env in envelopes if env.seq > since]
    oldest = kept[0].seq if kept else last_seq + 1
    return Replay(kept, last_seq, oldest <= since + 1)


class RedisBackplane:
    """The Backplane port on Redis: sequence and history in keys, fan-out through pub/sub."""

    def __init__(
        self,
        settings: RedisSettings,
        *,
        instance_id: str,
        topics: Iterable[str] = (),
        figures: Callable[[], Mapping[str, int]] | None = None,
        log_size: int = 100_000,
        once_ttl: float = 600.0,
    ) -> None:
        if not settings.enabled:
            raise ValueError("RedisBackplane needs settings.url or settings.sentinels")
        self.settings = settings
        self.url: str = settings.url or ""
        self.instance_id = instance_id
        # Per-instance figures (connections, subscriptions…) published with every heartbeat for cluster().
        self.figures = figures
        prefix = settings.key_prefix
        self.name = f"{prefix}price-log"  # the price log: a Redis stream of every price published
        self.durable = True
        self.log_size = log_size  # entries kept (approximately: MAXLEN ~)
        self.once_ttl = once_ttl  # how long a publish with ``once`` is remembered
        self._log_continues: str | None = None  # the last position a read returned
        self._prefix = prefix
        self._topic_prefix = settings.channel_prefix
        self._registry_key = f"{prefix}instances"
        self._interest_key = f"{prefix}interest:{instance_id}"
        self._figures_key = f"{prefix}figures:{instance_id}"
        self._topics_key = f"{prefix}topics"  # every topic any instance published on
        self._journal_key = f"{prefix}journal"  # (stream, seq) of every publish, for recovery
        self._epoch_key = f"{prefix}epoch"  # a random token: changes only when Redis lost its data
        self._control = f"{prefix}topics"  # the pub/sub channel announcing a new topic
        self._control_bytes = self._control.encode()
        self._deadline = settings.connect_timeout + settings.socket_timeout
        self._topics: set[str] = {self._topic(t) for t in SEED_TOPICS} | {self._topic(t) for t in topics}
        self._topics_dirty = False
        self._subscribed: set[str] = set()
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._announced: set[str] = set()
        self._history_size: dict[str, int] = {}  # per topic, learned from publishes
        self._last_seq: dict[str, int] = {}  # per stream, the last delivered seq (bounded, LRU)
        self._watermarks: dict[str, int] = {}  # per stream, replayed up to here after a reconnect
        self._watermarks_until = 0.0
        self._new_streams: list[str] = []  # first streams of topics other instances just announced
        # The journal position (and its entries-added count) up to which every message is known to have
        # reached this instance; None before the first subscription.
        self._checkpoint: str | None = None
        self._journal_added = 0
        self._epoch: str | None = None
        self._heard_since_ping = False
        self._wake = asyncio.Event()  # a command worked while the listener waits to reconnect
        self._interest: list[str] = []
        self._leases: dict[str, int] = {}  # held lease -> its ttl in ms, renewed in the background
        self._deliver: Deliver | None = None
        self._redis: Redis | None = None
        self._sub: Redis | None = None
        self._sentinel: Sentinel | None = None
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(INBOX_SIZE)
        self._first_try = asyncio.Event()  # the listener's first attempt ended, either way
        self._stopping = False
        self._connected = False  # subscribed to every topic
        self._live = False  # subscribed and caught up with what was published while it was not
        self._command_ok = True
        self._reported_ok: bool | None = None
        # Called with health()["ok"] on every change (bootstrap: clients get ``service_status``).
        self.on_health: HealthListener | None = None
        self._ever_connected = False
        self._backoff = settings.reconnect_min_delay
        self._publish_script = _Script(PUBLISH_LUA)
        self._heartbeat_script = _Script(HEARTBEAT_LUA)
        self._members_script = _Script(MEMBERS_LUA)
        self._lease_script = _Script(LEASE_LUA)
        self._leave_script = _Script(LEAVE_LUA)
        self._admit_script = _Script(ADMIT_LUA)
        self._refresh_script = _Script(REFRESH_LUA)
        self._admitted: dict[str, tuple[str, str]] = {}  # connection id -> its two set keys
        self.last_error: str | None = None
        self.reconnects = 0
        self.publish_failures = 0
        self.delivered = 0
        self.delivery_errors = 0
        self.duplicates_skipped = 0
        self.gap_filled = 0
        self.journal_incomplete = 0
        self.unreplicated = 0  # publishes that fewer than wait_replicas replicas confirmed in time
        self.external_resequenced = 0
        self.external_duplicates = 0
        self.external_invalid = 0
        self.external_failed = 0

    # ───────────────────────── lifecycle ─────────────────────────

    async def start(self, deliver: Deliver) -> None:
        """Connect and subscribe; waits a bounded time for the first subscription, never fails on it."""
        if self._tasks:
            return
        self._deliver = deliver
        self._redis, self._sub = self._clients()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name=f"redis listener {self.instance_id}"),
            loop.create_task(self._keep_alive(), name=f"redis heartbeat {self.instance_id}"),
            loop.create_task(self._renew_leases(), name=f"redis leases {self.instance_id}"),
            loop.create_task(self._resequence(), name=f"redis resequencer {self.instance_id}"),
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._deadline):
                await self._first_try.wait()

    def _clients(self) -> tuple[Redis, Redis]:
        """The command client (a pool) and the subscriber's client, on the URL or through Sentinel.

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
            "timeout": self._deadline,
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        }
        no_retry = Retry(NoBackoff(), 0, supported_errors=())
        if not settings.sentinels:
            pool = BlockingConnectionPool.from_url(self.url, **pooled, **common)
            return Redis.from_pool(pool), Redis.from_url(self.url, retry=no_retry, **common)
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
        sentinel = self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
            [sentinel_address(address) for address in settings.sentinels],
            sentinel_kwargs=sentinel_kwargs,
            **common,
            **target,
        )
        name = settings.service_name or ""
        commands = sentinel.master_for(name, connection_pool_class=_BlockingSentinelPool, **pooled)
        return commands, sentinel.master_for(name, retry=no_retry)

    async def stop(self) -> None:
        """Stop listening, hand back leases and leave the instance registry; bounded when Redis is down."""
        if self._stopping or not self._tasks:
            return
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=1.0)
        redis = self._redis
        if redis is not None:
            keys = [self._lease_key(name) for name in sorted(self._leases)]
            keys += [self._registry_key, self._interest_key, self._figures_key]
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(min(1.0, self._deadline)):
                    await self._leave_script(redis, keys, [self.instance_id])
        self._leases.clear()
        closers = [self._close_pubsub(), *(c.aclose() for c in (self._sub, self._redis) if c)]
        if self._sentinel is not None:  # its own connections to the sentinels
            closers += [client.aclose() for client in self._sentinel.sentinels]
        for closing in closers:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await closing
        self._connected = self._live = False
        self._deliver = None

    # ───────────────────────── the port ─────────────────────────

    async def publish(
        self,
        stream: str,
        topic: str,
        kind: str,
        body: bytes,
        history_size: int,
        key: str = "",
        once: str | None = None,
    ) -> Envelope:
        """Sequence, store, log (prices) and PUBLISH in one script; raises BackplaneUnavailable within
        the timeouts, AlreadyPublished when ``once`` was published within ``once_ttl``."""
        [published] = await self.publish_many([Outgoing(stream, topic, kind, body, history_size, key, once)])
        if published is None:
            raise AlreadyPublished(once or stream)
        return published

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[Envelope | None]:
        """One publish script per message, all in one pipeline (one round trip, run in order)."""
        calls = []
        for m in messages:
            channel = self._topic(m.topic)
            if channel not in self._subscribed:
                await self._watch(channel)
            self._history_size[channel] = m.history_size
            calls.append(self._publish_call(m, channel))

        wanted = self.settings.wait_replicas
        wait = (wanted, max(1, int(self.settings.wait_timeout * 1000))) if wanted else None

        async def run(redis: Redis) -> tuple[list[Any], int | None]:
            return await self._publish_script.pipelined(
                redis, [(keys, args) for keys, args, _ in calls], wait
            )

        try:
            seqs, replicas = await self._call("publish", run)
        except BackplaneUnavailable:
            self.publish_failures += 1
            raise
        if replicas is not None and replicas < wanted:
            self.unreplicated += len(messages)
            self._warn(
                "publish of %d message(s) reached %d of %d replicas in time", len(messages), replicas, wanted
            )
        published: list[Envelope | None] = []
        for m, (_, _, announce), seq in zip(messages, calls, seqs, strict=True):
            if announce:
                self._announced.add(self._topic(m.topic))
            published.append(seal(m.stream, int(seq), m.kind, m.body, m.key) if int(seq) else None)
        return published

    def _publish_call(self, m: Outgoing, channel: str) -> tuple[list[str], list[str | bytes | int], bool]:
        """The keys and arguments of the publish script for one message, and whether it announces."""
        stream, body, history_size, once = m.stream, m.body, m.history_size, m.once
        announce = channel not in self._announced
        seq_key, history_key = self._stream_keys(stream)
        args: list[str | bytes | int] = [
            channel,
            body,
            history_size,
            self._last_seq.get(stream, 0),
            int(self.settings.stream_ttl * 1000),
            1 if announce else 0,
            self._control,
            0 if once is None else max(1, int(self.once_ttl * 1000)),
            0,
            stream,
            1 if m.kind == PRICE_TYPE else 0,
            self.log_size,
            self.settings.journal_size,
        ]
        guard = seq_key if once is None else f"{self._prefix}once:{once}"
        return [seq_key, history_key, self._topics_key, guard, self.name, self._journal_key], args, announce

    async def replay(self, stream: str, since: int | None) -> Replay:
        """The stream's stored history after ``since``, read with its seq in one transaction."""
        seq_key, history_key = self._stream_keys(stream)

        async def read(redis: Redis) -> list[Any]:
            pipe = redis.pipeline(transaction=True)
            pipe.lrange(history_key, 0, -1)
            pipe.get(seq_key)
            result: list[Any] = await pipe.execute()
            return result

        texts, last = await self._call("replay", read)
        envelopes = [env for env in (envelope_of(stream, text) for text in texts) if env is not None]
        return after(envelopes, int(last or 0), since)

    async def set_interest(self, tickers: Iterable[str]) -> None:
        """Store this instance's tickers now; the heartbeat keeps them alive until ``interest_ttl``."""
        self._interest = sorted(set(tickers))
        await self._call("set_interest", self._heartbeat)

    async def interest(self) -> set[str]:
        """The union of the tickers of every live instance."""
        found = await self._call(
            "interest", self._members_script, [self._registry_key], [self._prefix, "interest"]
        )
        return {_text(item) for item in found}

    async def hold_lease(self, name: str, ttl: float) -> bool:
        """Take the lease when free or renew it when ours (one script).

        The ttl is capped at ``lease_ttl`` and a held lease is renewed in the background while this
        process lives, so a dead holder's lease lapses within ``lease_ttl`` whatever the caller's cadence.
        """
        ms = max(1, int(min(ttl, self.settings.lease_ttl) * 1000))
        held = bool(
            await self._call("lease", self._lease_script, [self._lease_key(name)], [self.instance_id, ms])
        )
        if held:
            self._leases[name] = ms
        else:
            self._leases.pop(name, None)
        return held

    def health(self) -> dict[str, object]:
        """For /ready and stats: ok while subscribed and the last command worked."""
        return {
            "ok": self._live and self._command_ok,
            "backend": "redis",
            "url": redact(self.url),
            "instance_id": self.instance_id,
            "connected": self._connected,
            "last_error": self.last_error,
            "reconnects": self.reconnects,
            "publish_failures": self.publish_failures,
            "delivered": self.delivered,
            "delivery_errors": self.delivery_errors,
            "gap_filled": self.gap_filled,
            "journal_incomplete": self.journal_incomplete,
            "unreplicated": self.unreplicated,
            "duplicates_skipped": self.duplicates_skipped,
            "external_resequenced": self.external_resequenced,
            "external_duplicates": self.external_duplicates,
            "external_invalid": self.external_invalid,
            "external_failed": self.external_failed,
            "topics": sorted(self._subscribed),
            "leases": sorted(self._leases),
            "streams": len(self._last_seq),
            **self._sentinel_health(),
        }

    def _sentinel_health(self) -> dict[str, object]:
        if not self.settings.sentinels:
            return {}
        pool = self._redis.connection_pool if self._redis is not None else None
        primary = getattr(pool, "master_address", None)
        return {
            "sentinels": list(self.settings.sentinels),
            "service_name": self.settings.service_name,
            "primary": f"{primary[0]}:{primary[1]}" if primary else None,
        }

    # ───────────────────────── connections per user and address ─────────────────────────

    async def admit(
        self, connection_id: str, user_id: str, address: str, max_per_user: int, max_per_address: int
    ) -> Literal["user", "address"] | None:
        """Register the connection in the cluster-wide sets of its user and its address (one script)."""
        keys = self._connection_keys(user_id, address)
        ttl = int(self.settings.interest_ttl * 1000)
        verdict = int(
            await self._call(
                "admit", self._admit_script, list(keys), [connection_id, ttl, max_per_user, max_per_address]
            )
        )
        if verdict == 1:
            return "user"
        if verdict == 2:
            return "address"
        self._admitted[connection_id] = keys
        return None

    async def release(self, connection_id: str, user_id: str, address: str) -> None:
        keys = self._admitted.pop(connection_id, None) or self._connection_keys(user_id, address)

        async def remove(redis: Redis) -> None:
            pipe = redis.pipeline(transaction=False)
            for key in keys:
                pipe.zrem(key, connection_id)
            await pipe.execute()

        await self._call("release", remove)

    def _connection_keys(self, user_id: str, address: str) -> tuple[str, str]:
        return f"{self._prefix}conn:user:{user_id}", f"{self._prefix}conn:address:{address}"

    async def _refresh_connections(self, redis: Redis) -> None:
        """Extend this instance's connection registrations (with every heartbeat), 500 at a time."""
        ttl = int(self.settings.interest_ttl * 1000)
        items = list(self._admitted.items())
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            keys = [key for _, pair in chunk for key in pair]
            await self._refresh_script(redis, keys, [ttl, *(connection for connection, _ in chunk)])

    # ───────────────────────── the price log ─────────────────────────

    async def read(self, after: str | None, count: int, wait: float) -> LogRead:
        """XREAD from the price log, blocking up to ``wait``; checks for a trimmed gap when starting
        from a position it did not just return, or when behind (a full batch)."""
        start = after or "0-0"
        block = max(1, int(min(wait, self.settings.socket_timeout / 2) * 1000)) if wait > 0 else None

        async def xread(redis: Redis) -> Any:
            return await redis.xread({self.name: start}, count=count, block=block)

        found = await self._call("price log read", xread)
        entries = [
            LogEntry(_text(entry_id), _entry_time(entry_id), _text(fields[b"k"]), _text(fields[b"d"]))  # type: ignore[arg-type]
            for _, items in found or ()
            for entry_id, fields in items
        ]
        missed = False
        if entries and start != "0-0" and (start != self._log_continues or len(entries) == count):
            info = await self._call("price log info", lambda redis: redis.xinfo_stream(self.name))
            deleted = _text(info.get("max-deleted-entry-id", "0-0"))
            missed = _entry_order(deleted) > _entry_order(start)
        if entries:
            self._log_continues = entries[-1].id
        return LogRead(entries, missed)

    async def end(self) -> str:
        newest = await self._call("price log end", lambda redis: redis.xrevrange(self.name, count=1))
        return _text(newest[0][0]) if newest else "0-0"

    async def note_rule_change(self, rule_id: int) -> None:
        await self._call(
            "rule change",
            lambda redis: redis.xadd(
                self.name, {"k": "rule", "d": str(rule_id)}, maxlen=self.log_size, approximate=True
            ),
        )

    # ───────────────────────── beyond the port ─────────────────────────

    async def cluster(self) -> dict[str, object]:
        """Live instances and the sum of their reported figures (each at most a heartbeat old)."""
        found = await self._call(
            "cluster", self._members_script, [self._registry_key], [self._prefix, "figures"]
        )
        members: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}
        for i in range(0, len(found) - 1, 2):
            flat = [_text(x) for x in found[i + 1]]
            figures = {
                k: int(v) for k, v in zip(flat[::2], flat[1::2], strict=True) if v.lstrip("-").isdigit()
            }
            figures.pop("seen", None)
            members[_text(found[i])] = figures
            for key, value in figures.items():
                totals[key] = totals.get(key, 0) + value
        return {"instances": len(members), "members": members, **totals}

    async def add_topics(self, topics: Iterable[str]) -> None:
        """Listen on more topics (plugin channels) before anything is published on them."""
        for topic in topics:
            await self._watch(self._topic(topic))

    # ───────────────────────── internals ─────────────────────────

    def _topic(self, topic: str) -> str:
        return f"{self._topic_prefix}{topic}"

    def _stream_keys(self, stream: str) -> tuple[str, str]:
        # The hash tag keeps both keys of a stream in one slot, should the layout ever move to a cluster.
        return f"{self._prefix}{{{stream}}}:seq", f"{self._prefix}{{{stream}}}:history"

    def _lease_key(self, name: str) -> str:
        return f"{self._prefix}lease:{name}"

    async def _call(self, what: str, op: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run one Redis operation within the deadline; any failure becomes BackplaneUnavailable."""
        redis = self._redis
        if redis is None or self._stopping:
            raise BackplaneUnavailable("redis backplane is not running")
        try:
            async with asyncio.timeout(self._deadline):
                result = await op(redis, *args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._command_ok = False
            self.last_error = f"{what}: {_describe(exc)}"
            self._note_health()
            if isinstance(exc, TimeoutError | RedisTimeoutError):
                # The command may have reached Redis and run after all: say so rather than "nothing happened".
                raise BackplaneUnavailable(
                    f"redis {what} timed out; it may still have been applied"
                ) from None
            raise BackplaneUnavailable(f"redis {what} failed: {_describe(exc)}") from None
        self._command_ok = True
        if not self._live:
            self._wake.set()  # Redis answers again: the listener need not sit out its backoff
        elif self._reported_ok is False:
            self._note_health()
        return result

    def _note_health(self) -> None:
        """Tell ``on_health`` when ``health()["ok"]`` changed; a listener that raises is logged."""
        ok = self._live and self._command_ok
        if ok is self._reported_ok or self._stopping:
            return
        self._reported_ok = ok
        listener = self.on_health
        if listener is None:
            return
        try:
            listener(ok)
        except Exception:
            log.exception("health listener failed")

    async def _heartbeat(self, redis: Redis) -> None:
        figures: dict[str, int] = {}
        if self.figures is not None:
            try:
                figures = {str(k): int(v) for k, v in self.figures().items()}
            except Exception:  # a faulty figures callback must not stop the heartbeat
                log.exception("instance figures failed")
        args: list[str | int] = [self.instance_id, int(self.settings.interest_ttl * 1000), len(figures)]
        for key, value in figures.items():
            args += [key, value]
        args += self._interest
        await self._heartbeat_script(redis, [self._registry_key, self._interest_key, self._figures_key], args)
        if self._admitted:
            await self._refresh_connections(redis)

    async def _keep_alive(self) -> None:
        """Refresh this instance's registry entry, interest and figures well inside ``interest_ttl``."""
        while True:
            with contextlib.suppress(BackplaneUnavailable):
                await self._call("heartbeat", self._heartbeat)
            await asyncio.sleep(self.settings.interest_ttl / 3)

    async def _renew_leases(self) -> None:
        """Renew every held lease at a third of its ttl; forget one that another instance took meanwhile."""
        while True:
            await asyncio.sleep(min(self._leases.values(), default=self.settings.lease_ttl * 1000) / 3000)
            for name, ms in list(self._leases.items()):
                with contextlib.suppress(BackplaneUnavailable):
                    if not await self._call(
                        "lease", self._lease_script, [self._lease_key(name)], [self.instance_id, ms]
                    ):
                        self._leases.pop(name, None)
                        log.warning("lease %r was taken by another instance", name)

    async def _watch(self, topic: str) -> None:
        """Have the listener subscribe ``topic`` and wait (bounded) until Redis confirmed it."""
        self._topics.add(topic)
        if topic in self._subscribed:
            return
        self._topics_dirty = True
        if not self._connected:
            return  # the listener subscribes every known topic when it (re)connects
        waiter = self._confirmed.get(topic)
        if waiter is None:
            waiter = self._confirmed[topic] = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._deadline):
                await asyncio.shield(waiter)

    def _confirm(self, topic: str) -> None:
        self._subscribed.add(topic)
        waiter = self._confirmed.pop(topic, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ───────────────────────── the listener ─────────────────────────

    async def _listen(self) -> None:
        """Keep one subscription to every topic alive, reconnecting with capped exponential backoff."""
        settings = self.settings
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError, _Stale, BackplaneUnavailable) as exc:
                self.last_error = f"subscriber: {_describe(exc)}"
            except Exception as exc:  # a bug must not end delivery for good
                log.exception("redis listener failed")
                self.last_error = f"subscriber: {_describe(exc)}"
            self._first_try.set()
            if self._connected:
                log.warning("lost the Redis subscription (%s); reconnecting", self.last_error)
            self._connected = self._live = False
            self._note_health()
            self._subscribed.clear()
            await self._close_pubsub()
            delay = self._backoff * random.uniform(0.8, 1.2)
            self._backoff = min(self._backoff * 2, settings.reconnect_max_delay)
            # Publishes succeed as soon as Redis is back, and they go nowhere live until this listener
            # is subscribed again: a command that works cuts the backoff short (after the shortest delay,
            # so that a subscription that keeps failing is not retried in a tight loop).
            shortest = min(delay, settings.reconnect_min_delay)
            self._wake.clear()  # set by this session's own commands; from now on by others
            await asyncio.sleep(shortest)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay - shortest):
                    await self._wake.wait()

    async def _session(self) -> None:
        """One connection's life: subscribe, replay what was missed, then deliver until it fails."""
        assert self._sub is not None
        pubsub = self._pubsub = self._sub.pubsub()
        registry = await self._call("topics", lambda redis: redis.smembers(self._topics_key))
        self._topics.update(_text(topic) for topic in registry)
        if self._checkpoint is None:  # the first subscription replays what comes after this position
            self._epoch = await self._call("epoch", self._epoch_of)
            self._checkpoint, self._journal_added = await self._call("journal", self._journal_state)
        self._topics_dirty = False
        self._new_streams.clear()
        wanted = {*self._topics, self._control}
        buffered = await self._subscribe(pubsub, wanted)
        self._connected = True
        self._command_ok = True
        self._backoff = self.settings.reconnect_min_delay
        self._announced.clear()  # Redis may have lost the topic registry: announce again
        if self._ever_connected:
            self.reconnects += 1
            log.info("Redis subscription restored (%d topics)", len(wanted))
        self._ever_connected = True
        self._watermarks.clear()
        await self._recover()
        for message in buffered:
            self._on_message(message)
        self._live = True
        self._note_health()
        self._first_try.set()
        await self._pump(pubsub)

    async def _recover(self) -> None:
        """Replay from history everything published after the checkpoint (every topic is subscribed
        again, so whatever comes later arrives live): read the journal for the streams and first seqs
        published meanwhile, including streams this instance never delivered, then fill them.

        Streams this instance delivered before resume after its last delivered seq; a stream it never
        delivered resumes at the first seq published after the checkpoint. When the journal was trimmed
        past the checkpoint, the streams this instance knows are filled as well (best effort) and
        ``journal_incomplete`` counts it.
        """
        epoch = await self._call("epoch", self._epoch_of)
        end, added = await self._call("journal", self._journal_state)
        # Another epoch: Redis lost its data (a restart without persistence), so everything in the journal
        # came after the checkpoint. The same epoch on a new primary: the journal was replicated, and
        # entries it takes now get ids above the checkpoint (stream ids never go back; the new primary's
        # clock is at most the failover time behind the old one's).
        continuous = epoch == self._epoch
        expected = added - self._journal_added if continuous else added
        start = (self._checkpoint or "0-0") if continuous else "0-0"
        first: dict[str, int] = {}
        read = 0
        while True:
            entries = await self._call(
                "journal",
                lambda redis, low=start: redis.xrange(
                    self._journal_key, min="-" if low == "0-0" else f"({low}", count=JOURNAL_CHUNK
                ),
            )
            for entry_id, fields in entries:
                read += 1
                start = _text(entry_id)
                with contextlib.suppress(KeyError, ValueError):
                    first.setdefault(_text(fields[b"s"]), int(fields[b"q"]))
            if len(entries) < JOURNAL_CHUNK:
                break
        floors = {stream: self._last_seq.get(stream, seq - 1) for stream, seq in first.items()}
        if read < expected:
            self.journal_incomplete += 1
            log.warning(
                "the journal no longer reaches back to this instance's checkpoint (%d of %d entries"
                " left): replaying only the streams it knows; raise redis.journal_size",
                read,
                expected,
            )
            for stream, seq in self._last_seq.items():
                floors.setdefault(stream, seq)
        await self._fill(floors)
        self._checkpoint = start if read else end
        self._journal_added, self._epoch = added, epoch

    async def _epoch_of(self, redis: Redis) -> str:
        """The data set's epoch token, made now if Redis has none (it lost its data, or never had one)."""
        pipe = redis.pipeline(transaction=True)
        pipe.set(self._epoch_key, secrets.token_hex(8), nx=True)
        pipe.get(self._epoch_key)
        _, epoch = await pipe.execute()
        return _text(epoch)

    async def _journal_state(self, redis: Redis) -> tuple[str, int]:
        """The journal's newest position and how many entries it ever took (``0-0``, 0 when absent)."""
        try:
            info = await redis.xinfo_stream(self._journal_key)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return "0-0", 0
            raise
        return _text(info.get("last-generated-id", "0-0")), int(info.get("entries-added", 0))

    async def _subscribe(self, pubsub: PubSub, topics: set[str]) -> list[dict[str, Any]]:
        """Subscribe and wait until Redis confirmed every topic; returns the messages heard meanwhile."""
        buffered: list[dict[str, Any]] = []
        async with asyncio.timeout(self._deadline):
            await pubsub.subscribe(*topics)
            while not topics <= self._subscribed:
                message = await pubsub.get_message(timeout=self._deadline)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self._confirm(_text(message["channel"]))
                elif message["type"] == "message":
                    buffered.append(message)
        return buffered

    async def _pump(self, pubsub: PubSub) -> None:
        """Deliver until the connection fails; subscribe new topics; ping every ``health_check_interval``.

        Each ping carries the journal's newest position, read just before: Redis answers a connection
        in order, so when its pong arrives every message published up to that position has arrived
        before it, and the position becomes the checkpoint a reconnect replays from. A line that brings
        nothing at all, not even the pong, for ``health_check_interval + socket_timeout`` is dead.
        """
        settings = self.settings
        health_every = settings.health_check_interval
        last_heard = time.monotonic()
        next_ping = last_heard + health_every
        self._heard_since_ping = False
        while True:
            if self._topics_dirty:
                self._topics_dirty = False
                new = self._topics - self._subscribed
                if new:
                    # A topic another instance just announced: its first messages went out before we
                    # listened, so replay the announced streams from history once subscribed.
                    buffered = await self._subscribe(pubsub, new)
                    streams, self._new_streams = self._new_streams, []
                    await self._fill({stream: self._last_seq.get(stream, 0) for stream in streams})
                    for message in buffered:
                        self._on_message(message)
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            now = time.monotonic()
            if message is not None:
                last_heard = now
                if message["type"] == "pong":
                    self._on_pong(message["data"])
                else:
                    self._heard_since_ping = True
                    self._on_message(message)
                if now < next_ping:
                    continue
            elif now - last_heard > health_every + settings.socket_timeout:
                raise _Stale("no answer to PING on the subscription")
            if now >= next_ping:
                await self._ping(pubsub)
                next_ping = time.monotonic() + health_every
            if self._watermarks and now > self._watermarks_until:
                self._watermarks.clear()

    async def _ping(self, pubsub: PubSub) -> None:
        """Ping the subscription; the token names the journal position to checkpoint when it returns.

        The position is only read when messages arrived since the last ping (otherwise the checkpoint
        stands), so a quiet or frozen line is pinged without waiting on a command first.
        """
        token = PING_TOKEN
        if self._heard_since_ping:
            with contextlib.suppress(BackplaneUnavailable):
                end, added = await self._call("journal", self._journal_state)
                token = f"{PING_TOKEN} {end} {added}"
                self._heard_since_ping = False
        await pubsub.ping(token)

    def _on_pong(self, data: object) -> None:
        parts = _text(data).split()
        if len(parts) == 3 and parts[0] == PING_TOKEN and parts[2].isdigit():
            self._checkpoint, self._journal_added = parts[1], int(parts[2])

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "subscribe":
            self._confirm(_text(message["channel"]))
            return
        if kind != "message":
            return
        channel: bytes = message["channel"]
        data: bytes = message["data"]
        if channel == self._control_bytes:
            topic, _, stream = _text(data).partition("\n")
            if topic not in self._topics:
                self._topics.add(topic)
                self._topics_dirty = True
                if stream:
                    self._new_streams.append(stream)
            return
        try:
            wire = _wire.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            wire = None
        if wire is not None and wire.channel is not None and wire.seq is not None:
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self._invalid(_text(channel), "not UTF-8")
                return
            key = conflation_key(wire.ticker, wire.symbol)
            self._hand_over(Envelope(wire.channel, wire.seq, wire.type or "", text, key, time.monotonic()))
            return
        try:
            self._inbox.put_nowait((_text(channel), data))
        except asyncio.QueueFull:
            self.external_failed += 1
            self._warn("external message dropped: %d waiting to be sequenced", INBOX_SIZE)

    def _hand_over(self, envelope: Envelope) -> None:
        """Deliver one envelope, skipping what a post-reconnect replay already delivered."""
        if self._watermarks:
            mark = self._watermarks.get(envelope.stream)
            if mark is not None:
                if envelope.seq <= mark:
                    self.duplicates_skipped += 1
                    return
                del self._watermarks[envelope.stream]
        last_seq = self._last_seq
        last_seq.pop(envelope.stream, None)
        last_seq[envelope.stream] = envelope.seq  # re-inserted: least recently delivered first
        if len(last_seq) > MAX_TRACKED_STREAMS:  # idle streams are forgotten, not tracked forever
            del last_seq[next(iter(last_seq))]
        self.delivered += 1
        deliver = self._deliver
        if deliver is None:
            return
        try:
            deliver(envelope)
        except Exception:
            self.delivery_errors += 1
            log.exception("delivery of %s #%d failed", envelope.stream, envelope.seq)

    async def _fill(self, floors: Mapping[str, int]) -> None:
        """Deliver from history what each stream published after its floor (the last seq delivered).

        Only streams whose stored seq is ahead of their floor are read. A watermark per filled stream
        drops the copies that pub/sub still brings of what the history already gave.
        """
        streams = list(floors)
        for start in range(0, len(streams), FILL_CHUNK):
            chunk = streams[start : start + FILL_CHUNK]
            seq_keys = [self._stream_keys(stream)[0] for stream in chunk]
            current = await self._call("fill", lambda redis, keys=seq_keys: redis.mget(keys))
            behind = [
                (stream, int(seq) - floors[stream])
                for stream, seq in zip(chunk, current, strict=True)
                if seq is not None and int(seq) > floors[stream]
            ]
            if not behind:
                continue

            async def read(redis: Redis, wanted: list[tuple[str, int]] = behind) -> list[Any]:
                pipe = redis.pipeline(transaction=False)
                for stream, missed in wanted:
                    pipe.lrange(self._stream_keys(stream)[1], -min(missed, 100_000), -1)
                result: list[Any] = await pipe.execute()
                return result

            for (stream, _missed), texts in zip(behind, await self._call("fill", read), strict=True):
                floor = floors[stream]
                for text in texts:
                    envelope = envelope_of(stream, text)
                    if envelope is not None and envelope.seq > floor:
                        if envelope.seq > floor + 1 and floor:
                            log.warning(
                                "%s: messages %d-%d are gone from history",
                                stream,
                                floor + 1,
                                envelope.seq - 1,
                            )
                        self.gap_filled += 1
                        self._hand_over(envelope)
                        floor = envelope.seq
                self._watermarks[stream] = floor
        self._watermarks_until = time.monotonic() + 30.0

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    # ───────────────────────── messages from other programs ─────────────────────────

    async def _resequence(self) -> None:
        """Sequence external messages one at a time, in arrival order, so their order survives.

        Every instance hears the raw message; the first script run for its hash wins and publishes it with
        ``channel`` and ``seq``; the others find the guard key and skip it. Each instance runs its scripts in
        arrival order, so the winner of a later message always runs after the winner of an earlier one.
        """
        prefix = self._topic_prefix
        while True:
            topic, data = await self._inbox.get()
            base = topic[len(prefix) :] if topic.startswith(prefix) else topic
            parsed = external_message(base, data, datetime.now(UTC))
            if isinstance(parsed, str):
                self._invalid(topic, parsed)
                continue
            stream, body, kind = parsed.stream, parsed.body, parsed.kind
            seq_key, history_key = self._stream_keys(stream)
            digest = hashlib.sha1(topic.encode() + b"\0" + data).hexdigest()
            args: list[str | bytes | int] = [
                topic,
                body,
                self._history_size.get(topic, DEFAULT_HISTORY),
                self._last_seq.get(stream, 0),
                int(self.settings.stream_ttl * 1000),
                0,
                self._control,
                max(1, int(self.settings.external_dedupe_ttl * 1000)),
                1,
                stream,
                1 if kind == PRICE_TYPE else 0,
                self.log_size,
                self.settings.journal_size,
            ]
            keys = [
                seq_key,
                history_key,
                self._topics_key,
                f"{self._prefix}external:{digest}",
                self.name,
                self._journal_key,
            ]
            try:
                seq = int(await self._call("resequence", self._publish_script, keys, args))
            except BackplaneUnavailable as exc:
                self.external_failed += 1
                self._warn("external message on %s lost: %s", topic, exc)
                continue
            if seq:
                self.external_resequenced += 1
            else:
                self.external_duplicates += 1

    def _invalid(self, topic: str, reason: str) -> None:
        self.external_invalid += 1
        self._warn("ignored a message on %s: %s", topic, reason)

    def _warn(self, message: str, *args: object) -> None:
        """A warning another program's messages can trigger at will: rate-limited by the log setup."""
        log.warning(message, *args, extra=HOSTILE)


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (connections to the current primary) that waits for a free connection like
    ``BlockingConnectionPool`` instead of failing when all are in use."""


class _Script:
    """A Lua script run by EVALSHA; sent in full with EVAL (which caches it again) when Redis forgot it,
    as it does after a restart."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, redis: Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *keys, *args)

    async def pipelined(
        self, redis: Redis, calls: list[tuple[list[str], list[Any]]], wait: tuple[int, int] | None = None
    ) -> tuple[list[Any], int | None]:
        """Several runs in one pipeline, in order, and with ``wait`` (replicas, ms) a ``WAIT`` after them
        on the same connection: the results, and how many replicas acknowledged the writes in time. The
        script is loaded first if Redis forgot it (a restart, a new primary: every call of the pipeline
        then failed, so none of them ran)."""
        for attempt in range(2):
            pipe = redis.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            if wait is not None:
                pipe.execute_command("WAIT", *wait)
            outcomes: list[Any] = await pipe.execute(raise_on_error=False)
            if not attempt and any(isinstance(outcome, NoScriptError) for outcome in outcomes):
                await redis.script_load(self.source)
                continue
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome
            if wait is None:
                return outcomes, None
            return outcomes[:-1], int(outcomes[-1])
        raise AssertionError("unreachable")


def _entry_order(entry_id: str) -> tuple[int, int]:
    """A Redis stream entry id (``ms-seq``) as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)


def _entry_time(entry_id: object) -> float:
    """When an entry was added: the milliseconds of its id (the Redis server's clock)."""
    return _entry_order(_text(entry_id))[0] / 1000


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
