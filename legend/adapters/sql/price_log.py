"""The single server's price log, in its database: durable before a publish is answered, in group commits.

The in-memory backplane appends every price and market status (and the alerting service every rule
change) here before it sequences and delivers the message; the publish waits until the entry is committed. Appends that arrive
while a commit is under way wait together and share the next one (group commit): a burst of concurrent
publishes costs one transaction per round, not one each. Entries get gapless, increasing ids in append
order, given when their commit starts (a failed commit gives them again); alert evaluation reads them after
its stored position (``alert_log_positions`` in the server's database, moved in the transaction that
stores what the prices did to the rules), so a crash anywhere replays exactly what was not stored yet.
Committed entries are also kept in memory: evaluation, caught up, reads them without a query; after a
restart it reads the store (``price_log_stores``: a SQLite file of the log's own beside the server's, or
the server's table on PostgreSQL).

Trimming rides on the commits: at most once a second, the entries every reader has stored (up to the lower
of alert evaluation's and bar building's stored positions) are deleted in the same transaction as the next
append; and the table never holds more than ``log_size`` entries (a reader that falls that far behind
skips the oldest, and is told: ``LogRead.missed``). The newest entry always stays, so the ids carry on
from it after a restart.

One process appends: two servers on the in-memory backplane need a database each (or Redis, whose log
this is not).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable

from sqlalchemy import select

from legend.adapters.price_log_reads import check_limit, newest_since, numbered_position, reaches_back
from legend.adapters.sql.bars import POSITION_PREFIX as BAR_POSITION_PREFIX
from legend.adapters.sql.database import Database
from legend.adapters.sql.price_log_stores import FileStore, LogStore, TableStore
from legend.adapters.sql.tables import alert_log_positions
from legend.ports.backplane import BackplaneUnavailable
from legend.ports.clock import Clock
from legend.ports.price_log import LogEntry, LogKind, LogRead
from legend.runtime.events import set_within

log = logging.getLogger("legend.alerts")

NAME = "database:price-log"  # the log's name in alert_log_positions
TAIL = 10_000  # committed entries also kept in memory, for evaluation that keeps up
TRIM_SECONDS = 1.0  # evaluated entries are deleted at most this often (with the next append)
STOP_SECONDS = 5.0  # how long stopping waits for the commit under way

_Pending = tuple[float, LogKind, str, "asyncio.Future[None]"]


class SqlPriceLog:
    """The LocalPriceLog port on the ``alert_price_log`` table; ``append`` raises (through its awaitable)
    BackplaneUnavailable when the entry could not be stored."""

    durable = True
    name = NAME

    def __init__(
        self, database: Database, clock: Clock, log_size: int = 100_000, *, store: LogStore | None = None
    ) -> None:
        """``database`` stores the positions alert evaluation reads from; the entries are in ``store``
        (default: the table in ``database``)."""
        self.database = database
        self.store: LogStore = store or TableStore(database)
        self._clock = clock
        self.log_size = log_size
        self._pending: list[_Pending] = []
        self._flushing: asyncio.Task[None] | None = None
        self._synced = False  # whether _next and _first are the table's (learned at start, after a failure)
        self._sync_lock = asyncio.Lock()
        self._next = 1  # the id of the next entry stored
        self._first = 1  # the oldest id in the table (those below were trimmed)
        self._tail: deque[LogEntry] = deque(maxlen=TAIL)  # the newest committed entries, ids contiguous
        self._committed = asyncio.Event()  # set on every commit: wakes a waiting read
        self._trimmed_at = 0.0
        self.commits = 0
        self.stored = 0
        self.trimmed = 0
        self.failures = 0
        self.last_error: str | None = None

    @classmethod
    def beside(cls, database: Database, clock: Clock, log_size: int = 100_000) -> SqlPriceLog:
        """The log of the server whose positions ``database`` stores. A SQLite file gets a file of its own
        beside it (``legend.db`` → ``legend-price-log.db``, see ``FileStore``); PostgreSQL (and an
        in-memory SQLite) keep it in the table of the same name in the database itself."""
        if database.file is None:
            return cls(database, clock, log_size)
        own = database.file.with_name(f"{database.file.stem}-price-log{database.file.suffix or '.db'}")
        return cls(database, clock, log_size, store=FileStore(own))

    # ───────────── appending ─────────────

    def append(self, kind: LogKind, data: str) -> Awaitable[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((self._clock.now().timestamp(), kind, data, future))
        if self._flushing is None:
            self._flushing = loop.create_task(self._flush(), name="price log commit")
        return future

    async def note_rule_change(self, rule_id: int) -> None:
        await self.append("rule", str(rule_id))

    async def _flush(self) -> None:
        """Commit what is pending, round after round, until nothing is (then this task ends)."""
        batch: list[_Pending] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._sync()
                    first = self._next
                    entries = [
                        LogEntry(str(first + n), at, kind, data)
                        for n, (at, kind, data, _) in enumerate(batch)
                    ]
                    await self._store(entries)
                except Exception as exc:
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._synced = False  # the commit may have happened all the same: ask the table again
                    log.warning("price log: %d entries not stored: %s", len(batch), self.last_error)
                    _settle(batch, BackplaneUnavailable(f"price log: not stored: {self.last_error}"))
                    continue
                self._took(entries)
                _settle(batch)
                batch = []
        except BaseException:  # cancelled (the loop is closing): nobody may wait forever
            _settle(batch + self._pending, BackplaneUnavailable("price log: stopped"))
            self._pending = []
            raise
        finally:
            self._flushing = None

    async def _store(self, entries: list[LogEntry]) -> None:
        """Insert the entries, trimming in the same transaction when it is due."""
        upto = await self._trim_bound(int(entries[-1].id))
        await self.store.commit([(int(e.id), e.at, e.kind, e.data) for e in entries], upto)
        if upto is not None:
            self.trimmed += upto - self._first + 1
            self._first = upto + 1

    async def _trim_bound(self, newest: int) -> int | None:
        """Up to which id to delete now: what evaluation has stored (checked at most every TRIM_SECONDS),
        and at least what is over ``log_size`` with ``newest`` in; None when nothing is. Only entries
        stored before this commit: the newest entry stays."""
        upto = min(newest - self.log_size, self._next - 1)
        now = time.monotonic()
        if now - self._trimmed_at >= TRIM_SECONDS:
            self._trimmed_at = now
            upto = max(upto, min(await self._position(), self._next - 1))
        return upto if upto >= self._first else None

    async def _position(self) -> int:
        """How far every reader of this log has stored (0: none yet): alert evaluation's position, and the
        bar builder's where bars are built; the lower of them, so neither loses entries it has not read."""
        c = alert_log_positions.c
        query = select(c.position).where(c.name.in_([self.name, BAR_POSITION_PREFIX + self.name]))
        async with self.database.read() as conn:
            return min((_number(position) for position in await conn.scalars(query)), default=0)

    def _took(self, entries: list[LogEntry]) -> None:
        """Committed: readable from memory, and the ids carry on."""
        first, last = int(entries[0].id), int(entries[-1].id)
        if self._tail and int(self._tail[-1].id) + 1 != first:
            self._tail.clear()
        self._tail.extend(entries)
        self._next = last + 1
        self.commits += 1
        self.stored += len(entries)
        self._committed.set()

    async def _sync(self) -> None:
        """Learn the newest and oldest stored ids (at start, and after a failed commit: it may have
        committed). The ids carry on after the newest stored entry or position, whichever is higher."""
        if self._synced:
            return
        async with self._sync_lock:
            if self._synced:
                return
            newest, oldest = await self.store.bounds()
            last = max(newest or 0, await self._position())
            self._next = last + 1
            self._first = oldest if oldest is not None else last + 1
            self._tail.clear()
            self._synced = True
            self._committed.set()

    # ───────────── reading ─────────────

    async def read(self, after: str | None, count: int, wait: float) -> LogRead:
        await self._sync()
        position = int(after) if after else 0
        if position >= self._next - 1 and wait > 0:
            self._committed.clear()
            if not await set_within(self._committed, wait):
                return LogRead([])
        if position >= self._next - 1:
            return LogRead([])
        tail = self._tail
        tail_first = int(tail[0].id) if tail else 0
        if tail and tail_first <= position + 1:
            start = position + 1 - tail_first
            entries = list(itertools.islice(tail, start, start + count))
        else:
            entries = await self._stored_after(position, count)
        # ids are gapless: a first entry past position + 1 means the ones between were trimmed unread
        missed = position > 0 and bool(entries) and int(entries[0].id) > position + 1
        return LogRead(entries, missed)

    async def _stored_after(self, position: int, count: int) -> list[LogEntry]:
        rows = await self.store.after(position, count)
        return [LogEntry(str(i), at, kind, data) for i, at, kind, data in rows]  # type: ignore[arg-type]

    async def read_back(self, until: str | None, since: float, limit: int) -> LogRead:
        check_limit(limit)
        newest = None if until is None else numbered_position(until)
        await self._sync()
        tail = self._tail  # ids start at 1 and are gapless: a first id past 1 means trimmed before it
        if tail and reaches_back(int(tail[0].id) > 1, tail[0].at, since):
            return LogRead(newest_since(tail, newest, since, limit))  # all in memory (the usual case)
        rows, oldest = await self.store.back(newest, since, limit)
        if tail and (oldest is None or oldest[0] > int(tail[0].id)):  # trimmed past the tail: it has more
            return LogRead(newest_since(tail, newest, since, limit), missed=True)
        entries = [LogEntry(str(i), at, kind, data) for i, at, kind, data in rows]  # type: ignore[arg-type]
        trimmed = oldest[0] > 1 if oldest is not None else self._next > 1
        oldest_at = oldest[1] if oldest is not None else None
        return LogRead(entries, missed=not reaches_back(trimmed, oldest_at, since))

    async def end(self) -> str:
        await self._sync()
        return str(self._next - 1)

    # ───────────── life cycle ─────────────

    async def start(self) -> None:
        try:
            await self._sync()
        except Exception as exc:  # the first append or read tries again
            log.warning("price log: not read yet: %s", exc)

    async def stop(self) -> None:
        task = self._flushing
        if task is not None:
            with contextlib.suppress(Exception, TimeoutError):
                async with asyncio.timeout(STOP_SECONDS):
                    await asyncio.shield(task)
        await self.store.close()

    def status(self) -> dict[str, object]:
        return {
            "kind": "database",
            "durable": True,
            "newest": self._next - 1 if self._synced else None,
            "oldest": self._first if self._synced else None,
            "commits": self.commits,
            "entries_stored": self.stored,
            "entries_trimmed": self.trimmed,
            "pending": len(self._pending),
            "failures": self.failures,
            "last_error": self.last_error,
        }


def _number(position: object) -> int:
    """A stored position of this log (the text of an id); 0 when none."""
    text = str(position or "")
    return int(text) if text.isdigit() else 0


def _settle(batch: list[_Pending], error: BaseException | None = None) -> None:
    for *_, future in batch:
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
