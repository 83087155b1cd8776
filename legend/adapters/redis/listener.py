"""The listener: one pub/sub connection subscribed to every topic, kept alive and caught up.

Each message is decoded once (``domain.envelope.unseal``) and handed to the streaming service. A message
without ``channel`` and ``seq`` comes from another program and goes to the resequencer. The connection is
pinged every half ``health_check_interval``; a PING unanswered for half the interval, with nothing at all
heard since it went out, means a dead line: a silent cut is noticed within the interval. After losing Redis
the listener reconnects with capped exponential backoff (cut short as soon as any command works again),
resubscribes, and replays from history and the archive what was published meanwhile (``recovery``),
skipping the copies that pub/sub still brings of what the replay already gave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from legend.adapters.redis.connection import RedisConnection, text
from legend.adapters.redis.keys import Keys
from legend.adapters.redis.recovery import PING_TOKEN, Journal, Kept, history_after
from legend.domain.envelope import Envelope, unseal
from legend.domain.events import StreamGap
from legend.domain.external import SEED_TOPICS
from legend.ports.backplane import BackplaneUnavailable, Deliver
from legend.runtime.backoff import Backoff
from legend.runtime.supervisor import describe

log = logging.getLogger("legend.redis")

# Streams whose last sequence number is remembered for gap filling after a reconnect; the least
# recently delivered are forgotten first, so subscriptions to junk symbols cannot grow memory forever.
MAX_TRACKED_STREAMS = 20_000
POLL_SECONDS = 0.25  # the listener wakes this often when idle (new topics, liveness pings)
WATERMARK_SECONDS = 30.0  # how long after a replay pub/sub copies of replayed messages are looked for


class _Stale(Exception):
    """The pub/sub connection stopped answering."""


class Listener:
    """Delivers every message of every topic to ``deliver``; ``run`` until cancelled."""

    def __init__(
        self,
        connection: RedisConnection,
        keys: Keys,
        topics: Iterable[str],
        external: Callable[[str, bytes], None],
        invalid: Callable[[str, str], None],
    ) -> None:
        self.connection = connection
        self.keys = keys
        self.external = external  # a message another program published: (channel, payload)
        self.invalid = invalid  # (channel, reason)
        self.deliver: Deliver | None = None
        self.journal = Journal(connection, keys)
        self.topics: set[str] = {keys.topic(t) for t in SEED_TOPICS} | {keys.topic(t) for t in topics}
        self.subscribed: set[str] = set()
        self.announced: set[str] = set()  # topics this instance announced since it last subscribed
        self.last_seq: dict[str, int] = {}  # per stream, the last delivered seq (bounded, LRU)
        self.connected = False  # subscribed to every topic
        self.first_try = asyncio.Event()  # the first attempt ended, either way
        settings = connection.settings
        self.backoff = Backoff(  # between reconnects: doubling, ±20 %, reset once subscribed again
            settings.reconnect_min_delay, maximum=settings.reconnect_max_delay, jitter=0.2
        )
        self.reconnects = 0
        self.delivered = 0
        self.delivery_errors = 0
        self.duplicates_skipped = 0
        self.gap_filled = 0
        self.gaps = 0  # ranges of messages found gone from history after a reconnect (``StreamGap``)
        self.archive_filled = 0  # messages of those replayed from the archive, beyond history
        self.archive_incomplete = 0  # replays that found the archive trimmed past the checkpoint
        self._topics_dirty = False
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._new_streams: list[str] = []  # first streams of topics other instances just announced
        self._watermarks: dict[str, int] = {}  # per stream, replayed up to here after a reconnect
        self._watermarks_until = 0.0
        self._heard_since_ping = False
        self._token_task: asyncio.Task[str] | None = None  # the journal position for the next ping
        self._ever_connected = False
        self._pubsub: PubSub | None = None
        self._control = keys.control.encode()

    async def watch(self, topic: str) -> None:
        """Subscribe ``topic`` (a pub/sub channel) and wait (bounded) until Redis confirmed it."""
        self.topics.add(topic)
        if topic in self.subscribed:
            return
        self._topics_dirty = True
        if not self.connected:
            return  # every known topic is subscribed when the listener (re)connects
        waiter = self._confirmed.get(topic)
        if waiter is None:
            waiter = self._confirmed[topic] = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.connection.deadline):
                await asyncio.shield(waiter)

    async def run(self) -> None:
        """Keep one subscription to every topic alive, reconnecting with capped exponential backoff."""
        connection, settings = self.connection, self.connection.settings
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError, _Stale, BackplaneUnavailable) as exc:
                connection.last_error = f"subscriber: {describe(exc)}"
            except Exception as exc:  # a bug must not end delivery for good
                log.exception("redis listener failed")
                connection.last_error = f"subscriber: {describe(exc)}"
            self.first_try.set()
            if self.connected:
                log.warning("lost the Redis subscription (%s); reconnecting", connection.last_error)
            self.connected = connection.live = False
            connection.note_health()
            self.subscribed.clear()
            await self.close()
            delay = self.backoff.next()
            # Publishes succeed as soon as Redis is back, and they go nowhere live until this listener
            # is subscribed again: a command that works cuts the backoff short (after the shortest delay,
            # so that a subscription that keeps failing is not retried in a tight loop).
            shortest = min(delay, settings.reconnect_min_delay)
            connection.wake.clear()  # set by this session's own commands; from now on by others
            await asyncio.sleep(shortest)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay - shortest):
                    await connection.wake.wait()

    async def close(self) -> None:
        task, self._token_task = self._token_task, None
        if task is not None:
            task.cancel()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await pubsub.aclose()

    async def _session(self) -> None:
        """One connection's life: subscribe, replay what was missed, then deliver until it fails."""
        connection = self.connection
        assert connection.subscriber is not None
        pubsub = self._pubsub = connection.subscriber.pubsub()
        registry = await connection.call("topics", lambda redis: redis.smembers(self.keys.topics))
        self.topics.update(text(topic) for topic in registry)
        await self.journal.begin()  # the first subscription replays what comes after this position
        self._topics_dirty = False
        self._new_streams.clear()
        wanted = {*self.topics, self.keys.control}
        buffered = await self._subscribe(pubsub, wanted)
        self.connected = True
        connection.command_ok = connection.proven = True
        self.backoff.reset()
        self.announced.clear()  # Redis may have lost the topic registry: announce again
        if self._ever_connected:
            self.reconnects += 1
            log.info("Redis subscription restored (%d topics)", len(wanted))
        self._ever_connected = True
        self._watermarks.clear()
        floors = await self.journal.missed(self.last_seq)
        kept = await self.journal.kept()
        if not kept.complete and self.reconnects:
            self.archive_incomplete += 1
            log.warning(
                "the archive no longer reaches back to this instance's checkpoint: must-deliver messages"
                " of the outage may be gone (raise redis.must_deliver_retention)"
            )
        await self._fill(floors, kept)
        self.journal.advance()
        for message in buffered:
            self._on_message(message)
        connection.live = True
        connection.note_health()
        self.first_try.set()
        await self._pump(pubsub)

    async def _subscribe(self, pubsub: PubSub, topics: set[str]) -> list[dict[str, Any]]:
        """Subscribe and wait until Redis confirmed every topic; returns the messages heard meanwhile."""
        buffered: list[dict[str, Any]] = []
        deadline = self.connection.deadline
        async with asyncio.timeout(deadline):
            await pubsub.subscribe(*topics)
            while not topics <= self.subscribed:
                message = await pubsub.get_message(timeout=deadline)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self._confirm(text(message["channel"]))
                elif message["type"] == "message":
                    buffered.append(message)
        return buffered

    async def _pump(self, pubsub: PubSub) -> None:
        """Deliver until the connection fails; subscribe new topics; ping every ``health_check_interval``.

        Each ping carries the journal's newest position (``recovery``): when its pong arrives, every
        message published up to there has arrived before it. Pings go out every half interval; one that
        brings nothing at all, not even its pong, within half the interval means a dead line, so a silent
        cut is noticed within ``health_check_interval`` (a busy line is alive: its messages are heard).
        """
        half = self.connection.settings.health_check_interval / 2
        last_heard = time.monotonic()
        next_ping = last_heard + half
        unanswered: float | None = None  # when the first ping with nothing heard since went out
        self._heard_since_ping = False
        while True:
            if self._topics_dirty:
                self._topics_dirty = False
                new = self.topics - self.subscribed
                if new:
                    # A topic another instance just announced: its first messages went out before we
                    # listened, so replay the announced streams from history once subscribed.
                    buffered = await self._subscribe(pubsub, new)
                    streams, self._new_streams = self._new_streams, []
                    await self._fill({stream: self.last_seq.get(stream, 0) for stream in streams})
                    for message in buffered:
                        self._on_message(message)
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            now = time.monotonic()
            if message is not None:
                last_heard = now
                if not self.connection.proven:  # anything heard on the subscription proves it works
                    self.connection.heard()
                if message["type"] == "pong":
                    self.journal.on_pong(message["data"])
                else:
                    self._heard_since_ping = True
                    self._on_message(message)
                if now < next_ping:
                    continue
            elif unanswered is not None and unanswered > last_heard and now - unanswered > half:
                raise _Stale(f"no answer to PING on the subscription within {half:g} s")
            # Commands work again after a failure: ping now, so that ``ok`` need not wait for the next
            # health check to hear that the subscription works too (at most one ping per poll).
            proof_wanted = not self.connection.proven and self.connection.command_ok
            if now >= next_ping or proof_wanted:
                sent = time.monotonic()
                await self._ping(pubsub)
                if unanswered is None or unanswered <= last_heard:
                    unanswered = sent
                next_ping = time.monotonic() + half
            if self._watermarks and now > self._watermarks_until:
                self._watermarks.clear()

    async def _ping(self, pubsub: PubSub) -> None:
        """Ping the subscription, never waiting on a command: the journal position a ping carries was read
        in the background since the ping before (a position read before the ping is sent is a valid
        checkpoint: everything up to it was published before the ping). It is only read when messages
        arrived since (otherwise the checkpoint stands). A slow Redis thus never stops the subscription
        being read (before, 0.5 s of latency held it up to 4 s while a read of the position timed out)."""
        token = PING_TOKEN
        task = self._token_task
        if task is not None and task.done():
            self._token_task = None
            if not task.cancelled() and task.exception() is None:
                token = task.result()
        if self._heard_since_ping and self._token_task is None:
            self._heard_since_ping = False
            self._token_task = asyncio.get_running_loop().create_task(self.journal.ping_token())
        await pubsub.ping(token)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "subscribe":
            self._confirm(text(message["channel"]))
            return
        if kind != "message":
            return
        channel: bytes = message["channel"]
        data: bytes = message["data"]
        if channel == self._control:
            topic, _, stream = text(data).partition("\n")
            if topic not in self.topics:
                self.topics.add(topic)
                self._topics_dirty = True
                if stream:
                    self._new_streams.append(stream)
            return
        try:
            envelope = unseal(data, time.monotonic())
        except UnicodeDecodeError:
            self.invalid(text(channel), "not UTF-8")
            return
        if envelope is None:
            self.external(text(channel), data)
        else:
            self.hand_over(envelope)

    def hand_over(self, envelope: Envelope) -> None:
        """Deliver one envelope, skipping what a post-reconnect replay already delivered."""
        if self._watermarks:
            mark = self._watermarks.get(envelope.stream)
            if mark is not None:
                if envelope.seq <= mark:
                    self.duplicates_skipped += 1
                    return
                del self._watermarks[envelope.stream]
        last_seq = self.last_seq
        last_seq.pop(envelope.stream, None)
        last_seq[envelope.stream] = envelope.seq  # re-inserted: least recently delivered first
        if len(last_seq) > MAX_TRACKED_STREAMS:  # idle streams are forgotten, not tracked forever
            del last_seq[next(iter(last_seq))]
        self.delivered += 1
        deliver = self.deliver
        if deliver is None:
            return
        try:
            deliver(envelope)
        except Exception:
            self.delivery_errors += 1
            log.exception("delivery of %s #%d failed", envelope.stream, envelope.seq)

    async def _fill(self, floors: Mapping[str, int], kept: Kept | None = None) -> None:
        """Deliver from history, and from the archive beyond it (``kept``), what each stream published
        after its floor (the last seq delivered); a watermark per filled stream drops the copies that
        pub/sub still brings. What neither holds is announced (``StreamGap``) before the messages after it
        are delivered: a loss unless the archive was complete and the stream keeps only finals."""
        archived = kept.streams if kept is not None else {}
        finals_kept = kept is not None and kept.complete
        floors = dict(floors)
        for stream, envelopes in archived.items():
            if stream not in floors:
                floors[stream] = self.last_seq.get(stream, envelopes[0].seq - 1)
        async for stream, envelopes, newest in history_after(self.connection, self.keys, floors):
            floor = floors[stream]
            older = [env for env in archived.get(stream, ()) if env.seq > floor]
            if older:
                first_stored = envelopes[0].seq if envelopes else newest + 1
                older = [env for env in older if env.seq < first_stored]
                envelopes = older + envelopes
                self.archive_filled += len(older)
            for envelope in envelopes:
                if envelope.seq <= floor:
                    continue
                if envelope.seq > floor + 1 and floor:
                    self._gap(stream, floor + 1, envelope.seq - 1, finals_kept)
                self.gap_filled += 1
                self.hand_over(envelope)
                floor = envelope.seq
            if newest > floor and floor:  # history lost all of it (expired, or emptied)
                self._gap(stream, floor + 1, newest, finals_kept)
            self._watermarks[stream] = floor
        self._watermarks_until = time.monotonic() + WATERMARK_SECONDS

    def _gap(self, stream: str, first: int, last: int, finals_kept: bool = False) -> None:
        log.warning("%s: messages %d-%d are gone from history and the archive", stream, first, last)
        self.gaps += 1
        self.connection.bus.publish(StreamGap(stream, first, last, finals_kept))

    def _confirm(self, topic: str) -> None:
        self.subscribed.add(topic)
        waiter = self._confirmed.pop(topic, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
