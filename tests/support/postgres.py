"""A private PostgreSQL for the test session, and the pytest plugin that provides it (tests/conftest.py).

The session starts its own server, as it starts its own redis-server: ``initdb`` into a temporary directory,
``postgres`` on a free port of 127.0.0.1 with its unix socket in that directory, trust authentication, no
durability (``fsync=off``: a crash only loses test data). It starts when the first test asks for it and is
stopped when the session ends. The machine's own PostgreSQL (5432) is never used.

PostgreSQL refuses to run as root: as root, ``initdb`` and ``postgres`` run as the ``postgres`` system user
(created by Debian's ``postgresql`` package, which scripts/test.sh installs) through ``setpriv``, which also
has the kernel stop the server if the test process dies without cleaning up (``--pdeathsig``).

``LEGEND_TEST_POSTGRES=postgresql://user@host:port/db`` points the tests at a server of your own instead (a
superuser: they create and drop ``legend_test_*`` databases). Either way a PostgreSQL test never skips: one
that would is reported as failed, so a missing server cannot pass unnoticed.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.support.loopback import free_port

T = TypeVar("T")

OVERRIDE = "LEGEND_TEST_POSTGRES"
SYSTEM_USER = "postgres"  # who runs the server when the tests run as root
SUPERUSER = "postgres"  # the role initdb creates
MARKER = "postgres"
_WHERE = pytest.StashKey[str]()  # which server the session used, for the summary line
_PROPERTY = "legend_postgres"  # on the report of each passed PostgreSQL test: which server ran it
_COUNTED: dict[str, int] = {}  # passed PostgreSQL tests by server, in the process that prints the summary


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own loop in another thread (safe beside the test's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def postgres_bin_dir() -> Path:
    """The newest installed server's binaries: Debian keeps them in /usr/lib/postgresql/<version>/bin."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")]
    if not found:
        on_path = shutil.which("postgres")
        if on_path is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin or on PATH: "
                f"run ./scripts/test.sh (it installs Debian's postgresql package) or set {OVERRIDE}"
            )
        return Path(on_path).parent
    return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0])


class PostgresServer:
    """``start()`` initialises a cluster in a temporary directory and runs it; ``close()`` removes it all."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or postgres_bin_dir()
        self.port = 0
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root, and PostgreSQL refuses root: no {SYSTEM_USER!r} user to run it as "
                    "(Debian's postgresql package creates it; run ./scripts/test.sh)"
                ) from None

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "postgres.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _command(self, program: str, *args: str) -> list[str]:
        """``program`` of this installation; as root, run as the postgres user and killed if we die."""
        command = [str(self.bin_dir / program), *args]
        if self._user is None:
            return ["setpriv", "--pdeathsig", "TERM", "--", *command]
        # fmt: off
        return [
            "setpriv", "--reuid", str(self._user.pw_uid), "--regid", str(self._user.pw_gid),
            "--init-groups", "--pdeathsig", "TERM", "--", *command,
        ]
        # fmt: on

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", TZ="UTC")
        if self._user is not None:
            env.update(HOME=self._user.pw_dir, USER=self._user.pw_name, LOGNAME=self._user.pw_name)
        return env

    def _init(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="legend-postgres-"))
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        # fmt: off
        result = subprocess.run(
            self._command(
                "initdb", "--pgdata", str(self.data_dir), "--username", SUPERUSER, "--auth", "trust",
                "--encoding", "UTF8", "--locale", "C", "--no-sync",
            ),
            env=self._env(), cwd=self.dir, capture_output=True, text=True, timeout=120,
        )
        # fmt: on
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({result.returncode}) in {self.data_dir}:\n{result.stdout}{result.stderr}"
            )

    def start(self, timeout: float = 30.0, attempts: int = 3) -> PostgresServer:
        if self.running:
            return self
        if self.dir is None:
            self._init()
        for attempt in range(attempts):
            self.port = free_port()
            try:
                return self._start_once(timeout)
            except _PortTaken:
                if attempt == attempts - 1:
                    raise RuntimeError(f"no free port after {attempts} tries:\n{self.logs()}") from None
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> PostgresServer:
        assert self.dir is not None
        # fmt: off
        command = self._command(
            "postgres", "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.dir}",
            "-c", "max_connections=200",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "log_min_messages=warning",
        )
        # fmt: on
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env=self._env(), cwd=self.dir, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                if "could not bind" in self.logs() or "already in use" in self.logs():
                    raise _PortTaken
                raise RuntimeError(f"postgres exited with {code}:\n{self.logs()}")
            if self._ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postgres did not accept connections within {timeout}s:\n{self.logs()}")

    def _ready(self) -> bool:
        ready = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            env=self._env(),
            timeout=10,
        )
        return ready.returncode == 0

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected, nothing waits for them), then wait for it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def logs(self) -> str:
        if self.dir is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PortTaken(Exception):
    """Another process bound the free port between our check and the server's start."""


