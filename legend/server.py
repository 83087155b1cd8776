"""Running the application under uvicorn: one process, or ``server.workers`` processes on one port.

Several workers share the port with ``SO_REUSEPORT``: each binds its own listening socket and the kernel
spreads new connections over them, so the socket writes (the work that grows with users) use every
core. Each worker is a complete instance on the Redis backplane, exactly like a separate machine; with
the in-memory backplane there is nothing to share subscribers and history through, so more than one
worker is refused. The parent only supervises: it evicts a worker that dies from the cluster and
restarts it, with backoff, and on SIGINT/SIGTERM asks every worker to shut down gracefully (clients get
close code 1001). Workers start as ``python -m legend.worker``, which ties each to the parent's life
first; how many the machine holds is ``legend.capacity``'s to say.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import wait as wait_for_exits
from typing import TYPE_CHECKING, Any

import uvicorn
from litestar.types import ASGIApp

from legend.adapters.http.wrappers import ForwardedClient, metrics_only
from legend.capacity import max_workers
from legend.descriptors import apply_limit, check_descriptors
from legend.runtime.backoff import Backoff
from legend.settings import MAX_WORKERS, RedisSettings, Settings, SettingsError

if TYPE_CHECKING:
    from legend.adapters.sql import Database

log = logging.getLogger("legend.server")

RESTART_MIN_DELAY = 1.0  # a worker that died is restarted after this, doubling …
RESTART_MAX_DELAY = 30.0  # … up to this, and back to the minimum once it has run for a minute


class _Server(uvicorn.Server):
    """uvicorn, but the instance drains before uvicorn's own shutdown runs: still listening (so that
    ``/ready`` can answer 503 and newcomers are sent away), it closes its clients with 1001 and a
    reconnect hint, spread over ``server.drain_seconds`` (``Services.close_clients``). A second Ctrl-C
    (uvicorn's force exit) cuts the drain short."""

    def __init__(self, config: uvicorn.Config, on_shutdown: object) -> None:
        super().__init__(config)
        self._close_clients = on_shutdown

    async def shutdown(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        drain = asyncio.ensure_future(self._close_clients())  # type: ignore[operator]
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown or 5):
                while not drain.done() and not self.force_exit:
                    await asyncio.wait({drain}, timeout=0.1)
        except TimeoutError:
            logging.getLogger("legend").warning("closing clients took too long; shutting down anyway")
        if not drain.done():
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
        elif not drain.cancelled() and drain.exception() is not None:
            log.error("closing clients failed", exc_info=drain.exception())
        await super().shutdown(sockets)  # type: ignore[arg-type]


def check_workers(settings: Settings) -> None:
    """No more workers than the machine can hold (``legend.capacity``), and more than one needs the Redis
    backplane. Checked before anything else runs: a refused count leaves no trace."""
    workers = settings.server.workers
    if workers > 1:
        most, why = max_workers()
        if most > MAX_WORKERS:
            most, why = MAX_WORKERS, "whatever the machine"
        if workers > most:
            raise SettingsError(
                f"server.workers = {workers} is more than this machine can run: at most {most} ({why})"
            )
    if settings.server.workers > 1 and not settings.redis.enabled:
        raise SettingsError(
            f"server.workers = {settings.server.workers} needs the Redis backplane: set redis.url "
            "(or REDIS_URL) so that the workers share subscriptions, sequence numbers and history; "
            "with the in-memory backplane each worker would be a separate server"
        )


def check_shared_port(settings: Settings) -> None:
    """Several workers share one port, which must then be a fixed one."""
    if settings.server.workers > 1 and settings.server.port == 0:
        raise SettingsError("server.port = 0 cannot be shared by several workers: choose a port")


def settings_problems(settings: Settings) -> list[str]:
    """What ``legend serve`` refuses although each value is valid on its own (combinations of them), one
    message each; checked before anything is migrated, created or bound (``legend config check`` too)."""
    from legend.adapters.auth import Authenticator
    from legend.app import check_security

    def check_keys(settings: Settings) -> None:  # JWT mode: the secret's length, the public key's file
        Authenticator(settings.security, admin_token="-")

    problems: list[str] = []
    checks = (check_workers, metrics_ports, check_shared_port, check_descriptors, check_security, check_keys)
    for check in checks:
        try:
            check(settings)
        except SettingsError as exc:
            problems.append(str(exc))
    return problems


def metrics_ports(settings: Settings) -> list[int]:
    """The per-worker metrics ports (``metrics.port`` + worker index), or none."""
    first = settings.metrics.port
    if not first:
        return []
    ports = list(range(first, first + settings.server.workers))
    if ports[-1] > 65535:
        raise SettingsError(
            f"metrics.port = {first} with server.workers = {settings.server.workers} needs ports up to "
            f"{ports[-1]}, past 65535"
        )
    if settings.server.port in ports:
        raise SettingsError(
            f"metrics.port = {first} with server.workers = {settings.server.workers} takes server.port "
            f"{settings.server.port}: the metrics ports are {first}..{ports[-1]}"
        )
    return ports


def metrics_socket(host: str, port: int) -> socket.socket:
    """The listening socket of one worker's metrics port; a port that is taken is a settings error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SettingsError(f"metrics.port: cannot bind {host}:{port}: {exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def dashboard_address(settings: Settings) -> str:
    host = settings.server.host
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    return f"http://{shown}:{settings.server.port}/dashboard"


def serve(settings: Settings) -> int:
    """Run until interrupted: in this process, or as the parent of ``server.workers`` processes."""
    problems = settings_problems(settings)
    if problems:
        raise SettingsError(problems[0])
    if settings.server.workers == 1:
        check_port_free(settings.server.host, settings.server.port)
        print(f"Legend Realtime dashboard: {dashboard_address(settings)}", flush=True)
        run_worker(settings)
        return 0
    return run_workers(settings)


def run_worker(
    settings: Settings, sock: socket.socket | None = None, index: int = 0, instance_id: str | None = None
) -> None:
    """One instance (``instance_id``: a worker's, given by its parent): build the services and the
    app, then serve (on ``sock`` when given, and on its metrics port when ``metrics.port`` is set)."""
    from legend.adapters.http.websocket_protocol import protocol_class
    from legend.adapters.logs import logging_config
    from legend.app import create_app, stream_first
    from legend.bootstrap import bootstrap

    server_settings = settings.server
    ports = metrics_ports(settings)
    # settings errors (plugins, provider) before anything is bound
    services = bootstrap(settings, instance_id=instance_id)
    app: ASGIApp = stream_first(create_app(services=services), services)  # /api/ws past Litestar
    if services.database is not None:
        make_data_directory(settings, services.database)
    # the soft descriptor limit raised to the hard one, and logged once the settings are known good
    services.streaming.max_connections = apply_limit(settings)
    extra = metrics_socket(server_settings.host, ports[index]) if ports else None  # taken: fail now
    if ports:
        app = metrics_only(app, ports[index])
    if server_settings.forwarded_allow_ips:
        app = ForwardedClient(app, list(server_settings.forwarded_allow_ips))
    config = uvicorn.Config(
        app,
        host=server_settings.host,
        port=server_settings.port,
        log_level=server_settings.log_level,
        # websockets-sansio, with synchronous writes and a close that drops peers that stopped reading
        ws=protocol_class(
            settings.realtime.close_timeout,
            server_settings.ws_send_buffer,
            server_settings.ws_deflate_min_bytes,
        ),
        ws_per_message_deflate=server_settings.ws_per_message_deflate,
        ws_ping_interval=server_settings.ws_ping_interval or None,
        # The app answers oversized frames itself with an error; the transport's hard cap is far above.
        ws_max_size=max(64 * 1024, settings.realtime.max_frame_bytes * 16),
        timeout_graceful_shutdown=int(server_settings.graceful_shutdown_seconds),
        # The client address behind trusted proxies (``ForwardedClient`` above: uvicorn's
        # ProxyHeadersMiddleware, HTTP and WebSocket scopes alike): what the per-address limits count and
        # every log line shows. Off here, so uvicorn's own $FORWARDED_ALLOW_IPS never decides it behind
        # the settings' back.
        proxy_headers=False,
        lifespan="on",
        interface="asgi3",  # not guessed: ``ForwardedClient`` is no coroutine function, yet ASGI 3
        # one configuration for uvicorn, Litestar and Legend: redacted, text or JSON (adapters/logs.py)
        log_config=logging_config(
            server_settings.log_level, server_settings.log_format, f"worker {index}" if sock else ""
        ),
    )
    sockets = [sock] if sock is not None else None
    if extra is not None:
        sockets = [sock if sock is not None else config.bind_socket(), extra]
        log.info("metrics of this instance also on port %d (GET /metrics only)", ports[index])
    _Server(config, services.close_clients).run(sockets=sockets)


def check_port_free(host: str, port: int) -> None:
    """Bind and release ``host:port`` once, so that a port in use stops the start before the database is
    migrated (uvicorn binds only after its start-up) with one line, not a failed start."""
    if port == 0:
        return
    try:
        socket.create_server((host, port)).close()
    except OSError as exc:
        # create_server appends "(while attempting to bind on address …)" to the reason; a negative errno
        # is getaddrinfo's: the host does not resolve
        key = "server.host" if exc.errno is not None and exc.errno < 0 else "server.port"
        reason = str(exc.strerror or exc).split(" (while attempting")[0]
        raise SettingsError(f"{key}: cannot bind {host}:{port}: {reason}") from None


def make_data_directory(settings: Settings, database: Database) -> None:
    """The SQLite file's directory, made before the server starts: one that cannot be made is a settings
    error (one line), not a failed start-up with a traceback."""
    from legend.adapters.sql import DatabaseError

    try:
        database.make_directory()
    except DatabaseError as exc:
        raise SettingsError(f"database.{'url' if settings.database.url else 'data_dir'}: {exc}") from None


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other processes may bind to the same address too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def worker_main(settings: Settings, index: int, instance_id: str) -> None:
    """A worker process, once ``legend.worker`` tied it to its parent: binds its own socket on the
    shared port and serves as the cluster instance ``instance_id``."""
    try:
        sock = reuse_port_socket(settings.server.host, settings.server.port)
    except OSError as exc:
        print(f"legend: worker {index} cannot bind {settings.server.host}:{settings.server.port}: {exc}")
        sys.exit(3)
    run_worker(settings, sock, index, instance_id)


class _Worker:
    """One worker process: its index, its cluster instance id (given by the parent, so that it can
    evict the instance when the process dies) and a pidfd that becomes readable when it exits."""

    def __init__(self, settings: Settings, index: int) -> None:
        self.index = index
        self.instance_id = secrets.token_hex(4)
        self.started = time.monotonic()
        # The settings travel in an anonymous file (in memory on Linux): never on the command line, and
        # writing them never waits for the child the way a full pipe would.
        memfd = getattr(os, "memfd_create", None)
        with os.fdopen(memfd("legend-settings"), "w+b") if memfd else tempfile.TemporaryFile() as data:
            pickle.dump(settings, data)
            data.seek(0)
            fd = data.fileno()
            command = [sys.executable, "-m", "legend.worker", str(os.getpid()), str(fd), str(index)]
            self.process = subprocess.Popen(
                [*command, self.instance_id], pass_fds=(fd,), stdin=subprocess.DEVNULL
            )
        self.pidfd: int | None = None  # without pidfds (Linux < 5.3), exits are polled twice a second
        with contextlib.suppress(AttributeError, OSError):
            self.pidfd = os.pidfd_open(self.process.pid)

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def signal(self, signum: int) -> None:
        if self.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def close(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None


def run_workers(settings: Settings) -> int:
    """Start ``server.workers`` worker processes on one port and keep them running until a signal.

    A SIGINT or SIGTERM stops at once whatever is under way, the start of the workers too: no more are
    launched and those started are stopped. A worker that dies is evicted from the cluster right away
    (its connections stop counting against the per-user and per-address limits) and restarted, with
    backoff. The workers die with the parent whatever kills it (``legend.worker``).
    """
    from legend.adapters.redis.membership import evict
    from legend.app import check_security

    check_security(settings)  # once, here, rather than in every worker
    # Bind once here first: a port that is taken fails now, with one clear message, before migrating.
    try:
        reuse_port_socket(settings.server.host, settings.server.port).close()
    except OSError as exc:
        raise SettingsError(f"cannot bind {settings.server.host}:{settings.server.port}: {exc}") from None
    for port in metrics_ports(settings):
        metrics_socket(settings.server.host, port).close()
    settings = _prepare(settings)
    count = settings.server.workers
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers: dict[int, _Worker] = {}
    backoffs: dict[int, Backoff] = {}  # per worker, reset once it ran for a minute
    due: dict[int, float] = {}

    def launch(index: int) -> None:
        try:
            worker = workers[index] = _Worker(settings, index)
        except OSError as exc:  # out of processes or memory: try again later rather than give up
            due[index] = time.monotonic() + RESTART_MAX_DELAY
            log.error(
                "worker %d could not be started (%s); trying again in %.0f s", index, exc, RESTART_MAX_DELAY
            )
            return
        log.info("worker %d started (pid %s, instance %s)", index, worker.process.pid, worker.instance_id)

    try:
        for index in range(count):
            if stopping:
                break
            launch(index)
        else:
            print(
                f"Legend Realtime dashboard: {dashboard_address(settings)} ({count} workers)",
                flush=True,
            )
        while not stopping:
            wait_for_exits([w.pidfd for w in workers.values() if w.pidfd is not None], timeout=0.5)
            now = time.monotonic()
            dead = [w for w in workers.values() if w.exitcode is not None]
            if dead and not stopping:
                _evict(evict, settings, [w.instance_id for w in dead])
            for worker in dead:
                if stopping:
                    break
                del workers[worker.index]
                worker.close()
                ran = now - worker.started
                restart = backoffs.setdefault(
                    worker.index, Backoff(RESTART_MIN_DELAY, maximum=RESTART_MAX_DELAY)
                )
                if ran > 60:
                    restart.reset()
                backoff = restart.next()
                due[worker.index] = now + backoff
                log.warning(
                    "worker %d exited with %s after %.0f s; evicted from the cluster, restarting in %.0f s",
                    worker.index,
                    _exit_status(worker.exitcode),
                    ran,
                    backoff,
                )
            for index, when in list(due.items()):
                if now >= when and not stopping:
                    del due[index]
                    launch(index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stopped = list(workers.values())
        _stop_workers(stopped, settings.server.graceful_shutdown_seconds + 5)
        if stopped:  # one killed after the grace, or before it could leave the cluster itself
            _evict(evict, settings, [w.instance_id for w in stopped])  # the others: a no-op
    return 0


def _exit_status(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return str(code)


def _evict(
    evict: Callable[[RedisSettings, list[str]], Coroutine[Any, Any, None]],
    settings: Settings,
    instance_ids: list[str],
) -> None:
    """Remove dead workers' instances from the cluster now rather than when their registrations expire
    (``redis.interest_ttl``): their clients, reconnecting to the other workers, are not refused as over
    their limits by their own dead connections. Bounded when Redis is down; a failure is logged."""
    try:
        asyncio.run(evict(settings.redis, instance_ids))
    except Exception as exc:  # the parent keeps watching its workers whatever Redis does
        log.warning("could not evict %s from the cluster: %s", ", ".join(instance_ids), exc)


def _prepare(settings: Settings) -> Settings:
    """What the workers must share and would otherwise each make for themselves: one admin token, and a
    database schema migrated once, the enabled plugins' tables included (the embedded default migrates at
    start; two at once would race)."""
    import msgspec

    from legend.adapters.sql import Database
    from legend.plugins.schemas import enabled_schemas

    if settings.security.admin_token is None:
        token = secrets.token_urlsafe(24)
        security = msgspec.structs.replace(settings.security, admin_token=token)
        settings = msgspec.structs.replace(settings, security=security)
        log.warning("no admin token configured; this run's admin token is: %s", token)

    schemas = enabled_schemas(settings)  # the enabled plugins' own tables

    async def upgrade() -> None:
        database = Database.from_settings(settings.database)
        try:
            make_data_directory(settings, database)
            if database.migrate_on_start:
                failed = await database.start(schemas)
                for plugin, error in failed.items():  # each worker fails that plugin and says why
                    log.error("plugin %s: its tables could not be migrated: %s", plugin, error)
        finally:
            await database.close()

    asyncio.run(upgrade())
    return settings


def _stop_workers(workers: list[_Worker], grace: float) -> None:
    """SIGTERM (graceful: clients get 1001), then SIGKILL whatever is left after ``grace`` seconds."""
    for worker in workers:
        worker.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for worker in workers:
        try:
            worker.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(5)
        worker.close()
