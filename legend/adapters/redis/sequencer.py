"""Publishing on Redis: sequence, history and fan-out in one script per message, and history read back.

The publish script (``publish.lua``) bumps the stream's sequence number, appends the final wire text to
the stream's history and PUBLISHes it on the topic, atomically, so the order of sequence numbers is the
order of delivery and any instance can replay any stream for any client. In the same step a price or a
market status enters the price log and every message enters the recovery journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from legend.adapters.redis import scripts
from legend.adapters.redis.connection import RedisConnection, warn
from legend.adapters.redis.keys import Keys
from legend.adapters.redis.listener import Listener
from legend.adapters.redis.recovery import stored
from legend.adapters.redis.shared_reads import SharedReads
from legend.domain.envelope import Envelope, seal
from legend.domain.history import window
from legend.domain.prices import price_log_kind
from legend.ports.backplane import BackplaneUnavailable, Fenced, Outgoing, Replay

Call = tuple[list[str], list[str | bytes | int]]  # the keys and arguments of one publish script run


class Sequencer:
    """``publish_many`` and ``replay`` of the Backplane port; raises BackplaneUnavailable."""

    def __init__(
        self, connection: RedisConnection, keys: Keys, listener: Listener, *, log_size: int, once_ttl: float
    ) -> None:
        self.connection = connection
        self.keys = keys
        self.listener = listener  # the last seq delivered per stream: the floor of the next one
        self.log_size = log_size  # price log entries kept (approximately: MAXLEN ~)
        self.once_ttl = once_ttl  # how long a publish with ``once`` is remembered
        self.history_size: dict[str, int] = {}  # per topic channel, learned from publishes
        self.publish_failures = 0
        self.unreplicated = 0  # publishes that fewer than wait_replicas replicas confirmed in time
        self.fenced = 0  # publishes refused: made on behalf of a lease another instance took over
        self._histories: SharedReads[list[Any]] = SharedReads()  # resumes of one stream share a read

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[Envelope | None]:
        """One publish script per message, all in one pipeline (one round trip, run in order)."""
        listener, settings = self.listener, self.connection.settings
        calls: list[Call] = []
        announcing: list[str | None] = []
        for m in messages:
            channel = self.keys.topic(m.topic)
            if channel not in listener.subscribed:
                await listener.watch(channel)
            self.history_size[channel] = m.history_size
            announce = channel not in listener.announced
            guard = self.keys.once(m.once) if m.once is not None else self.keys.stream(m.stream)[0]
            guard_ms = 0 if m.once is None else max(1, int(self.once_ttl * 1000))
            calls.append(
                self.call(
                    channel,
                    m.stream,
                    m.kind,
                    m.body,
                    m.history_size,
                    announce,
                    guard,
                    guard_ms,
                    fence=m.fence,
                    must_deliver=m.must_deliver,
                )
            )
            announcing.append(channel if announce else None)

        wanted = settings.wait_replicas
        wait = (wanted, max(1, int(settings.wait_timeout * 1000))) if wanted else None

        async def run(redis: Redis) -> tuple[list[Any], int | None]:
            return await scripts.PUBLISH.pipelined(redis, calls, wait)

        try:
            seqs, replicas = await self.connection.call("publish", run)
        except BackplaneUnavailable:
            self.publish_failures += 1
            raise
        if replicas is not None and replicas < wanted:
            self.unreplicated += len(messages)
            warn(
                "publish of %d message(s) reached %d of %d replicas in time", len(messages), replicas, wanted
            )
        refused = [m for m, seq in zip(messages, seqs, strict=True) if int(seq) < 0]
        if refused:
            self.fenced += len(refused)
            fence = refused[0].fence
            raise Fenced(
                f"lease {fence[0] if fence else '?'!r} was taken over: {len(refused)} publish(es) refused"
            )
        published: list[Envelope | None] = []
        for m, announced, seq in zip(messages, announcing, seqs, strict=True):
            if announced is not None:
                listener.announced.add(announced)
            published.append(
                seal(m.stream, int(seq), m.kind, m.body, m.key, final=m.final) if int(seq) else None
            )
        return published

    def call(
        self,
        channel: str,
        stream: str,
        kind: str,
        body: bytes,
        history_size: int,
        announce: bool,
        guard: str,
        guard_ms: int,
        keep_longer: bool = False,
        fence: tuple[str, int] | None = None,
        must_deliver: bool = False,
    ) -> Call:
        """The publish script's keys and arguments for one message: ``guard`` is refused for ``guard_ms``
        once published (0: no guard); ``keep_longer`` never shrinks a longer history; ``fence`` (lease,
        token) refuses it unless that lease's token is still the one given; ``must_deliver`` keeps it in
        the archive for ``must_deliver_retention``."""
        seq_key, history_key = self.keys.stream(stream)
        settings = self.connection.settings
        args: list[str | bytes | int] = [
            channel,
            body,
            history_size,
            self.listener.last_seq.get(stream, 0),
            int(settings.stream_ttl * 1000),
            1 if announce else 0,
            self.keys.control,
            guard_ms,
            1 if keep_longer else 0,
            stream,
            price_log_kind(kind, stream) or "",
            self.log_size,
            settings.journal_size,
            "" if fence is None else fence[1],
            int(settings.must_deliver_retention * 1000) if must_deliver else 0,
        ]
        fence_key = seq_key if fence is None else self.keys.fence(fence[0])  # unread without a fence
        keys = [
            seq_key,
            history_key,
            self.keys.topics,
            guard,
            self.keys.price_log,
            self.keys.journal,
            fence_key,
            self.keys.archive,
            self.keys.archive_trimmed,
        ]
        return keys, args

    async def replay(self, stream: str, since: int | None) -> Replay:
        """The stream's stored history after ``since``, read with its seq in one transaction."""
        seq_key, history_key = self.keys.stream(stream)

        async def read(redis: Redis) -> list[Any]:
            pipe = redis.pipeline(transaction=True)
            pipe.lrange(history_key, 0, -1)
            pipe.get(seq_key)
            result: list[Any] = await pipe.execute()
            return result

        texts, last = await self._histories.read(stream, lambda: self.connection.call("replay", read))
        last_seq = int(last or 0)
        envelopes, complete = window(stored(stream, texts), last_seq, since)
        return Replay(envelopes, last_seq, complete)
