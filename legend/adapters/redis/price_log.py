"""The price log on Redis: the stream ``{prefix}price-log``, trimmed to about ``alerts.log_size`` entries.

The publish script appends every price and market status to it in the step that sequences the message;
rule changes are appended here. Alert evaluation and bar building each read it with XREAD and store their
position (an entry id) in the database.
"""

from __future__ import annotations

import math
import re
from collections import deque
from typing import Any

from redis.asyncio import Redis

from legend.adapters.price_log_reads import check_limit, reaches_back
from legend.adapters.redis.connection import RedisConnection, text
from legend.adapters.redis.keys import Keys
from legend.ports.price_log import LogEntry, LogRead


class RedisPriceLog:
    """The PriceLog port on a Redis stream; raises BackplaneUnavailable."""

    durable = True  # positions outlive this process: worth storing

    def __init__(self, connection: RedisConnection, keys: Keys, log_size: int) -> None:
        self.connection = connection
        self.name = keys.price_log
        self.log_size = log_size  # entries kept (approximately: MAXLEN ~)
        # the last positions reads returned: a read from one of them continues a reader's previous read
        # (alert evaluation and bar building each read the log)
        self._continues: deque[str] = deque(maxlen=4)

    async def read(self, after: str | None, count: int, wait: float) -> LogRead:
        """XREAD from the log, blocking up to ``wait``. Checks whether entries after ``after`` were
        trimmed when it is not where the last read ended, or when the read found as many entries as a
        trimmed log would hold (a full batch, or ``log_size`` of them)."""
        start = after or "0-0"
        timeout = self.connection.settings.socket_timeout
        block = max(1, int(min(wait, timeout / 2) * 1000)) if wait > 0 else None

        async def xread(redis: Redis) -> Any:
            return await redis.xread({self.name: start}, count=count, block=block)

        found = await self.connection.call("price log read", xread)
        entries = [
            LogEntry(text(entry_id), _entry_time(entry_id), text(fields[b"k"]), text(fields[b"d"]))  # type: ignore[arg-type]
            for _, items in found or ()
            for entry_id, fields in items
        ]
        missed = False
        # Trimming past ``start`` leaves at least ``log_size`` entries, all after it.
        suspect = start not in self._continues or len(entries) >= min(count, self.log_size)
        if entries and start != "0-0" and suspect:
            missed = await self._trimmed_after(start)
        if entries:
            self._continues.append(entries[-1].id)
        return LogRead(entries, missed)

    async def _trimmed_after(self, position: str) -> bool:
        """Whether trimming passed ``position``, read from the stream itself: its first entry is after the
        position (so the position's entry is gone: trimming removes the oldest first), and the stream did
        lose entries (Redis 7's ``entries-added`` is above its length: it is not a new log after Redis lost
        its data). Redis 7.0's ``max-deleted-entry-id`` cannot tell: XADD's MAXLEN trimming leaves it at
        ``0-0``. When the position was exactly the last entry trimmed, nothing after it was lost but this
        says so all the same: there is no telling from what is left."""
        info = await self.connection.call("price log info", lambda redis: redis.xinfo_stream(self.name))
        first = info.get("first-entry")
        if not first or _entry_order(text(first[0])) <= _entry_order(position):
            return False  # the position is still in the log (or the log is empty)
        added, length = info.get("entries-added"), info.get("length")
        return added is None or length is None or int(added) > int(length)

    async def read_back(self, until: str | None, since: float, limit: int) -> LogRead:
        """XREVRANGE from ``until`` down to the millisecond of ``since`` (entry ids are the Redis server's
        milliseconds), with the stream's first entry and count of entries ever added read in the same
        transaction: it was trimmed when fewer are left than were added."""
        check_limit(limit)
        if until is not None and not _is_entry_id(until):
            raise ValueError(f"not a position of this price log: {until!r}")
        start = f"{max(0, math.floor(since * 1000))}-0"

        async def read(redis: Redis) -> list[Any]:
            pipe = redis.pipeline(transaction=True)
            pipe.xrevrange(self.name, max=until or "+", min=start, count=limit)
            pipe.xinfo_stream(self.name)
            result: list[Any] = await pipe.execute(raise_on_error=False)
            if isinstance(result[0], Exception):
                raise result[0]
            return result

        found, info = await self.connection.call("price log read back", read)
        entries = [
            LogEntry(text(entry_id), _entry_time(entry_id), text(fields[b"k"]), text(fields[b"d"]))  # type: ignore[arg-type]
            for entry_id, fields in reversed(found)
        ]
        entries = [entry for entry in entries if entry.at >= since]  # the millisecond's start may be before
        if isinstance(info, Exception):  # no stream (ERR no such key): nothing was ever trimmed from it
            return LogRead(entries)
        first, added, length = info.get("first-entry"), info.get("entries-added"), info.get("length")
        trimmed = added is None or length is None or int(added) > int(length)
        first_at = _entry_time(first[0]) if first else None
        return LogRead(entries, missed=not reaches_back(trimmed, first_at, since))

    async def end(self) -> str:
        newest = await self.connection.call(
            "price log end", lambda redis: redis.xrevrange(self.name, count=1)
        )
        return text(newest[0][0]) if newest else "0-0"

    async def note_rule_change(self, rule_id: int) -> None:
        await self.connection.call(
            "rule change",
            lambda redis: redis.xadd(
                self.name, {"k": "rule", "d": str(rule_id)}, maxlen=self.log_size, approximate=True
            ),
        )


_ENTRY_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")  # a stream entry id: ms, or ms-seq


def _is_entry_id(position: str) -> bool:
    """Whether Redis takes ``position`` as an entry id (each part a 64-bit unsigned number)."""
    match = _ENTRY_ID.fullmatch(position)
    return match is not None and all(int(part or 0) < 2**64 for part in match.groups())


def _entry_order(entry_id: str) -> tuple[int, int]:
    """A Redis stream entry id (``ms-seq``) as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)


def _entry_time(entry_id: object) -> float:
    """When an entry was added: the milliseconds of its id (the Redis server's clock)."""
    return _entry_order(text(entry_id))[0] / 1000
