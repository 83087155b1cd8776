"""Where ``SqlPriceLog`` keeps its entries: the ``alert_price_log`` table of the server's database
(PostgreSQL, an in-memory SQLite), or, beside a SQLite file, a SQLite file of the log's own.

Rows are ``(id, at, kind, data)``; ``commit`` deletes up to ``trim_upto`` (when given) and inserts the rows
in one transaction. ``back`` reads newest first from a position (alert evaluation's warm-up at a takeover):
it walks the primary key down, the filter on ``at`` has no index (a rare read, of at most ``log_size`` rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateTable

from legend.adapters.sql.database import SQLITE_BUSY_TIMEOUT, Database
from legend.adapters.sql.tables import alert_price_log

Row = tuple[int, float, str, str]
Back = tuple[list[Row], tuple[int, float] | None]  # rows oldest first, and the oldest row's (id, at)
T = TypeVar("T")

_CREATE = str(CreateTable(alert_price_log, if_not_exists=True).compile(dialect=sqlite.dialect()))
_INSERT = "INSERT INTO alert_price_log (id, at, kind, data) VALUES (?, ?, ?, ?)"
_SELECT = "SELECT id, at, kind, data FROM alert_price_log WHERE id > ? ORDER BY id LIMIT ?"
_BACK = "SELECT id, at, kind, data FROM alert_price_log WHERE id <= ? AND at >= ? ORDER BY id DESC LIMIT ?"
_OLDEST = "SELECT id, at FROM alert_price_log ORDER BY id LIMIT 1"
_NEWEST_ID = 2**63 - 1  # no position is above it (a 64-bit id)


class LogStore(Protocol):
    async def bounds(self) -> tuple[int | None, int | None]:
        """The newest and the oldest id stored (None, None when empty)."""
        ...

    async def commit(self, rows: Sequence[Row], trim_upto: int | None) -> None: ...

    async def after(self, position: int, count: int) -> list[Row]:
        """Up to ``count`` rows with ids above ``position``, in order."""
        ...

    async def back(self, until: int | None, since: float, limit: int) -> Back:
        """The newest ``limit`` rows with ids up to ``until`` (None: any) and ``at`` from ``since``, in
        order, and the oldest row's id and ``at`` (None when the store is empty), read together."""
        ...

    async def close(self) -> None: ...


class TableStore:
    """The table in the server's database, through SQLAlchemy (its write lock, its pool)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def bounds(self) -> tuple[int | None, int | None]:
        c = alert_price_log.c
        async with self.database.read() as conn:
            newest, oldest = (await conn.execute(select(func.max(c.id), func.min(c.id)))).one()
        return _int(newest), _int(oldest)

    async def commit(self, rows: Sequence[Row], trim_upto: int | None) -> None:
        values = [{"id": i, "at": at, "kind": kind, "data": data} for i, at, kind, data in rows]
        async with self.database.write() as conn:
            if trim_upto is not None:
                await conn.execute(delete(alert_price_log).where(alert_price_log.c.id <= trim_upto))
            await conn.execute(insert(alert_price_log), values)

    async def after(self, position: int, count: int) -> list[Row]:
        c = alert_price_log.c
        query = select(c.id, c.at, c.kind, c.data).where(c.id > position).order_by(c.id).limit(count)
        async with self.database.read() as conn:
            return [
                (int(i), float(at), str(kind), str(data)) for i, at, kind, data in await conn.execute(query)
            ]

    async def back(self, until: int | None, since: float, limit: int) -> Back:
        c = alert_price_log.c
        newest = _NEWEST_ID if until is None else min(until, _NEWEST_ID)
        query = (
            select(c.id, c.at, c.kind, c.data)
            .where(c.id <= newest, c.at >= since)
            .order_by(c.id.desc())
            .limit(limit)
        )
        async with self.database.read() as conn:
            rows = [
                (int(i), float(at), str(kind), str(data)) for i, at, kind, data in await conn.execute(query)
            ]
            oldest = (await conn.execute(select(c.id, c.at).order_by(c.id).limit(1))).first()
        rows.reverse()
        return rows, None if oldest is None else (int(oldest[0]), float(oldest[1]))

    async def close(self) -> None:
        pass


class FileStore:
    """A SQLite file of the log's own, through the ``sqlite3`` module on one thread of its own.

    SQLite has one writer per file: in the server's file the log's commits, which publishes wait for,
    would queue behind evaluation's transactions. Here a commit (BEGIN, DELETE, INSERT, COMMIT) is one
    hand-over to the log's thread rather than one per statement, which is what a publish waits for on a
    busy machine. WAL with ``synchronous = NORMAL``: a commit survives the process's crash (SIGKILL, the
    OOM killer) without an fsync of its own; a power loss or an OS crash may take the last ones (as Redis
    with ``appendfsync everysec``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread: ThreadPoolExecutor | None = None  # made on first use, again after close
        self._connection: sqlite3.Connection | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="price-log")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._on_thread, work)

    def _on_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_CREATE)
            self._connection = connection
        try:
            return work(self._connection)
        except BaseException:
            connection, self._connection = self._connection, None  # perhaps broken: open it again next time
            with contextlib.suppress(sqlite3.Error):
                connection.close()
            raise

    async def bounds(self) -> tuple[int | None, int | None]:
        def read(connection: sqlite3.Connection) -> tuple[int | None, int | None]:
            newest, oldest = connection.execute("SELECT max(id), min(id) FROM alert_price_log").fetchone()
            return _int(newest), _int(oldest)

        return await self._run(read)

    async def commit(self, rows: Sequence[Row], trim_upto: int | None) -> None:
        def write(connection: sqlite3.Connection) -> None:
            connection.execute("BEGIN IMMEDIATE")
            try:
                if trim_upto is not None:
                    connection.execute("DELETE FROM alert_price_log WHERE id <= ?", (trim_upto,))
                connection.executemany(_INSERT, rows)
                connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise

        await self._run(write)

    async def after(self, position: int, count: int) -> list[Row]:
        def read(connection: sqlite3.Connection) -> list[Row]:
            return [
                (int(i), float(at), str(kind), str(data))
                for i, at, kind, data in connection.execute(_SELECT, (position, count))
            ]

        return await self._run(read)

    async def back(self, until: int | None, since: float, limit: int) -> Back:
        newest = _NEWEST_ID if until is None else min(until, _NEWEST_ID)

        def read(connection: sqlite3.Connection) -> Back:
            rows = [
                (int(i), float(at), str(kind), str(data))
                for i, at, kind, data in connection.execute(_BACK, (newest, since, limit))
            ]
            oldest = connection.execute(_OLDEST).fetchone()
            rows.reverse()
            return rows, None if oldest is None else (int(oldest[0]), float(oldest[1]))

        return await self._run(read)

    async def close(self) -> None:
        def close(connection: sqlite3.Connection) -> None:
            connection.close()

        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._run(close)
            self._connection = None
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=False)


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))
