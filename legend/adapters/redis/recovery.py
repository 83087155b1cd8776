"""Gap fill after a reconnect: the recovery journal, this instance's checkpoint in it, and history reads.

The publish script appends (stream, seq) of every message to the journal (a Redis stream, the last
``journal_size`` entries). The listener keeps a checkpoint in it: the journal position up to which every
message is known to have reached this instance (a pub/sub PING carries the position read just before it;
Redis answers a connection in order, so when the pong arrives everything up to there has arrived). After
resubscribing, the journal after the checkpoint names the streams and first seqs published meanwhile,
and their history is replayed.

A stream's history holds its last ``history_size`` messages; an outage can outrun it. So every
must-deliver message also enters the archive (a Redis stream of payloads under the journal entry's id,
trimmed to the last ``must_deliver_retention`` seconds), and the archive after the checkpoint is replayed
with the history. Whether the archive still reaches back to the checkpoint (nothing after it trimmed)
says whether every must-deliver message of the outage is there.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from legend.adapters.redis.connection import RedisConnection, text
from legend.adapters.redis.keys import Keys
from legend.domain.envelope import Envelope, unseal

log = logging.getLogger("legend.redis")

FILL_CHUNK = 500  # streams per round trip when replaying what a reconnect missed
JOURNAL_CHUNK = 5_000  # journal entries per round trip when finding what a reconnect missed
PING_TOKEN = "legend-checkpoint"  # a pub/sub PING's message: the pong carries the journal position


@dataclass
class Kept:
    """The archived must-deliver messages published after a checkpoint, per stream, oldest first; and
    ``complete``: the archive still reached back to the checkpoint (none of them trimmed), in the same
    Redis data set."""

    streams: dict[str, list[Envelope]] = field(default_factory=dict)
    complete: bool = False


def stream_id(entry_id: str) -> tuple[int, int]:
    """A Redis stream entry id ("ms-n") as a pair that orders as the ids do."""
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)


class Journal:
    """This instance's checkpoint in the recovery journal, and what was published after it."""

    def __init__(self, connection: RedisConnection, keys: Keys) -> None:
        self.connection = connection
        self.keys = keys
        # The journal position (and its entries-added count) up to which every message is known to have
        # reached this instance; None before the first subscription.
        self.checkpoint: str | None = None
        self.added = 0
        self.epoch: str | None = None
        self.incomplete = 0  # recoveries that found the journal trimmed past the checkpoint
        self._next: tuple[str, int, str] | None = None  # the checkpoint once ``missed`` was filled
        self._since: str | None = None  # what ``missed`` read after, in the same data set (None: another)

    async def begin(self) -> None:
        """On the first subscription: what comes after the journal's current end is what to replay."""
        if self.checkpoint is None:
            self.epoch = await self.connection.call("epoch", self._epoch_of)
            self.checkpoint, self.added = await self.connection.call("journal", self._state)

    async def ping_token(self) -> str:
        """A PING message naming the journal's newest position, to checkpoint when its pong returns."""
        end, added = await self.connection.call("journal", self._state)
        return f"{PING_TOKEN} {end} {added}"

    def on_pong(self, data: object) -> None:
        parts = text(data).split()
        if len(parts) == 3 and parts[0] == PING_TOKEN and parts[2].isdigit():
            self.checkpoint, self.added = parts[1], int(parts[2])

    async def missed(self, delivered: Mapping[str, int]) -> dict[str, int]:
        """The streams published after the checkpoint, each with the seq it is delivered up to (the
        floor to fill from); ``advance`` moves the checkpoint past them once they are filled.

        Streams in ``delivered`` (this instance's last delivered seq) resume after it; a stream it never
        delivered resumes at the first seq published after the checkpoint. When the journal was trimmed
        past the checkpoint, every stream in ``delivered`` is filled as well (best effort) and
        ``incomplete`` counts it.
        """
        epoch = await self.connection.call("epoch", self._epoch_of)
        end, added = await self.connection.call("journal", self._state)
        # Another epoch: Redis lost its data (a restart without persistence), so everything in the journal
        # came after the checkpoint. The same epoch on a new primary: the journal was replicated, and
        # entries it takes now get ids above the checkpoint (stream ids never go back; the new primary's
        # clock is at most the failover time behind the old one's).
        continuous = epoch == self.epoch
        expected = added - self.added if continuous else added
        start = (self.checkpoint or "0-0") if continuous else "0-0"
        self._since = start if continuous else None
        first: dict[str, int] = {}
        read = 0
        async for entry_id, fields in self._after(self.keys.journal, start):
            read += 1
            start = entry_id
            with contextlib.suppress(KeyError, ValueError):
                first.setdefault(text(fields[b"s"]), int(fields[b"q"]))
        floors = {stream: delivered.get(stream, seq - 1) for stream, seq in first.items()}
        if read < expected:
            self.incomplete += 1
            log.warning(
                "the journal no longer reaches back to this instance's checkpoint (%d of %d entries"
                " left): replaying only the streams it knows; raise redis.journal_size",
                read,
                expected,
            )
            for stream, seq in delivered.items():
                floors.setdefault(stream, seq)
        self._next = (start if read else end, added, epoch)
        return floors

    async def kept(self) -> Kept:
        """The archive after the checkpoint ``missed`` read from (call it between ``missed`` and
        ``advance``). Incomplete after Redis lost its data, and when entries after the checkpoint may have
        been trimmed (an outage beyond ``must_deliver_retention``: the trim bound, below which every
        trimmed id lies, is past it); an archive never trimmed is complete."""
        kept = Kept()
        since = self._since
        now = time.monotonic()
        async for _, fields in self._after(self.keys.archive, since or "0-0"):
            with contextlib.suppress(KeyError, UnicodeDecodeError):
                stream = text(fields[b"s"])
                envelope = unseal(fields[b"d"], now, stream)
                if envelope is not None:
                    kept.streams.setdefault(stream, []).append(envelope)
        # read after the entries: if nothing after the checkpoint was trimmed by now, the read saw it all
        bound = await self.connection.call("archive", lambda redis: redis.get(self.keys.archive_trimmed))
        kept.complete = since is not None and (bound is None or stream_id(text(bound)) <= stream_id(since))
        return kept

    async def _after(self, key: str, low: str) -> AsyncIterator[tuple[str, dict[bytes, bytes]]]:
        """The entries of the Redis stream ``key`` after id ``low`` ("0-0": all), ``JOURNAL_CHUNK`` per
        round trip."""
        while True:
            entries = await self.connection.call(
                "journal",
                lambda redis, low=low: redis.xrange(
                    key, min="-" if low == "0-0" else f"({low}", count=JOURNAL_CHUNK
                ),
            )
            for entry_id, fields in entries:
                low = text(entry_id)
                yield low, fields
            if len(entries) < JOURNAL_CHUNK:
                return

    def advance(self) -> None:
        """What ``missed`` returned was delivered: move the checkpoint to the journal's end it read."""
        if self._next is not None:
            (self.checkpoint, self.added, self.epoch), self._next = self._next, None

    async def _epoch_of(self, redis: Redis) -> str:
        """The data set's epoch token, made now if Redis has none (it lost its data, or never had one)."""
        pipe = redis.pipeline(transaction=True)
        pipe.set(self.keys.epoch, secrets.token_hex(8), nx=True)
        pipe.get(self.keys.epoch)
        _, epoch = await pipe.execute()
        return text(epoch)

    async def _state(self, redis: Redis) -> tuple[str, int]:
        """The journal's newest position and how many entries it ever took (``0-0``, 0 when absent)."""
        try:
            info = await redis.xinfo_stream(self.keys.journal)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return "0-0", 0
            raise
        return text(info.get("last-generated-id", "0-0")), int(info.get("entries-added", 0))