class PostgresDatabases:
    """Creates ``legend_test_*`` databases on the test server and drops them all at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"legend_test_{secrets.token_hex(4)}"
        self.created: list[str] = []

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create(self, suffix: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{self.prefix}_{suffix}"
        assert name.startswith("legend_test_")
        run_sync(self._admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url(name)

    def empty(self) -> str:
        """The session's scratch database, emptied (its public schema recreated): for migration tests."""
        name = f"{self.prefix}_scratch"
        if name not in self.created:
            return self.create("scratch")
        run_sync(self._admin_on(name, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        return self.url(name)

    async def _admin_on(self, name: str, sql: str) -> None:
        assert name.startswith("legend_test_")
        conn = await asyncpg.connect(
            make_url(self.admin_url).set(database=name).render_as_string(False), timeout=5
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def url(self, name: str) -> str:
        return (
            make_url(self.admin_url)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )

    def drop_all(self) -> None:
        for name in self.created:
            assert name.startswith("legend_test_")
            run_sync(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()


# ───────────────────────────── the pytest plugin ─────────────────────────────


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: the test needs PostgreSQL (a private server is started; it must not skip)"
    )


@pytest.fixture(scope="session")
def postgres_admin_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """A superuser URL of the session's PostgreSQL: ``$LEGEND_TEST_POSTGRES``, else a private server."""
    override = os.environ.get(OVERRIDE)
    if override:
        try:
            run_sync(PostgresDatabases(override)._admin("SELECT 1"))
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(f"{OVERRIDE}={override}: PostgreSQL not reachable: {exc}", pytrace=False)
        pytestconfig.stash[_WHERE] = f"{make_url(override).render_as_string()} (from {OVERRIDE})"
        yield override
        return
    with PostgresServer() as server:
        pytestconfig.stash[_WHERE] = f"a private server on port {server.port} ({server.bin_dir})"
        yield server.admin_url


@pytest.fixture(scope="session")
def postgres(postgres_admin_url: str) -> Iterator[PostgresDatabases]:
    """Creates test databases on the session's server; every one is dropped at the end of the session."""
    databases = PostgresDatabases(postgres_admin_url)
    yield databases
    databases.drop_all()


def _needs_postgres(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return item.get_closest_marker(MARKER) is not None or "postgres_admin_url" in names


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A PostgreSQL test that skips is a failure: the server is part of the test set-up, never optional."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "call" and report.passed and _needs_postgres(item):
        # counted where the reports meet (the controller under pytest-xdist): pytest_runtest_logreport
        report.user_properties.append((_PROPERTY, item.config.stash.get(_WHERE, "a server of its own")))
    if report.skipped and not hasattr(report, "wasxfail") and _needs_postgres(item):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"a PostgreSQL test must not skip ({reason})"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, where in report.user_properties:
        if name == _PROPERTY:
            _COUNTED[str(where)] = _COUNTED.get(str(where), 0) + 1


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for where, passed in sorted(_COUNTED.items()):
        tests = "test" if passed == 1 else "tests"
        terminalreporter.write_line(f"PostgreSQL: {passed} {tests} passed on {where}")
