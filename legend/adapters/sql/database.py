"""The database connection: an async SQLAlchemy engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

Every query runs through the async driver, never blocking the event loop. Reads and writes are separate
context managers so that each backend gets what keeps writers correct:

- SQLite has one writer at a time. Writers in this process take an asyncio lock, and their transaction
  starts with ``BEGIN IMMEDIATE`` so that a writer in another process (``legend db upgrade``) makes them
  wait (busy timeout) instead of failing half-way. The file runs in WAL mode, so reads never wait.
- PostgreSQL serialises only what must be: a write may take a transaction-scoped advisory lock on a key
  (per user for the caps on watchlists and rules, one key for migrations).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from legend.adapters.sql.errors import DatabaseError
from legend.address_checks import database_backend
from legend.settings import DatabaseSettings

if TYPE_CHECKING:
    from legend.adapters.sql.migrate import Schema

SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's write transaction
WAL_ATTEMPTS = (
    200  # times a new file's switch to WAL is tried, 50 ms apart, while another process switches it
)
HEALTH_TIMEOUT = 2.0  # seconds the readiness probe's SELECT 1 may take
HEALTH_CACHE_SECONDS = 1.5  # a probe's answer is reused this long: a balancer's probes are not queries
_IMMEDIATE = "legend_sqlite_immediate"


def default_url(data_dir: str | Path) -> str:
    """The embedded default: a SQLite file in the data directory."""
    return f"sqlite+aiosqlite:///{Path(data_dir).expanduser().resolve() / 'legend.db'}"


def database_url(settings: DatabaseSettings) -> str:
    """The configured URL, or the SQLite file under ``data_dir``."""
    return settings.url or default_url(settings.data_dir)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock``."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see ``_on_sqlite_begin``): the driver's legacy transaction
    # control would skip it for SELECT and DDL, breaking isolation and transactional migrations.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() != "wal":  # kept in the file: only a new database is switched
        # Two processes opening a new file together both switch it, and SQLite answers the second "database
        # is locked" at once, without the busy timeout: try again for a while (start-up only).
        for attempt in range(WAL_ATTEMPTS):
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except Exception as exc:
                if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)
    cursor.close()


def _on_sqlite_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get(_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """One engine and how to read and write through it; ``start`` migrates or checks the schema."""

    def __init__(
        self,
        url: str,
        *,
        migrate_on_start: bool | None = None,
        echo: bool = False,
        command_timeout: float = 0,
    ) -> None:
        try:
            self.backend = database_backend(url)  # the check the settings make, for URLs given directly
        except ValueError as exc:
            raise DatabaseError(f"database.{exc}") from None
        self.url = make_url(url)
        if self.backend == "sqlite" and self.url.get_driver_name() != "aiosqlite":
            self.url = self.url.set(drivername="sqlite+aiosqlite")
        if self.backend == "postgresql" and self.url.get_driver_name() != "asyncpg":
            self.url = self.url.set(drivername="postgresql+asyncpg")
        self.file = _sqlite_file(self.url) if self.backend == "sqlite" else None
        # Only the embedded default migrates by itself; a shared server is migrated by `legend db upgrade`.
        self.migrate_on_start = self.backend == "sqlite" if migrate_on_start is None else migrate_on_start
        self.command_timeout = command_timeout
        self.engine: AsyncEngine = self._create_engine(echo)
        self._write_lock = asyncio.Lock() if self.backend == "sqlite" else None
        # an in-memory SQLite database is one shared connection: reads must wait for writes too
        self._shared_connection = self.backend == "sqlite" and self.file is None
        self._health: tuple[float, dict[str, Any]] | None = None  # (monotonic time, answer)
        self._health_lock = asyncio.Lock()  # one probe at a time; those waiting get its answer

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> Database:
        return cls(
            database_url(settings),
            migrate_on_start=settings.migrate_on_start,
            echo=settings.echo,
            command_timeout=settings.command_timeout,
        )

    def _create_engine(self, echo: bool) -> AsyncEngine:
        if self.backend == "sqlite":
            engine = create_async_engine(self.url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
            event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
            event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
            return engine
        connect_args: dict[str, Any] = {}
        if self.command_timeout:
            # asyncpg cancels a statement past it (and gives up opening a connection); the server ends a
            # transaction left idle by a client that lost its link, so its row locks do not outlive it
            idle_ms = int(max(60.0, 4 * self.command_timeout) * 1000)
            connect_args = {
                "command_timeout": self.command_timeout,
                "timeout": self.command_timeout,
                "server_settings": {"idle_in_transaction_session_timeout": str(idle_ms)},
            }
        return create_async_engine(self.url, echo=echo, pool_pre_ping=True, connect_args=connect_args)

    @property
    def safe_url(self) -> str:
        """The URL without its password, for logs."""
        return self.url.render_as_string(hide_password=True)

    def make_directory(self) -> None:
        """Create the SQLite file's directory (if any); DatabaseError saying why it cannot be."""
        if self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create {self.file.parent}, the directory of the SQLite file: {exc.strerror or exc}"
            ) from None

    async def start(self, plugins: Sequence[Schema] = ()) -> dict[str, Exception]:
        """Create the SQLite file's directory, then migrate (``migrate_on_start``) or check the schema: the
        server's (raises DatabaseError), then each plugin's. A plugin's that fails (its revisions raise, or
        its tables are not at its newest revision) is returned by plugin name, with why, for the server to
        fail that plugin alone."""
        from legend.adapters.sql import migrate

        await asyncio.to_thread(self.make_directory)
        if self.migrate_on_start:
            await migrate.upgrade(self)
        else:
            await migrate.check(self)
        failed: dict[str, Exception] = {}
        for schema in plugins:
            try:
                if self.migrate_on_start:
                    await migrate.upgrade(self, schema=schema)
                else:
                    await migrate.check(self, schema=schema)
            except Exception as exc:  # a plugin's revision scripts are the plugin's code
                failed[schema.plugin or "?"] = exc
        return failed

    async def health(self) -> dict[str, Any]:
        """``{"ok", "backend"}`` (and ``"error"`` when not ok) of a ``SELECT 1`` within HEALTH_TIMEOUT, for
        ``/ready``; the answer is reused for HEALTH_CACHE_SECONDS, and concurrent callers share one probe."""
        async with self._health_lock:
            now = time.monotonic()
            if self._health is not None and now - self._health[0] < HEALTH_CACHE_SECONDS:
                return self._health[1]
            answer: dict[str, Any] = {"ok": True, "backend": self.backend}
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT), self.read() as connection:
                    await connection.execute(select(1))
            except TimeoutError:
                answer = {
                    **answer,
                    "ok": False,
                    "error": f"no answer to SELECT 1 within {HEALTH_TIMEOUT:g} s",
                }
            except Exception as exc:  # whatever the driver raises: the reason goes to the balancer
                reason = (str(exc).strip().splitlines() or [""])[0][:300]
                answer = {**answer, "ok": False, "error": f"{type(exc).__name__}: {reason}".rstrip(": ")}
            self._health = (time.monotonic(), answer)
            return answer

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a read transaction (rolled back at the end)."""
        async with self._serial(self._shared_connection), self.engine.connect() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def write(self, lock: str | None = None) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction, committed when the block ends without error.

        ``lock`` names what concurrent writers must not do at the same time (PostgreSQL: an advisory lock
        held until commit; SQLite writes are serialised anyway).
        """
        async with self._serial(True), self.engine.connect() as connection:
            if self.backend == "sqlite":
                await connection.execution_options(**{_IMMEDIATE: True})
            async with connection.begin():
                if lock is not None and self.backend == "postgresql":
                    await connection.execute(select(func.pg_advisory_xact_lock(advisory_key(lock))))
                yield connection

    @contextlib.asynccontextmanager
    async def _serial(self, needed: bool) -> AsyncIterator[None]:
        if needed and self._write_lock is not None:
            async with self._write_lock:
                yield
        else:
            yield