async def history_after(
    connection: RedisConnection, keys: Keys, floors: Mapping[str, int]
) -> AsyncIterator[tuple[str, list[Envelope], int]]:
    """Each stream's stored messages after its floor, oldest first, and its newest seq. Only streams
    whose stored seq is ahead of their floor are read, ``FILL_CHUNK`` streams per round trip."""
    streams = list(floors)
    for begin in range(0, len(streams), FILL_CHUNK):
        chunk = streams[begin : begin + FILL_CHUNK]
        seq_keys = [keys.stream(stream)[0] for stream in chunk]
        current = await connection.call("fill", lambda redis, wanted=seq_keys: redis.mget(wanted))
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
                pipe.lrange(keys.stream(stream)[1], -min(missed, 100_000), -1)
            result: list[Any] = await pipe.execute()
            return result

        for (stream, missed), texts in zip(behind, await connection.call("fill", read), strict=True):
            yield stream, stored(stream, texts), floors[stream] + missed


def stored(stream: str, texts: list[bytes]) -> list[Envelope]:
    """The envelopes of a stream's stored wire texts (those that are not one are skipped)."""
    now = time.monotonic()
    envelopes = []
    for raw in texts:
        with contextlib.suppress(UnicodeDecodeError):
            envelope = unseal(raw, now, stream)
            if envelope is not None:
                envelopes.append(envelope)
    return envelopes
