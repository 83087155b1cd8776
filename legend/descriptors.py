"""How many WebSocket connections one process may hold: its file-descriptor limit decides.

Each connection is one descriptor, and so is everything else the process opens: its listening sockets,
the Redis and database connections, log files, the event loop's own, outgoing HTTP (webhooks, quotes,
JWKS). A process out of descriptors fails all of them at once: ``accept()`` and every outgoing connection.
So the server raises its soft ``RLIMIT_NOFILE`` to the hard limit at start and holds at most the hard
limit minus ``RESERVE`` connections (``server.max_connections``, docs/scaling.md "File descriptors").
"""

from __future__ import annotations

import logging
import resource

from legend.settings import Settings, SettingsError

log = logging.getLogger("legend.server")

# Descriptors kept for what is not a client connection. A running server with Redis and PostgreSQL holds 20
# besides its clients (measured, docs/scaling.md "File descriptors"); its pools may grow to about 230: Redis
# 50 command connections plus pub/sub, the database pool 15 (SQLAlchemy's 5 + 10 overflow), notifications 64
# sends in flight plus 70 idle keep-alive (webhooks 50, push 20), quotes, JWKS, the metrics port. 512 covers
# that twice over and still leaves 19,488 connections under a hard limit of 20,000.
RESERVE = 512

HOW_TO_RAISE = (
    "raise the hard limit (systemd LimitNOFILE=, docker --ulimit nofile=N:N, compose ulimits: nofile:, "
    "ulimit -Hn as root) or lower server.max_connections; see docs/scaling.md, File descriptors"
)


def hard_limit() -> int:
    """The hard ``RLIMIT_NOFILE`` of this process (a child inherits it); an unlimited one as 2**31."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 2**31 if hard == resource.RLIM_INFINITY else hard


def connection_cap(max_connections: int, hard: int) -> int:
    """The connections a process whose hard limit is ``hard`` holds at most: ``max_connections`` when
    set and within the limit, else the limit minus the reserve (never below 1)."""
    room = hard - RESERVE
    if max_connections == 0:
        return max(room, 1)
    if max_connections > room:
        raise SettingsError(
            f"server.max_connections = {max_connections} needs {max_connections + RESERVE} file "
            f"descriptors ({RESERVE} reserved for Redis, the database, logs and listening sockets) but "
            f"the hard limit (RLIMIT_NOFILE) is {hard}: {HOW_TO_RAISE}"
        )
    return max_connections


def check_descriptors(settings: Settings) -> None:
    """``server.max_connections`` fits the hard descriptor limit (before anything starts)."""
    connection_cap(settings.server.max_connections, hard_limit())


def raise_soft_limit() -> tuple[int, int]:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (no privilege needed): the soft
    limit, often 1024, is what ``accept()`` meets. Returns (soft, hard) as they are now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. macOS, whose hard limit may be unlimited
            log.warning("could not raise the file-descriptor limit from %d to %d: %s", soft, hard, exc)
    return soft, hard


def apply_limit(settings: Settings) -> int:
    """At a process's start: raise the soft limit, log it, and return the connection cap (the one the
    soft limit leaves room for, which is the hard one unless raising it failed)."""
    soft, _ = raise_soft_limit()
    usable = 2**31 if soft == resource.RLIM_INFINITY else soft
    cap = connection_cap(settings.server.max_connections, usable)
    log.info(
        "file descriptors: limit %d; at most %d WebSocket connections (%s)",
        usable,
        cap,
        "server.max_connections" if settings.server.max_connections else f"the limit minus {RESERVE}",
    )
    return cap
