"""Where OHLCV bars are kept, with the price-log position they account for.

One builder, holding the cluster's lease, reads the ordered price log and writes its bars together with
its position (the discipline of alert evaluation: ``PositionMove``, ``PositionConflict``); a successor
resumes from ``position`` with ``open_bars``. Readers page through ``history``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final, Protocol

from legend.domain.bar_history import Coverage
from legend.domain.bars import Bar, BarInterval
from legend.ports.repositories import PositionMove

#: The most bars one ``history`` call returns (``GET /api/bars/{ticker}?limit=``).
MAX_HISTORY: Final = 5000


class BarStore(Protocol):
    """Bars by (ticker, interval, start), the builder's log position, and retention."""

    async def write(self, bars: Sequence[Bar], position: PositionMove) -> None:
        """In one transaction: move the log position (PositionConflict, and nothing stored, when it is not
        at ``position.before``: another builder moved on) and upsert ``bars`` by (ticker, interval, start)."""
        ...

    async def position(self, log: str) -> str | None:
        """The stored position of the builder in price log ``log``: where the stored bars end."""
        ...

    async def history(
        self, ticker: str, interval: BarInterval, limit: int, before: datetime | None = None
    ) -> list[Bar]:
        """The newest ``limit`` (1 to MAX_HISTORY) bars starting before ``before`` (if given), oldest first,
        so an open bar comes last; ValueError for a limit out of range or a naive ``before``."""
        ...

    async def open_bars(self) -> list[Bar]:
        """Every bar not closed yet, of every ticker and interval: what a takeover resumes."""
        ...

    async def prune(self, now: datetime, keep: Mapping[BarInterval, timedelta]) -> int:
        """Delete the closed bars of each interval in ``keep`` that started more than ``keep[interval]``
        before ``now``, in batches (short transactions); the number deleted."""
        ...

    async def insert_missing(
        self, bars: Sequence[Bar], covered: tuple[str, BarInterval, Coverage] | None = None
    ) -> int:
        """In one transaction: store each of ``bars`` that is not stored yet (a bar the live builder wrote is
        never replaced) and, with ``covered`` (ticker, interval, coverage), record how far the backfill of that
        series reaches; the number of bars stored."""
        ...

    async def coverage(self, ticker: str, interval: BarInterval) -> Coverage | None:
        """What ``insert_missing`` last recorded for the series; None before its first backfill."""
        ...
