"""The price log in memory: the in-memory backplane's when there is no database to keep it in.

It dies with the process (``durable`` is False): a crash loses the prices alert evaluation had not read
yet. ``legend.adapters.sql.price_log`` is the durable one, the single server's default."""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Awaitable

from legend.adapters.price_log_reads import check_limit, newest_since, numbered_position, reaches_back
from legend.ports.clock import Clock
from legend.ports.price_log import LogEntry, LogKind, LogRead
from legend.runtime.events import set_within


class MemoryPriceLog:
    """The LocalPriceLog port on a bounded deque: the last ``log_size`` entries."""

    def __init__(self, clock: Clock, log_size: int = 100_000) -> None:
        self._clock = clock
        self.name = f"memory:{secrets.token_hex(4)}"  # positions never carry over to another process
        self.durable = False
        self._entries: deque[LogEntry] = deque(maxlen=log_size)
        self._appended = 0
        self._appended_event = asyncio.Event()

    def append(self, kind: LogKind, data: str) -> Awaitable[None] | None:
        self._appended += 1
        at = self._clock.now().timestamp()
        self._entries.append(LogEntry(str(self._appended), at, kind, data))
        self._appended_event.set()
        return None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def read(self, after: str | None, count: int, wait: float) -> LogRead:
        position = int(after) if after else 0
        if position >= self._appended and wait > 0:
            self._appended_event.clear()
            if not await set_within(self._appended_event, wait):
                return LogRead([])
        entries = self._entries
        oldest = self._appended - len(entries) + 1  # the number of the first entry kept
        start = max(position + 1, oldest) - oldest
        return LogRead(
            [entries[i] for i in range(start, min(len(entries), start + count))],
            missed=position + 1 < oldest,
        )

    async def read_back(self, until: str | None, since: float, limit: int) -> LogRead:
        check_limit(limit)
        newest = None if until is None else numbered_position(until)
        entries = self._entries
        found = newest_since(entries, newest, since, limit)
        trimmed = self._appended > len(entries)
        return LogRead(found, missed=not reaches_back(trimmed, entries[0].at if entries else None, since))

    async def end(self) -> str:
        return str(self._appended)

    async def note_rule_change(self, rule_id: int) -> None:
        self.append("rule", str(rule_id))

    def status(self) -> dict[str, object]:
        return {"kind": "memory", "durable": False, "entries": len(self._entries)}
