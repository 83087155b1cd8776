"""The PriceLog port of a backplane, answered by the price log it keeps (memory, SQL or Redis); and what
the three logs share in answering ``read_back``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from legend.ports.price_log import LogEntry, LogRead, PriceLog


class PriceLogReads:
    """Mixed into a backplane that keeps its price log in ``self.price_log``: alert evaluation reads it
    through the backplane, whichever log that is."""

    price_log: PriceLog

    async def read(self, after: str | None, count: int, wait: float) -> LogRead:
        return await self.price_log.read(after, count, wait)

    async def read_back(self, until: str | None, since: float, limit: int) -> LogRead:
        return await self.price_log.read_back(until, since, limit)

    async def end(self) -> str:
        return await self.price_log.end()

    async def note_rule_change(self, rule_id: int) -> None:
        await self.price_log.note_rule_change(rule_id)


def reaches_back(trimmed: bool, oldest_at: float | None, since: float) -> bool:
    """Whether a log still holds every entry appended at or after ``since``, by what every adapter knows
    of its trimmed part: only that it is older than the oldest entry left (``oldest_at``; None when none
    is). An entry trimmed in the same instant as the oldest left may have been at ``since``: not held."""
    return not trimmed or (oldest_at is not None and oldest_at < since)


def check_limit(limit: int) -> None:
    """``read_back``'s ``limit``: at least one entry."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


def numbered_position(position: str) -> int:
    """A position of a log whose ids are numbers (the memory and database logs)."""
    if not position.isascii() or not position.isdigit():
        raise ValueError(f"not a position of this price log: {position!r}")
    return int(position)


def newest_since(entries: Sequence[LogEntry], until: int | None, since: float, limit: int) -> list[LogEntry]:
    """``read_back`` over numbered ``entries`` held in memory (oldest first, ids contiguous): the newest
    ``limit`` with ids up to ``until`` (None: any) appended from ``since``, oldest first."""
    newer = 0 if until is None or not entries else max(0, int(entries[-1].id) - until)
    found: list[LogEntry] = []
    for entry in itertools.islice(reversed(entries), newer, None):
        if entry.at >= since:
            found.append(entry)
            if len(found) == limit:
                break
    found.reverse()
    return found
